"""Conformance: validation against the real DUIS XML Schema v5.4 (read from ../shared/reference)."""

from __future__ import annotations

import copy
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from solr_policy.duis.xsd import DuisSchema, DuisSchemaError
from solr_policy.errors import ParseRefused

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is absent"),
]

XSD_DIR = REFERENCE / "duis-xsd"
TEMPLATES = sorted((REFERENCE / "duis-templates").glob("*.XML"))
SIGNED_RESPONSE = REFERENCE / "signed-messages" / "read-inventory-response-5.4.xml"
ECS02 = REFERENCE / "duis-templates" / "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML"
SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"


@pytest.fixture(scope="module")
def schema() -> DuisSchema:
    return DuisSchema.from_folder(XSD_DIR)


def _root(path: Path) -> etree._Element:
    return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()


def _refusal(schema: DuisSchema, root: etree._Element) -> str:
    with pytest.raises(ParseRefused) as info:
        schema.validate(root)
    assert info.value.rule == "duis.schema"
    return info.value.message


def _copy_folder(tmp_path: Path, name: str = "DUIS schema v5.4 (as received)") -> Path:
    dest = tmp_path / name
    shutil.copytree(XSD_DIR, dest)
    for f in dest.iterdir():  # the reference files are read-only; let tests edit the copies
        f.chmod(0o644)
    return dest


def test_schema_identity(schema: DuisSchema) -> None:
    assert schema.version == "5.4"
    assert schema.path == (XSD_DIR / "DUIS Schema V5.4.xsd").resolve()


def test_templates_are_present() -> None:
    assert len(TEMPLATES) >= 4


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_real_templates_validate(schema: DuisSchema, path: Path) -> None:
    schema.validate(_root(path))


def test_real_signed_response_validates(schema: DuisSchema) -> None:
    root = _root(SIGNED_RESPONSE)
    assert root.tag == f"{SR}Response"
    schema.validate(root)


def _set_text(tag: str, text: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        el = root.find(f".//{SR}{tag}")
        assert el is not None
        el.text = text

    return edit


def _remove(tag: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        el = root.find(f".//{SR}{tag}")
        assert el is not None
        el.getparent().remove(el)

    return edit


def _unknown_in_body(root: etree._Element) -> None:
    etree.SubElement(root.find(f"{SR}Body"), f"{SR}FrobnicateMeter")


def _credit_and_prepayment(root: etree._Element) -> None:
    upm = root.find(f".//{SR}UpdatePaymentMode")
    assert upm.find(f"{SR}Credit") is not None
    pre = etree.SubElement(upm, f"{SR}Prepayment")
    for name, value in (("SuspendDebtDisabled", "true"), ("SuspendDebtEmergency", "true"), ("DisablementThreshold", "1")):
        etree.SubElement(pre, f"{SR}{name}").text = value


def _no_schema_version(root: etree._Element) -> None:
    del root.attrib["schemaVersion"]


def _wrong_namespace(root: etree._Element) -> None:
    root.find(f".//{SR}ServiceReference").tag = "{http://www.dccinterface.co.uk/ResponseAndAlert}ServiceReference"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # The v5.4 schema enumerates CommandVariant 1..9 (9 is DCC-internal), so 10 is the first schema error.
        (_set_text("CommandVariant", "10"), ["line 5:", "sr:CommandVariant", "enumeration", "'10'"]),
        (_set_text("CommandVariant", "0"), ["line 5:", "sr:CommandVariant", "'0' is not a valid value"]),
        (_remove("ServiceReference"), ["sr:ServiceReferenceVariant", "Expected is ( sr:ServiceReference )"]),
        (_unknown_in_body, ["sr:FrobnicateMeter", "not expected"]),
        (
            _set_text("RequestID", "90-B3-D5-1F-30-01-00:00-DB-12-34-56-78-90-A0:1002"),
            ["line 4:", "sr:RequestID", "[facet 'pattern']", "90-B3-D5-1F-30-01-00:00"],
        ),
        (_credit_and_prepayment, ["sr:Prepayment", "not expected"]),
        (_no_schema_version, ["line 2:", "sr:Request", "'schemaVersion' is required but missing"]),
        (_wrong_namespace, ["ra:ServiceReference", "not expected", "Expected is ( sr:ServiceReference )"]),
    ],
    ids=["cv10", "cv0", "no-service-reference", "unknown-body-element", "bad-eui", "credit-and-prepayment",
         "no-schema-version", "wrong-namespace"],
)
def test_broken_variants_are_refused(
    schema: DuisSchema, edit: Callable[[etree._Element], None], expected: list[str]
) -> None:
    root = _root(ECS02)
    schema.validate(copy.deepcopy(root))  # the untouched template is fine
    edit(root)
    message = _refusal(schema, root)
    for part in expected:
        assert part in message, (part, message)
    assert "{http://www.dccinterface.co.uk" not in message  # namespaces are shortened
    assert len(message) <= 320


def test_command_variant_9_is_schema_valid(schema: DuisSchema) -> None:
    # Recorded fact of DUIS v5.4: the CommandVariant enumeration includes 9; refusing CV 9
    # in a User's request is a policy rule, not a schema one.
    root = _root(ECS02)
    _set_text("CommandVariant", "9")(root)
    schema.validate(root)


def test_long_pattern_message_is_cut(schema: DuisSchema) -> None:
    root = _root(ECS02)
    _set_text("RequestID", "not-an-id")(root)
    message = _refusal(schema, root)
    assert message.startswith("line 4: Element 'sr:RequestID': [facet 'pattern'] The value 'not-an-id'")
    assert message.endswith("\u2026") and len(message) == 300


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DuisSchemaError, match="no 'DUIS Schema V\\*.xsd' file in") as info:
        DuisSchema.from_folder(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DuisSchemaError, match="does not exist"):
        DuisSchema.from_folder(tmp_path / "nowhere")


def test_uncompilable_schema_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "DUIS Schema V5.4.xsd").write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><oops")
    with pytest.raises(DuisSchemaError, match="does not compile") as info:
        DuisSchema.from_folder(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)
    assert not isinstance(info.value, etree.LxmlError)


def test_missing_import_names_the_location(tmp_path: Path) -> None:
    folder = _copy_folder(tmp_path)
    (folder / "MMC Schema V5.4.xsd").unlink()
    with pytest.raises(DuisSchemaError, match="does not compile") as info:
        DuisSchema.from_folder(folder)
    assert "MMC%20Schema%20V5.4.xsd" in str(info.value)


def test_folder_with_spaces_works_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _copy_folder(tmp_path)
    first = DuisSchema.from_folder(folder)
    assert " " in str(first.path.parent) and first.version == "5.4"
    first.validate(_root(ECS02))
    root = _root(ECS02)
    _set_text("CommandVariant", "10")(root)
    assert "sr:CommandVariant" in _refusal(first, root)

    def no_compile(folder: Path) -> DuisSchema:
        raise AssertionError("compiled twice")

    monkeypatch.setattr(DuisSchema, "_compile", classmethod(lambda cls, f: no_compile(f)))
    assert DuisSchema.from_folder(str(folder)) is first
    assert DuisSchema.from_folder(folder / ".." / folder.name) is first  # same resolved path


def test_url_locations_resolve_to_local_files(tmp_path: Path) -> None:
    folder = _copy_folder(tmp_path)
    main = folder / "DUIS Schema V5.4.xsd"
    text = main.read_text(encoding="utf-8")
    url = "http://www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd"
    assert 'schemaLocation="xmldsig-core-schema.xsd"' in text
    main.write_text(text.replace('schemaLocation="xmldsig-core-schema.xsd"', f'schemaLocation="{url}"'), encoding="utf-8")
    schema = DuisSchema.from_folder(folder)  # no_network: would fail if it were fetched
    schema.validate(_root(SIGNED_RESPONSE))
    # The Signature element is typed by the (local) xmldsig schema: breaking it is caught.
    root = _root(ECS02)
    signed_info = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignedInfo")
    signed_info.tag = "{http://www.w3.org/2000/09/xmldsig#}SignedStuff"
    assert "Element 'ds:SignedStuff': This element is not expected. Expected is ( ds:SignedInfo )" in _refusal(
        schema, root
    )


def test_highest_version_is_picked(tmp_path: Path) -> None:
    folder = _copy_folder(tmp_path)
    shutil.copyfile(folder / "DUIS Schema V5.4.xsd", folder / "DUIS Schema V5.10.xsd")
    schema = DuisSchema.from_folder(folder)
    assert schema.version == "5.10" and schema.path.name == "DUIS Schema V5.10.xsd"


def test_concurrent_validation(schema: DuisSchema) -> None:
    def cases() -> list[tuple[etree._Element, str | None]]:
        out: list[tuple[etree._Element, str | None]] = [(_root(p), None) for p in TEMPLATES]
        for value in ("10", "0"):
            bad = _root(ECS02)
            _set_text("CommandVariant", value)(bad)
            out.append((bad, f"'{value}'"))
        bad = _root(ECS02)
        _no_schema_version(bad)
        out.append((bad, "schemaVersion"))
        return out

    barrier = threading.Barrier(4)
    failures: list[str] = []
    done: list[int] = []

    def worker(n: int, docs: list[tuple[etree._Element, str | None]]) -> None:
        barrier.wait()  # start together so the calls really overlap
        for i in range(500):
            root, expected = docs[(i + n) % len(docs)]
            try:
                schema.validate(root)
                got = None
            except ParseRefused as exc:
                got = exc.message
            ok = got is None if expected is None else (got is not None and expected in got)
            if not ok:
                failures.append(f"thread {n}: expected {expected!r}, got {got!r}")
        done.append(n)

    # One schema shared by all threads; each thread has its own trees (lxml trees are not
    # meant to be used from several threads at once).
    threads = [threading.Thread(target=worker, args=(n, cases())) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(done) == [0, 1, 2, 3]
    assert failures == []


def test_nested_imports_with_spaces_resolve(tmp_path: Path) -> None:
    # Synthetic chain: main -> "a b.xsd" -> "c d.xsd"; the inner import is only seen by libxml2
    # after the resolver has served "a b.xsd", so it exercises the resolver's rewriting.
    xs = "http://www.w3.org/2001/XMLSchema"
    (tmp_path / "DUIS Schema V1.0.xsd").write_text(
        f'<xs:schema xmlns:xs="{xs}" xmlns:b="urn:b" targetNamespace="urn:a">'
        '<xs:import namespace="urn:b" schemaLocation="a b.xsd"/><xs:element name="r" type="b:T"/></xs:schema>'
    )
    (tmp_path / "a b.xsd").write_text(
        f'<xs:schema xmlns:xs="{xs}" xmlns:c="urn:c" targetNamespace="urn:b">'
        '<xs:import namespace="urn:c" schemaLocation="c d.xsd"/>'
        '<xs:simpleType name="T"><xs:restriction base="c:U"/></xs:simpleType></xs:schema>'
    )
    (tmp_path / "c d.xsd").write_text(
        f'<xs:schema xmlns:xs="{xs}" targetNamespace="urn:c">'
        '<xs:simpleType name="U"><xs:restriction base="xs:int"><xs:maxInclusive value="5"/></xs:restriction>'
        "</xs:simpleType></xs:schema>"
    )
    schema = DuisSchema.from_folder(tmp_path)
    assert schema.version == "1.0"
    schema.validate(etree.fromstring(b'<r xmlns="urn:a">5</r>'))
    assert "maxInclusive" in _refusal(schema, etree.fromstring(b'<r xmlns="urn:a">6</r>'))
