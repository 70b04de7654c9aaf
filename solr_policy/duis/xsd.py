"""Optional full validation of DUIS documents against the published DUIS XML Schema.

The schema files are not shipped with the project: the operator points us at the folder
holding them, named exactly as published (``DUIS Schema V5.4.xsd``, ``MMC Schema V5.4.xsd``,
``xmldsig-core-schema.xsd``, ``XMLSchema.dtd``, ``datatypes.dtd``).

Loading rules (why they look the way they do):

* libxml2 silently drops an ``xs:import`` whose ``schemaLocation`` holds a raw space (it
  never even asks the entity loader), so before compiling we percent-encode the
  locations in every schema document we hand to libxml2.
* Every location (relative, absolute path or ``http://`` URL) is answered by a resolver
  from the local file of the same base name in the folder; anything else is refused, so
  nothing is read from the network or from outside the folder. Entity expansion happens
  only inside these operator-supplied schema files (libxml2 parses imported schemas with
  ``XML_PARSE_NOENT``); the documents we validate are already-parsed trees.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from lxml import etree

from solr_policy.errors import ParseRefused

__all__ = ["DuisSchema", "DuisSchemaError"]

_XS = "http://www.w3.org/2001/XMLSchema"
_LOCATED = (f"{{{_XS}}}import", f"{{{_XS}}}include", f"{{{_XS}}}redefine", f"{{{_XS}}}override")
_MAIN_NAME = re.compile(r"^DUIS Schema V(\d+(?:\.\d+)*)\.xsd$", re.IGNORECASE)
# Namespaces shortened in refusal messages, as the DUIS itself writes them.
_PREFIXES = {
    "{http://www.dccinterface.co.uk/ServiceUserGateway}": "sr:",
    "{http://www.dccinterface.co.uk/ResponseAndAlert}": "ra:",
    "{http://www.w3.org/2000/09/xmldsig#}": "ds:",
}

_cache: dict[Path, DuisSchema] = {}
_cache_lock = threading.Lock()


class DuisSchemaError(ValueError):
    """The configured schema folder is unusable (no DUIS schema in it, or it does not compile)."""


def _encode_locations(root: etree._Element) -> bool:
    """Percent-encode schemaLocation values in place; True if any changed."""
    changed = False
    for el in root.iter(*_LOCATED):
        loc = el.get("schemaLocation")
        if loc is not None:
            # '%' is kept safe so an already-encoded location is not encoded twice.
            enc = quote(loc, safe=":/?#[]@!$&'()*+,;=%~")
            if enc != loc:
                el.set("schemaLocation", enc)
                changed = True
    return changed


class _FolderResolver(etree.Resolver):
    """Answers every schema/DTD location from the folder by base name, or refuses it."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self._folder = folder
        self.missing: list[str] = []

    # lxml calls it with a context argument its stubs leave out
    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> object:  # type: ignore[override]
        name = unquote(urlsplit(system_url or "").path).rsplit("/", 1)[-1]
        path = self._folder / name
        if not name or not path.is_file():
            self.missing.append(system_url or f"(public id {public_id})")
            # Raising (not returning None) keeps lxml from falling back to libxml2's loader.
            raise DuisSchemaError(f"schema location {system_url!r} is not in {self._folder}")
        data = path.read_bytes()
        if path.suffix.lower() == ".xsd":
            tree = etree.fromstring(data, _schema_parser(self), base_url=path.as_uri())
            if _encode_locations(tree):
                data = etree.tostring(tree.getroottree(), xml_declaration=True, encoding="UTF-8")
        return self.resolve_string(data, context, base_url=path.as_uri())


def _schema_parser(resolver: _FolderResolver) -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False, huge_tree=False)
    parser.resolvers.add(resolver)
    return parser


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _shorten(text: str, limit: int = 300) -> str:
    for ns, prefix in _PREFIXES.items():
        text = text.replace(ns, prefix)
    # libxml2 quotes whole patterns (the RequestID one is ~800 characters); the element,
    # facet and value come first, so cutting the tail keeps what a reader needs.
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class DuisSchema:
    """A compiled DUIS XML Schema, shared per folder; ``validate`` is thread-safe."""

    def __init__(self, path: Path, version: str, schema: etree.XMLSchema) -> None:
        self._path = path
        self._version = version
        self._schema = schema
        # lxml's XMLSchema.__call__ makes a fresh libxml2 validation context per call (the
        # compiled xmlSchema is only read), but it clears and fills one error log stored on the
        # XMLSchema object, with the GIL released during validation: two threads would mix or
        # wipe each other's errors. So calls are serialised with this lock (a call costs
        # microseconds, far less than compiling a thread-local copy).
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The main schema file (``.../DUIS Schema V5.4.xsd``)."""
        return self._path

    @property
    def version(self) -> str:
        """The schema version taken from the file name, e.g. ``"5.4"``."""
        return self._version

    def __repr__(self) -> str:
        return f"DuisSchema(version={self._version!r}, path={str(self._path)!r})"

    @classmethod
    def from_folder(cls, folder: str | Path) -> DuisSchema:
        """The compiled schema of ``folder`` (compiled once per resolved folder path)."""
        key = Path(folder).resolve()
        with _cache_lock:  # held while compiling so concurrent callers compile only once
            cached = _cache.get(key)
            if cached is None:
                cached = _cache[key] = cls._compile(key)
            return cached

    @classmethod
    def _compile(cls, folder: Path) -> DuisSchema:
        if not folder.is_dir():
            raise DuisSchemaError(f"DUIS schema folder {folder} does not exist or is not a folder")
        found = [(m.group(1), p) for p in folder.iterdir() if p.is_file() and (m := _MAIN_NAME.match(p.name))]
        if not found:
            raise DuisSchemaError(f"no 'DUIS Schema V*.xsd' file in {folder}")
        version, main = max(found, key=lambda vp: _version_key(vp[0]))
        resolver = _FolderResolver(folder)
        try:
            root = etree.fromstring(main.read_bytes(), _schema_parser(resolver), base_url=main.as_uri())
            _encode_locations(root)
            schema = etree.XMLSchema(root)
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError, OSError) as exc:
            log: Any = getattr(exc, "error_log", None)
            first = log[0] if log else None
            if first is not None:  # say which file: the error may sit in an imported schema
                where = unquote(urlsplit(first.filename or "").path).rsplit("/", 1)[-1] or main.name
                detail = f"{where} line {first.line}: {first.message}"
            else:
                detail = str(exc)
            if resolver.missing:
                detail += f" (unresolved locations: {', '.join(resolver.missing)})"
            raise DuisSchemaError(f"{main.name} in {folder} does not compile: {_shorten(detail)}") from None
        return cls(main, version, schema)

    def validate(self, root: etree._Element) -> None:
        """Raise ``ParseRefused("duis.schema", ...)`` naming the first schema error, if any."""
        with self._lock:
            if self._schema(root):
                return
            errors: list[Any] = list(self._schema.error_log)  # type: ignore[call-overload]  # an _ErrorLog iterates
        if not errors:  # libxml2 said invalid without a message: still a refusal
            raise ParseRefused("duis.schema", "document does not comply with the DUIS schema")
        first = errors[0]
        where = f"line {first.line}: " if first.line > 0 else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParseRefused("duis.schema", _shorten(f"{where}{first.message}") + more)
