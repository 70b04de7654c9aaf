"""YAML in, with errors that name the file, line and field.

PyYAML's node tree keeps line numbers; pydantic's errors give a location path. Joining the
two turns "srvs.1.6.command_variants.0: Input should be ..." into "policy.yaml line 12".
Duplicate keys, which PyYAML silently collapses, are refused here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class DataFileError(ValueError):
    """A data file (policy, world) is not acceptable; the message names where."""


Path_ = tuple[Any, ...]


# libyaml's parser (C) where PyYAML was built with it: the same documents, about 5x faster on
# a large world file; the pure-Python one otherwise.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DataLoader(_SafeLoader):
    """``SafeLoader`` with numbers as in YAML 1.2 (no base 60, no leading-zero octal) and dates
    left as text: a serial written ``12:34:56`` or ``0123`` stays text instead of silently
    becoming 45296 or 83, and a date is parsed by the model, so a bad one (month 13) is an
    error naming its field rather than a crash in the YAML reader."""


_INT, _FLOAT, _TIMESTAMP = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"
DataLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
DataLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
            |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
DataLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789")
)


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _lines(value_node, path + (key_node.value,), out)
            # After the value: a block mapping or list starts on the next line, and an error
            # about the field must name the line of its key, not of its first entry.
            out[path + (key_node.value,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, path + (index,), out)


class Lines(Mapping[Path_, int]):
    """The line of each value, by its path; worked out only when an error needs one (a large
    world file is parsed once, without a node tree kept beside its data)."""

    def __init__(self, text: str) -> None:
        self._text, self._lines = text, cast("dict[Path_, int] | None", None)

    def _all(self) -> dict[Path_, int]:
        if self._lines is None:
            self._lines = {}
            node = yaml.compose(self._text, Loader=DataLoader)
            if node is not None:
                _lines(node, (), self._lines)
        return self._lines

    def __getitem__(self, key: Path_) -> int:
        return self._all()[key]

    def __iter__(self) -> Iterator[Path_]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # PyYAML silently keeps the last of two equal keys: refused instead, naming the line.
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = key_node.value
        if key in seen:
            raise _DuplicateKey(key, key_node.start_mark.line + 1)
        seen.add(key)
    return cast("dict[Any, Any]", yaml.SafeLoader.construct_mapping(loader, node, deep=deep))


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int) -> None:
        self.key, self.line = key, line


DataLoader.construct_mapping = _mapping


def load_yaml(text: str, source: str) -> tuple[Any, Mapping[Path_, int]]:
    try:
        data = yaml.load(text, Loader=DataLoader)  # noqa: S506 - DataLoader is a SafeLoader
    except _DuplicateKey as dup:
        lines = Lines(text)
        where = next((".".join(str(p) for p in path) for path, line in lines.items() if line == dup.line and path and path[-1] == dup.key), str(dup.key))
        raise DataFileError(f"{source} line {dup.line}, field {where}: key {dup.key!r} appears twice") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataFileError(f"{source}{where}: not valid YAML ({problem})") from None
    return data, Lines(text)


def line_of(lines: Mapping[Path_, int], loc: Path_) -> int | None:
    for cut in range(len(loc), -1, -1):
        key = tuple(loc[:cut])
        if key in lines:
            return lines[key]
    return None


MAX_ERRORS = 20


def describe(exc: ValidationError, lines: Mapping[Path_, int], source: str, prefix: Path_ = ()) -> str:
    messages = []
    errors = exc.errors()
    for err in errors[:MAX_ERRORS]:
        loc = prefix + tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-")))
        line = line_of(lines, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = f"{source} line {line}" if line else source
        message = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "unknown field (is it misspelt?)"
        elif err.get("type") == "value_error" and "error" in err.get("ctx", {}):
            message = str(err["ctx"]["error"])  # our own words, without pydantic's "Value error, "
        messages.append(f"{where}, field {field}: {message}")
    if len(errors) > MAX_ERRORS:  # a large file wrong throughout: the first few say what is wrong
        messages.append(f"and {len(errors) - MAX_ERRORS} more errors")
    return "; ".join(messages)


def validate(model: type[M], data: Any, lines: Mapping[Path_, int], source: str, prefix: Path_ = ()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DataFileError(describe(exc, lines, source, prefix)) from None


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes as stored (what a digest of the file is taken over)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read ({exc.strerror})") from None


def decode_text(data: bytes, source: str | Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataFileError(f"{source}: not UTF-8 text") from None


def read_text(path: str | Path) -> str:
    # Newlines translated as text mode reads them (policy digests are taken over this text).
    return decode_text(read_bytes(path), path).replace("\r\n", "\n").replace("\r", "\n")
