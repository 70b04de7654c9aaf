"""Hardened parsing of raw DUIS bytes into an lxml tree.

This is the first thing untrusted bytes meet. Before lxml sees them it refuses oversize
input, any DOCTYPE (so no DTD, no entity expansion: XXE and billion laughs die here), and
everything the pre-scan (``prescan.py``) refuses: non-UTF-8, comments, CDATA, processing
instructions, names outside the DUIS vocabulary, and more attributes, namespaces, names or
text than ``ParserLimits`` allow. That bounds both the CPU any later step (C14N, signature
checks) can spend and the memory lxml keeps. After parsing it refuses documents nested
deeper than the limit, content added outside what a DUIS signature covers (ds:Object,
attributes on the signature's elements, namespace declarations used by no name in their
scope), and roots that are not a DUIS Request/Response with a ``schemaVersion``.
It does not interpret the content: that happens on the *signed* content only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from lxml import etree

from solr_policy.duis.prescan import SIGNATURE_ATTRIBUTES, Scan, prescan, refuse_unused
from solr_policy.errors import ParseRefused

NS_SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_RA = "http://www.dccinterface.co.uk/ResponseAndAlert"

ROOTS = {f"{{{NS_SR}}}Request": "Request", f"{{{NS_SR}}}Response": "Response"}

# A DOCTYPE can hide behind a UTF-16/32 encoding from a byte scan, so the scan is only the
# cheap first line of defence; the parser settings and the docinfo check below are the rest.
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class ParserLimits:
    """Bounds on what a single DUIS document may cost, checked before any C14N or crypto.

    With the defaults any input up to ``max_bytes`` is refused or parsed in a few
    milliseconds (``scripts/adversarial.py`` measures it). Exclusive C14N grows with the
    square of the attributes on one element, hence the small per-element bounds.
    """

    max_bytes: int = 1_048_576  # a DUIS request is a few KiB; responses (inventories) more
    max_depth: int = 32  # the deepest DUIS request bodies are ~12 levels
    # The largest request the DUIS XSD allows has about 7,300 elements (SRV 6.14.3, every
    # maxOccurs filled); the pre-scan's cost grows with the number of tags.
    max_elements: int = 10_000
    max_attributes: int = 16  # on one element, namespace declarations included (DUIS: <= 4)
    max_attributes_total: int = 4_096
    max_namespace_declarations: int = 8  # on one element
    max_namespace_declarations_total: int = 32
    max_distinct_names: int = 256  # element and attribute names in one document
    # One text node or attribute value, and all of them: no DUIS value within max_bytes
    # comes near but a firmware image or device list (SRV 11.1), which are bigger anyway.
    max_text_bytes: int = 524_288
    max_text_bytes_total: int = 786_432
    max_references: int = 1_024  # &amp; &#13; ...: a DUIS message needs a few, if any


DEFAULT_LIMITS = ParserLimits()

_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe to share: one per thread.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            # Not collect_ids=False: with libxml2 < 2.15 lxml implements it by setting the
            # context's loadsubset flag, which makes libxml2 *load the external DTD subset*
            # (a file read, or a hang on a FIFO/device) despite load_dtd=False. A DOCTYPE
            # hidden in UTF-16 passes the byte scan and would reach that.
            collect_ids=True,
        )
        _local.parser = parser
    return parser


def parse_document(raw: bytes, limits: ParserLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse untrusted bytes into the root element of a DUIS Request or Response."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ParseRefused("xml.type", "input must be bytes")
    raw = bytes(raw)
    if not raw or raw.isspace():  # as `not raw.strip()`, without the copy
        raise ParseRefused("xml.empty", "the document is empty")
    if len(raw) > limits.max_bytes:
        raise ParseRefused(
            "xml.too_large", f"the document is {len(raw)} bytes; the limit is {limits.max_bytes}"
        )
    if b"<!" in raw and _DOCTYPE.search(raw):  # a plain byte search first: the pattern starts with "<!"
        raise ParseRefused("xml.dtd", "DTDs and entity declarations are not allowed in DUIS messages")
    scan = prescan(raw, limits)
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise ParseRefused("xml.malformed", f"not well-formed XML: {_first_line(str(exc))}") from None
    except (ValueError, TypeError) as exc:  # e.g. encoding declarations lxml rejects
        raise ParseRefused("xml.malformed", f"not well-formed XML: {_first_line(str(exc))}") from None
    if root is None:
        raise ParseRefused("xml.empty", "the document has no root element")
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs type it loosely
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise ParseRefused("xml.dtd", "DTDs and entity declarations are not allowed in DUIS messages")
    _check_shape(root, limits, scan)
    _check_unsigned_additions(root, scan)
    if root.tag not in ROOTS:
        raise ParseRefused(
            "duis.root",
            f"root element is {_describe(root.tag)}; expected sr:Request or sr:Response in {NS_SR}",
        )
    version = root.get("schemaVersion")
    if version is None or not _SCHEMA_VERSION.fullmatch(version):
        raise ParseRefused("duis.schema_version", "the root element needs a schemaVersion such as 5.4")
    return root


_SCHEMA_VERSION = re.compile(r"[0-9]+(\.[0-9]+)?")


def _check_shape(root: etree._Element, limits: ParserLimits, scan: Scan) -> None:
    # All in libxml2 (C): no Python recursion or per-node loop on untrusted input.
    for _ in root.iter(etree.ProcessingInstruction, etree.Entity):
        raise ParseRefused("xml.processing_instruction", "processing instructions and entity references are not allowed")
    for sibling in _top_level_siblings(root):
        if isinstance(sibling, etree._ProcessingInstruction):
            raise ParseRefused("xml.processing_instruction", "processing instructions are not allowed")
    # The pre-scan read the depth from the tags (which lxml has just parsed as the elements)
    # when it checked them; otherwise it is measured on the tree.
    if scan.depth > limits.max_depth if scan.depth is not None else _too_deep(limits.max_depth)(root):
        raise ParseRefused("xml.too_deep", f"nesting deeper than {limits.max_depth} levels")
    # max_elements: counted exactly by the pre-scan (one start tag per element).


_NONE: frozenset[str] = frozenset()
_DS_ATTRIBUTES = {f"{{{NS_DS}}}{name}": allowed for name, allowed in SIGNATURE_ATTRIBUTES.items()}
_USES_PREFIX = etree.XPath(
    "boolean(descendant-or-self::*[starts-with(name(), $p)] | descendant-or-self::*/@*[starts-with(name(), $p)])"
)
_USES_DEFAULT = etree.XPath("boolean(descendant-or-self::*[not(contains(name(), ':'))])")


def _check_unsigned_additions(root: etree._Element, scan: Scan) -> None:
    """Refuse what can be added to a signed message without breaking its signature."""
    if not scan.no_signature_additions:  # else the pre-scan ruled them out from the tags
        _check_signature_additions(root)
    for index, tag, prefix in scan.scoped_declarations:
        element = next(islice(root.iter(), index, None))
        used = _USES_PREFIX(element, p=prefix.decode() + ":") if prefix else _USES_DEFAULT(element)
        if not used:
            refuse_unused(b"xmlns:" + prefix if prefix else b"xmlns", tag)


def _check_signature_additions(root: etree._Element) -> None:
    for _ in root.iter(f"{{{NS_DS}}}Object"):
        raise ParseRefused("signature.object", "ds:Object is not allowed: a DUIS signature covers only the message itself")
    for element in root.iter(f"{{{NS_DS}}}*"):
        names = element.keys()  # a list, without the attrib proxy
        if names and not _DS_ATTRIBUTES.get(element.tag, _NONE).issuperset(names):
            extra = set(names) - _DS_ATTRIBUTES.get(element.tag, _NONE)
            raise ParseRefused(
                "signature.attribute",
                f"attribute(s) {', '.join(sorted(str(a) for a in extra))} on ds:{etree.QName(element).localname} "
                "are not part of a DUIS signature",
            )


@lru_cache(maxsize=8)
def _too_deep(max_depth: int) -> etree.XPath:
    # True when any element sits below max_depth levels: "/*/*/.../*" with max_depth + 1 steps.
    return etree.XPath("boolean(/" + "/".join(["*"] * (max_depth + 1)) + ")")


def _top_level_siblings(root: etree._Element) -> Iterator[etree._Element]:
    node = root.getprevious()
    while node is not None:
        yield node
        node = node.getprevious()
    node = root.getnext()
    while node is not None:
        yield node
        node = node.getnext()


def _describe(tag: object) -> str:
    if not isinstance(tag, str):
        return "not an element"
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return f"{local} in namespace {ns or '(none)'}"
    return f"{tag} in no namespace"


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "unknown error"
