"""The pre-scan: what raw bytes may hold before lxml sees them.

libxml2 keeps every element, attribute and prefix name, every namespace URI and every short
whitespace-only text node it reads in a dictionary that lxml shares between all parsers of
a thread and never frees, so new names in refused documents would grow a long-running
process without bound. Before any parse, this scan reads the raw bytes with C-speed byte
searches and regular expressions (possessive, so none backtracks; each match attempt
starts at a ``<`` and reads at most to the next quote or tag end) and refuses, each with a
named rule:

* anything but UTF-8, comments, CDATA sections, processing instructions, named entity
  references other than the five predefined ones (``xml.encoding``, ``xml.comment``, ...);
* a ``<`` that does not open a well-formed start or end tag (so no name can hide from it);
* element or attribute names that the DUIS schemas (DUIS, MMC, XMLDSig) do not declare,
  namespace prefixes outside a small bounded set, namespace URIs other than the DUIS ones,
  short whitespace runs between tags other than indentation (at most two line breaks,
  spaces or tabs but not both);
* more attributes, namespace declarations, distinct names or text than ``ParserLimits``.

What is left can reach libxml2's dictionary only from a fixed, finite set of strings.

Everything but the sizes and the markup depends on the tags alone (each start or end tag
with the whitespace run after it), and requests of one kind repeat their tags exactly:
only their text differs. So the checks of the tags run once per tag sequence and their
verdict is remembered (bounded, small documents only); a request with the same sequence is
checked by one C-level scan for its tags, the same per-document size and markup checks,
and a dictionary look-up of the exact sequence.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from solr_policy.duis.vocabulary import (
    ATTRIBUTE_NAMES,
    ELEMENT_NAMES,
    SCHEMA_NAMESPACES,
)
from solr_policy.errors import ParseRefused

if TYPE_CHECKING:
    from solr_policy.duis.parser import ParserLimits

NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NAMESPACES = frozenset(uri.encode() for uri in SCHEMA_NAMESPACES | {NS_XSI})
_ELEMENTS = frozenset(name.encode() for name in ELEMENT_NAMES)
_ATTRIBUTES = frozenset(name.encode() for name in ATTRIBUTE_NAMES)

_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_PREDEFINED = (b"&lt;", b"&gt;", b"&amp;", b"&quot;", b"&apos;")
_WS = rb"[ \t\r\n]"
# Wider than an XML name on purpose: whatever libxml2 could take for a name lands in it
# whole, and is then refused unless it is a DUIS name.
_NAME = rb"[^ \t\r\n<>/=\"'!?&;]+"
# A quoted value is read to its closing quote (the fast loop of the regex engine); one that
# swallows a '<' (never well-formed) leaves that '<' without a tag, and the count refuses it.
_VALUE = rb"(?:\"[^\"]*+\"|'[^']*+')"
_ATTRIBUTE = _WS + rb"++" + _NAME + _WS + rb"*+=" + _WS + rb"*+" + _VALUE
_NAMESPACE_DECLARATION = re.compile(rb"(?<![^\x00 \t\r\n])xmlns(?=[:= \t\r\n])")
_QUOTED = re.compile(rb"\"[^\"]*+\"|'[^']*+'")
_ATTRIBUTE_PARTS = re.compile(
    _WS + rb"++(" + _NAME + rb")" + _WS + rb"*+=" + _WS + rb"*+(?:\"([^<\"]*+)\"|'([^<']*+)')"
)
_XML_DECLARATION = re.compile(
    rb"<\?xml" + _WS + rb"++version" + _WS + rb"*+=" + _WS + rb"*+([\"'])1\.[0-9]++\1"
    rb"(?:" + _WS + rb"++encoding" + _WS + rb"*+=" + _WS + rb"*+([\"'])([A-Za-z][A-Za-z0-9._-]*+)\2)?"
    rb"(?:" + _WS + rb"++standalone" + _WS + rb"*+=" + _WS + rb"*+([\"'])(?:yes|no)\4)?" + _WS + rb"*+\?>"
)
# Prefixes are names too: up to three lower-case letters or digits (sr, ds, ra, xsi, ns3),
# ns0-ns999 or dsig. A fixed set of about 36,000, never an unbounded one.
_PREFIX = re.compile(rb"[a-z][a-z0-9]{0,2}|ns[0-9]{1,3}|dsig")
_RESERVED_PREFIXES = frozenset({b"xml", b"xmlns"})
# What a DUIS signature may carry beyond its elements: the algorithm of each method and
# transform, and the (empty) reference URI. Id, Type, MimeType... are XMLDSig, not DUIS.
SIGNATURE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "CanonicalizationMethod": frozenset({"Algorithm"}),
    "SignatureMethod": frozenset({"Algorithm"}),
    "Transform": frozenset({"Algorithm"}),
    "DigestMethod": frozenset({"Algorithm"}),
    "Reference": frozenset({"URI"}),
}
_SIGNATURE_ATTRIBUTES = {local.encode(): frozenset(n.encode() for n in names) for local, names in SIGNATURE_ATTRIBUTES.items()}
# libxml2 interns whitespace-only text shorter than 60 bytes: any mix of spaces, tabs and
# line breaks would be 3^59 strings. Allowed: at most two line breaks, and spaces or tabs
# but not both (indentation, a blank line, trailing spaces): about 72,000 strings in all.
_MAX_BLANK_LINE_BREAKS = 2
_MAX_BLANK_FORMS = 256
_INTERNED_BLANK = 60
# Verdicts on tag sequences: for documents up to this size (a request is a few KiB), at
# most this many, the oldest forgotten first: a few MiB at most, whatever is sent.
_REMEMBER_BYTES = 16_384
_REMEMBERED = 256


@dataclass(frozen=True)
class Scan:
    """What the parse still has to check: namespace declarations (outside the root and
    ds:Signature) whose prefix some name uses, but perhaps not within their own scope."""

    # (index of the declaring element in document order, its tag, the prefix; b"" = default)
    scoped_declarations: tuple[tuple[int, bytes, bytes], ...] = ()
    # How deep the elements nest (the root alone: 1), read from the tags; None: not measured
    # here (the parse measures it on the tree).
    depth: int | None = None
    # True when the tags show that no element can be ds:Object or an XMLDSig element with an
    # attribute a DUIS signature does not carry; False: the parse looks on the tree.
    no_signature_additions: bool = False


def prescan(raw: bytes, limits: ParserLimits) -> Scan:
    """Refuse bytes lxml must not see; otherwise say what the parse has left to check."""
    text = raw[len(_UTF8_BOM):] if raw.startswith(_UTF8_BOM) else raw
    start = _check_encoding(text)
    _check_markup(text, start, limits)
    if len(text) > _REMEMBER_BYTES:  # checked from the tags' parts, as they are not remembered
        parts = _tags(text, start, limits, _tag_pattern)
        _check_text_size(text, start, limits)
        _check_text_total(text, start, parts, limits)
        return _check_tags(parts, limits, depth=False)
    tags = _tags(text, start, limits, _tag_only_pattern)
    _check_text_size(text, start, limits)
    if len(text) - start > limits.max_text_bytes_total:  # else the text cannot be more
        _check_text_total(text, start, _tag_pattern(limits.max_attributes).findall(text, start), limits)
    # NUL cannot occur (refused above), so the joined sequence is the tags, exactly.
    key = (limits, b"\x00".join(tags))
    scan = _VERDICTS.get(key)
    if scan is None:
        scan = _check_tags(_tag_pattern(limits.max_attributes).findall(text, start), limits, depth=True)
        _remember(key, scan)
    return scan


_VERDICTS: dict[tuple[ParserLimits, bytes], Scan] = {}
_VERDICTS_LOCK = threading.Lock()


def _remember(key: tuple[ParserLimits, bytes], scan: Scan) -> None:
    with _VERDICTS_LOCK:
        while len(_VERDICTS) >= _REMEMBERED:
            del _VERDICTS[next(iter(_VERDICTS))]  # the oldest (dicts keep insertion order)
        _VERDICTS[key] = scan


def _check_tags(parts: list[tuple[bytes, bytes, bytes, bytes, bytes]], limits: ParserLimits, *, depth: bool) -> Scan:
    """The checks that depend on the tags alone (and the limits): one verdict per sequence."""
    _check_blanks(parts)
    names, attributes, blanked = _names(parts, limits)
    scan = _check_namespaces(parts, names, attributes, blanked, limits)
    _check_vocabulary(names, attributes, limits)
    if not depth:
        return scan
    return replace(scan, depth=_depth(parts), no_signature_additions=_no_signature_additions(parts, blanked))


def _depth(parts: list[tuple[bytes, bytes, bytes, bytes, bytes]]) -> int:
    # Every '<' opens a tag, so if lxml parses the document these tags are its elements.
    level = deepest = 0
    for whole, end, _, _, _ in parts:
        if end:
            level -= 1
        else:
            deepest = max(deepest, level + 1)
            if not whole.endswith(b"/>"):
                level += 1
    return deepest


def _no_signature_additions(parts: list[tuple[bytes, bytes, bytes, bytes, bytes]], blanked: bytes) -> bool:
    """Whether the tags rule out what the parse refuses as unsigned additions to a signature.

    An element can be in the XMLDSig namespace only if its prefix (or, unprefixed, the default
    namespace) is declared as XMLDSig somewhere: scopes aside, so an over-estimate."""
    hits = [m.start() for m in _NAMESPACE_DECLARATION.finditer(blanked)]
    declared = [declaration for _, _, here in _declaring(parts, blanked, hits) for declaration in here]
    xmldsig = {name[6:] if name != b"xmlns" else b"" for name, uri in declared if uri == NS_DS.encode()}
    if not xmldsig:
        return True
    for _, end, qname, section, _ in parts:
        prefix, local = _split(qname)
        if end or (prefix or b"") not in xmldsig:
            continue
        if local == b"Object":
            return False
        allowed = _SIGNATURE_ATTRIBUTES.get(local, frozenset())
        # An attribute named with a prefix is in a namespace: never one of the allowed.
        if any(n not in allowed and not _is_declaration(n) for n in _QUOTED.sub(b" ", section).replace(b"=", b" ").split()):
            return False
    return True


def _refuse(rule: str, message: str) -> NoReturn:
    raise ParseRefused(rule, message)


def _show(value: bytes) -> str:
    shown = value[:40].decode("utf-8", "replace")
    return repr(shown + ("..." if len(value) > 40 else ""))


def _check_encoding(text: bytes) -> int:
    """Only UTF-8: then these byte patterns see exactly what libxml2 will read."""
    if text.startswith(_WIDE_BOMS):
        _refuse("xml.encoding", "the document is UTF-16 or UTF-32; DUIS messages are UTF-8")
    nul = text.find(b"\x00")
    if nul != -1:
        _refuse("xml.malformed", f"not well-formed XML: a NUL byte at offset {nul} (DUIS messages are UTF-8)")
    try:
        if not text.isascii():  # ASCII (the usual case) is UTF-8: no decoded copy needed
            text.decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse("xml.encoding", f"the document is not UTF-8 (byte offset {exc.start}); DUIS messages are UTF-8")
    if not (text.startswith(b"<?xml") and text[5:6] in (b" ", b"\t", b"\r", b"\n")):
        return 0
    declaration = _XML_DECLARATION.match(text)
    if declaration is None:
        _refuse("xml.malformed", "not well-formed XML: the XML declaration is malformed")
    encoding = declaration.group(3)
    if encoding is not None and encoding.lower() not in (b"utf-8", b"utf8"):
        _refuse("xml.encoding", f"the document declares encoding {_show(encoding)}; DUIS messages are UTF-8")
    return declaration.end()


def _check_markup(text: bytes, start: int, limits: ParserLimits) -> None:
    # The DOCTYPE scan ran before this (parse_document), so '<!' here is a comment or CDATA.
    bang = text.find(b"<!", start)
    if bang != -1:
        if text.startswith(b"<!--", bang):
            _refuse(
                "xml.comment",
                "comments are not allowed in a DUIS message: they are not signed, and one inside a "
                "value would change what is read (…:20<!--x-->07 reads as 2007)",
            )
        if text.startswith(b"<![CDATA[", bang):
            _refuse("xml.cdata", "CDATA sections are not allowed in a DUIS message")
        _refuse("xml.malformed", "not well-formed XML: markup starting '<!' that is not a comment")
    if text.find(b"<?", start) != -1:
        _refuse("xml.processing_instruction", "processing instructions are not allowed")
    references = text.count(b"&")
    if references > limits.max_references:
        # libxml2 hands each reference to the tree builder on its own: slow by the thousand.
        _refuse("xml.too_many_references", f"more than {limits.max_references} entity and character references")
    if references and references != text.count(b"&#") + sum(text.count(p) for p in _PREDEFINED):
        _refuse(
            "xml.malformed",
            "not well-formed XML: an undefined entity reference (without a DTD only &lt; &gt; "
            "&amp; &quot; &apos; and character references exist)",
        )


def _tags(text: bytes, start: int, limits: ParserLimits, pattern: Callable[[int], re.Pattern[bytes]]) -> list[Any]:
    """Every tag, as ``pattern`` (_tag_pattern, or _tag_only_pattern: each tag with the
    whitespace run after it, whole) finds them; refused if a '<' opens none."""
    opened = text.count(b"<", start)
    if opened > 2 * limits.max_elements + 1:
        _refuse("xml.too_many_elements", f"more than {limits.max_elements} elements ({opened} '<')")
    tags = pattern(limits.max_attributes).findall(text, start)
    if len(tags) != opened:
        # Only now (a refusal either way) is it worth telling the two causes apart.
        if _too_many_attributes(limits.max_attributes).search(text, start):
            _refuse("xml.too_many_attributes", f"an element has more than {limits.max_attributes} attributes")
        _refuse("xml.malformed", "not well-formed XML: a '<' that does not open a start or end tag")
    # Every '<' opens a tag and '</' only an end tag, so this counts elements exactly.
    elements = opened - text.count(b"</", start)
    if elements > limits.max_elements:
        _refuse("xml.too_many_elements", f"more than {limits.max_elements} elements")
    return tags


_WHOLE, _END, _NAME_OF, _ATTRIBUTES_OF, _BLANK = range(5)  # groups of a tag match


@lru_cache(maxsize=8)
def _tag_pattern(max_attributes: int) -> re.Pattern[bytes]:
    # One start or end tag with at most max_attributes attributes: (whole tag, "/" for an
    # end tag, name, attributes), then a whitespace-only run when the next tag follows it
    # directly (the text libxml2 interns).
    return re.compile(_tag_regex(max_attributes, b"("))


@lru_cache(maxsize=8)
def _tag_only_pattern(max_attributes: int) -> re.Pattern[bytes]:
    # The same pattern without its groups: each match whole (the tag and the run after it),
    # which findall gives without building a tuple per tag.
    return re.compile(_tag_regex(max_attributes, b"(?:"))


def _tag_regex(max_attributes: int, group: bytes) -> bytes:
    return (
        group + b"<" + group + b"/?)" + group + _NAME + b")" + group + b"(?:" + _ATTRIBUTE + b"){0,%d}+)" % max_attributes
        + _WS + b"*+/?>)(?:" + group + _WS + b"++)(?=<))?"
    )


@lru_cache(maxsize=8)
def _too_many_attributes(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"<" + _NAME + rb"(?:" + _ATTRIBUTE + rb"){%d}" % (limit + 1))


def _check_text_size(text: bytes, start: int, limits: ParserLimits) -> None:
    # A piece between two '<' holds one tag and the text after it: an upper bound on any
    # text node or attribute value, found without a loop in Python (and none is longer
    # than the document).
    if len(text) - start > limits.max_text_bytes and max(map(len, text[start:].split(b"<"))) > limits.max_text_bytes:
        _refuse("xml.text_too_long", f"a text or attribute value is longer than {limits.max_text_bytes} bytes")


def _check_text_total(text: bytes, start: int, tags: list, limits: ParserLimits) -> None:
    total = len(text) - start - sum(map(len, map(itemgetter(_WHOLE), tags)))
    if total > limits.max_text_bytes_total:
        _refuse("xml.too_much_text", f"the document holds {total} bytes of text; the limit is {limits.max_text_bytes_total}")


def _check_blanks(tags: list) -> None:
    blanks = set(map(itemgetter(_BLANK), tags))
    if len(blanks) > _MAX_BLANK_FORMS:
        # Pretty-printed messages have one or two per nesting level; this also keeps the
        # per-form check below cheap.
        _refuse("xml.whitespace", f"more than {_MAX_BLANK_FORMS} different whitespace runs between tags")
    for blank in blanks:
        if blank and not _bounded_blank(blank):
            _refuse(
                "xml.whitespace",
                f"whitespace between tags {blank[:20]!r} mixes spaces and tabs or holds more than "
                f"{_MAX_BLANK_LINE_BREAKS} line breaks",
            )


def _bounded_blank(blank: bytes) -> bool:
    normal = blank.replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # as libxml2 reads it
    if len(normal) >= _INTERNED_BLANK:
        return True
    return normal.count(b"\n") <= _MAX_BLANK_LINE_BREAKS and not (b" " in normal and b"\t" in normal)


def _names(tags: list, limits: ParserLimits) -> tuple[set[bytes], set[bytes], bytes]:
    """Distinct element names, distinct attribute names (declarations included), and the
    attributes of every tag with their values blanked out, one tag after another, NUL-separated."""
    names = set(map(itemgetter(_NAME_OF), tags))
    # The tag pattern matched these as name="value" pairs: with the values blanked out,
    # what is left is the attribute names, split in C without a regular expression per name.
    blanked = _QUOTED.sub(b" ", b"\x00".join(map(itemgetter(_ATTRIBUTES_OF), tags)))
    attributes = blanked.replace(b"=", b" ").replace(b"\x00", b" ").split()
    if len(attributes) > limits.max_attributes_total:
        _refuse("xml.too_many_attributes", f"more than {limits.max_attributes_total} attributes in the document")
    return names, set(attributes), blanked


def _split(qname: bytes) -> tuple[bytes | None, bytes]:
    prefix, colon, local = qname.partition(b":")
    return (prefix, local) if colon else (None, qname)


def _check_prefix(prefix: bytes | None, qname: bytes) -> None:
    if prefix is not None and (prefix in _RESERVED_PREFIXES or not _PREFIX.fullmatch(prefix)):
        _refuse(
            "xml.prefix",
            f"namespace prefix of {_show(qname)} is not allowed: prefixes are up to three lower-case "
            "letters or digits (sr, ds, ra, xsi, ns3, ...), ns0-ns999 or dsig",
        )


def _check_vocabulary(names: set[bytes], attributes: set[bytes], limits: ParserLimits) -> None:
    attribute_names = {name for name in attributes if not _is_declaration(name)}
    if len(names) + len(attribute_names) > limits.max_distinct_names:
        _refuse(
            "xml.too_many_names",
            f"more than {limits.max_distinct_names} distinct element and attribute names in the document",
        )
    for qname in names:
        prefix, local = _split(qname)
        _check_prefix(prefix, qname)
        if local not in _ELEMENTS:
            _refuse("xml.unknown_name", f"element name {_show(qname)} is not in the DUIS schemas")
    for qname in attribute_names:
        prefix, local = _split(qname)
        _check_prefix(prefix, qname)
        if local not in _ATTRIBUTES:
            _refuse("xml.unknown_name", f"attribute name {_show(qname)} is not in the DUIS schemas")


def _is_declaration(name: bytes) -> bool:
    return name == b"xmlns" or name.startswith(b"xmlns:")


def _check_namespaces(
    tags: list, names: set[bytes], attributes: set[bytes], blanked: bytes, limits: ParserLimits
) -> Scan:
    hits = [m.start() for m in _NAMESPACE_DECLARATION.finditer(blanked)]  # values are blanked: names only
    if not hits:
        return Scan()
    if len(hits) > limits.max_namespace_declarations_total:
        _refuse(
            "xml.too_many_namespaces",
            f"more than {limits.max_namespace_declarations_total} namespace declarations in the document",
        )
    declaring = _declaring(tags, blanked, hits)
    declarations = [declaration for _, _, here in declaring for declaration in here]
    for name, uri in declarations:
        if uri not in NAMESPACES and not (name == b"xmlns" and uri == b""):
            _refuse("xml.unknown_namespace", f"namespace {_show(uri)} is not a DUIS namespace (declared as {_show(name)})")
        _check_prefix(_split(name)[1] if name != b"xmlns" else None, name)
    # Unprefixed attributes are in no namespace: only prefixed ones use a declaration.
    used = {_split(q)[0] for q in names} | {
        _split(q)[0] for q in attributes if b":" in q and not _is_declaration(q)
    }
    scoped: list[tuple[int, bytes, bytes]] = []
    ends_before: list[int] = []
    for position, tag_name, here in declaring:
        if len(here) > limits.max_namespace_declarations:
            _refuse(
                "xml.too_many_namespaces",
                f"element {_show(tag_name)} declares more than {limits.max_namespace_declarations} namespaces",
            )
        for name, uri in here:
            prefix = name[6:] if name != b"xmlns" else None
            if _tolerated_unused(position, tag_name, uri):
                continue
            if prefix not in used:
                refuse_unused(name, tag_name)
            if not ends_before:  # end tags ("/") before each tag: once, and only when needed
                ends_before = [0, *accumulate(map(b"/".__eq__, map(itemgetter(_END), tags)))]
            scoped.append((position - ends_before[position], tag_name, prefix or b""))
    return Scan(scoped_declarations=tuple(scoped))


def _declaring(tags: list, blanked: bytes, hits: list[int]) -> list[tuple[int, bytes, list[tuple[bytes, bytes]]]]:
    """(tag position, tag name, its declarations) of each element that declares a namespace,
    from the declarations' offsets in ``blanked`` (a handful)."""
    out = []
    for position in sorted({blanked.count(b"\x00", 0, hit) for hit in hits}):
        section = tags[position][_ATTRIBUTES_OF]
        here = [(n, v1 or v2) for n, v1, v2 in _ATTRIBUTE_PARTS.findall(section) if _is_declaration(n)]
        out.append((position, tags[position][_NAME_OF], here))
    return out


def _tolerated_unused(position: int, tag_name: bytes, uri: bytes) -> bool:
    # The DCC's own templates and signer declare namespaces they never use on the root
    # (xmlns:xsi, xmlns:ns3 for XMLDSig) and on ds:Signature (a default XMLDSig namespace);
    # exclusive C14N leaves them out of what is signed, so they change no decision.
    if position == 0:  # the root's start tag
        return True
    return _split(tag_name)[1] == b"Signature" and uri == NS_DS.encode()


def refuse_unused(name: bytes, tag_name: bytes) -> None:
    _refuse(
        "xml.unused_namespace",
        f"namespace declaration {_show(name)} on {_show(tag_name)} is used by no name: it is not signed "
        "(exclusive C14N drops it), so it is refused rather than forwarded",
    )
