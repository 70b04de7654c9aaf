"""The DUIS input boundary: hardened parsing (``parse_document``) and the strict typed
reading of a request (``build_request``). Every refusal is checked by rule id and message."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from conftest import DEVICE_EUI, USER_EUI, request_xml
from solr_policy.duis.models import MAX_COUNTER, OtherBody, SignedPreCommand, UpdatePaymentMode
from solr_policy.duis.parser import _DOCTYPE, NS_DS, NS_RA, NS_SR, ParserLimits, parse_document
from solr_policy.duis.request import build_request
from solr_policy.errors import ParseRefused, Refused

SR = f'xmlns:sr="{NS_SR}"'


def refused(raw, limits: ParserLimits | None = None) -> ParseRefused:
    with pytest.raises(ParseRefused) as info:
        parse_document(raw, limits) if limits else parse_document(raw)
    return info.value


def request_refused(raw: bytes) -> ParseRefused:
    root = parse_document(raw)  # the document itself is acceptable XML
    with pytest.raises(ParseRefused) as info:
        build_request(root)
    return info.value


def parse(raw: bytes):
    return build_request(parse_document(raw))


def upm(inner: str) -> str:
    return f"<sr:UpdatePaymentMode>{inner}</sr:UpdatePaymentMode>"


PREPAYMENT = (
    "<sr:Prepayment><sr:SuspendDebtDisabled>{a}</sr:SuspendDebtDisabled>"
    "<sr:SuspendDebtEmergency>{b}</sr:SuspendDebtEmergency>"
    "<sr:DisablementThreshold>{n}</sr:DisablementThreshold></sr:Prepayment>"
)


def prepayment(a: str = "true", b: str = "false", n: str = "556677") -> str:
    return upm(PREPAYMENT.format(a=a, b=b, n=n))


def with_header(header: str, body: str = upm("<sr:Credit/>")) -> bytes:
    return (
        f'<sr:Request {SR} schemaVersion="5.4"><sr:Header>{header}</sr:Header>'
        f"<sr:Body>{body}</sr:Body></sr:Request>"
    ).encode()


RID = f"<sr:RequestID>{USER_EUI}:{DEVICE_EUI}:7</sr:RequestID>"
CV = "<sr:CommandVariant>4</sr:CommandVariant>"
SRV = "<sr:ServiceReference>1.6</sr:ServiceReference><sr:ServiceReferenceVariant>1.6</sr:ServiceReferenceVariant>"


# -- parse_document: refusals ------------------------------------------------------------------
class TestParseDocumentRefusals:
    def test_empty(self):
        for raw in (b"", b"  \n\t "):
            err = refused(raw)
            assert err.rule == "xml.empty"
            assert "empty" in err.message

    @pytest.mark.parametrize("raw", ["<sr:Request/>", None, 42, ["<a/>"]])
    def test_not_bytes(self, raw):
        err = refused(raw)
        assert err.rule == "xml.type"
        assert "bytes" in err.message

    def test_bytearray_and_memoryview_accepted(self):
        raw = request_xml()
        assert parse_document(bytearray(raw)).tag == f"{{{NS_SR}}}Request"
        assert parse_document(memoryview(raw)).tag == f"{{{NS_SR}}}Request"

    def test_too_large(self):
        raw = request_xml()
        err = refused(raw, ParserLimits(max_bytes=100))
        assert err.rule == "xml.too_large"
        assert f"{len(raw)} bytes" in err.message and "limit is 100" in err.message
        # exactly at the limit is fine
        assert parse_document(raw, ParserLimits(max_bytes=len(raw))) is not None

    def test_too_deep(self):
        # Request/Body/UpdatePaymentMode/Credit: four levels, the root counting as the first
        raw = request_xml()
        err = refused(raw, ParserLimits(max_depth=3))
        assert err.rule == "xml.too_deep"
        assert "deeper than 3 levels" in err.message
        assert parse_document(raw, ParserLimits(max_depth=4)) is not None

    def test_too_deep_default_limit(self):
        nested = "<sr:Body>" * 40 + "</sr:Body>" * 40
        err = refused(request_xml(body=nested))
        assert err.rule == "xml.too_deep"
        assert "32" in err.message

    def test_very_deep_is_refused_by_libxml2_not_a_recursion_error(self):
        nested = "<sr:Body>" * 5000 + "</sr:Body>" * 5000
        err = refused(request_xml(body=nested))
        assert err.rule == "xml.malformed"
        assert "depth" in err.message.lower()

    def test_too_many_elements(self):
        body = "<sr:Body>" + "<sr:Credit/>" * 30 + "</sr:Body>"
        err = refused(request_xml(body=body), ParserLimits(max_elements=20))
        assert err.rule == "xml.too_many_elements"
        assert "more than 20 elements" in err.message

    @pytest.mark.parametrize(
        "raw, fragment",
        [
            (b"<sr:Request", "not well-formed"),
            (f'<sr:Request {SR} schemaVersion="5.4"><sr:Header></sr:Request>'.encode(), "mismatch"),
            (b"<a>&undefined;</a>", "undefined"),
            (b"\x00\x01\x02", "not well-formed"),
            (b"<Body/><Header/>", "not well-formed"),
        ],
    )
    def test_malformed(self, raw, fragment):
        err = refused(raw)
        assert err.rule == "xml.malformed"
        assert err.message.startswith("not well-formed XML")
        assert fragment.lower() in err.message.lower()

    def test_xxe_file(self):
        raw = (
            '<?xml version="1.0"?>\n<!DOCTYPE sr:Request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            f'<sr:Request {SR} schemaVersion="5.4">&xxe;</sr:Request>'
        ).encode()
        err = refused(raw)
        assert err.rule == "xml.dtd"
        assert "DTD" in err.message
        assert "root:" not in err.message

    def test_billion_laughs(self):
        entities = '<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
        )
        raw = f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]><lolz>&lol9;</lolz>'.encode()
        err = refused(raw)
        assert err.rule == "xml.dtd"
        assert "entity" in err.message

    def test_external_dtd(self):
        raw = (
            '<!DOCTYPE sr:Request SYSTEM "http://attacker.example/duis.dtd">'
            f'<sr:Request {SR} schemaVersion="5.4"/>'
        ).encode()
        err = refused(raw)
        assert err.rule == "xml.dtd"

    def test_doctype_spelt_oddly_still_caught_by_the_byte_scan(self):
        err = refused(f'<!doctype x><sr:Request {SR} schemaVersion="5.4"/>'.encode())
        assert err.rule == "xml.dtd"

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
    def test_doctype_hidden_in_wide_encoding_refused_as_not_utf8(self, encoding, tmp_path):
        # The external subset exists but is not a DTD: had libxml2 loaded it, the parse would
        # fail as malformed ("Content error in the external subset"). DUIS messages are UTF-8:
        # a wide encoding is refused before lxml sees the bytes, so the file is never read.
        dtd = tmp_path / "evil.dtd"
        dtd.write_text("this is not a DTD at all <<<")
        declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
        text = (
            f'{declaration}<!DOCTYPE sr:Request SYSTEM "{dtd.as_uri()}">'
            f'<sr:Request {SR} schemaVersion="5.4"><sr:Header/></sr:Request>'
        )
        raw = text.encode(encoding)
        if encoding == "utf-16-le":
            raw = b"\xff\xfe" + raw
        assert _DOCTYPE.search(raw) is None  # the cheap byte scan cannot see it
        err = refused(raw)
        assert err.rule == "xml.encoding"
        assert "UTF-8" in err.message

    def test_internal_subset_hidden_in_utf16_refused(self):
        text = (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]>'
            f'<sr:Request {SR} schemaVersion="5.4">&a;</sr:Request>'
        )
        err = refused(text.encode("utf-16"))
        assert err.rule == "xml.encoding"

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "latin-1"])
    def test_other_encodings_refused(self, encoding):
        text = f'<?xml version="1.0" encoding="{encoding.upper()}"?>' + request_xml().decode().split("?>", 1)[1]
        raw = text.encode(encoding)
        if encoding == "utf-16-be":
            raw = b"\xfe\xff" + raw
        err = refused(raw)
        assert err.rule == "xml.encoding"
        assert "UTF-8" in err.message

    def test_declared_unknown_encoding_refused(self):
        err = refused(b'<?xml version="1.0" encoding="no-such-encoding"?><Body/>')
        assert err.rule == "xml.encoding"
        assert "no-such-encoding" in err.message

    def test_bytes_that_are_not_utf8_refused(self):
        raw = request_xml().replace(b"<sr:Body>", b"<sr:Body>\xe9t\xe9")
        err = refused(raw)
        assert err.rule == "xml.encoding"
        assert "byte offset" in err.message

    def test_utf8_with_a_byte_order_mark_is_fine(self):
        assert parse(b"\xef\xbb\xbf" + request_xml()).header.request_id.counter == 1

    @pytest.mark.parametrize(
        "raw",
        [
            f'<?pi data?><sr:Request {SR} schemaVersion="5.4"/>',
            f'<sr:Request {SR} schemaVersion="5.4"/><?pi data?>',
            f'<sr:Request {SR} schemaVersion="5.4"><sr:Header><?pi data?></sr:Header></sr:Request>',
            f'<?xml-stylesheet href="x.xsl"?><sr:Request {SR} schemaVersion="5.4"/>',
        ],
    )
    def test_processing_instruction(self, raw):
        err = refused(raw.encode())
        assert err.rule == "xml.processing_instruction"
        assert "processing instructions" in err.message

    def test_wrong_root(self):
        err = refused(f'<sr:Header {SR} schemaVersion="5.4"/>'.encode())
        assert err.rule == "duis.root"
        assert "Header" in err.message and NS_SR in err.message

    def test_wrong_namespace_root(self):
        err = refused(f'<sr:Request xmlns:sr="{NS_RA}" schemaVersion="5.4"/>'.encode())
        assert err.rule == "duis.root"
        assert NS_RA in err.message

    def test_root_in_no_namespace(self):
        err = refused(b'<Request schemaVersion="5.4"/>')
        assert err.rule == "duis.root"
        assert "no namespace" in err.message

    @pytest.mark.parametrize("attr", ["", 'schemaVersion=""', 'schemaVersion="five"', 'schemaVersion="\u0665.\u0664"'])
    def test_missing_or_bad_schema_version(self, attr):
        err = refused(f"<sr:Request {SR} {attr}/>".encode())
        assert err.rule == "duis.schema_version"
        assert "schemaVersion" in err.message

    def test_response_root_accepted(self):
        root = parse_document(f'<sr:Response {SR} schemaVersion="5.4"/>'.encode())
        assert root.tag == f"{{{NS_SR}}}Response"


# -- build_request: refusals ---------------------------------------------------------------------
class TestBuildRequestRefusals:
    def test_duplicate_request_id(self):
        err = request_refused(with_header(RID + RID + CV + SRV))
        assert err.rule == "duis.duplicate"
        assert "RequestID" in err.message

    def test_request_id_repeated_later(self):
        err = request_refused(with_header(RID + CV + RID + SRV))
        assert err.rule == "duis.order"
        assert "RequestID" in err.message

    def test_two_body_children(self):
        err = request_refused(request_xml(body=upm("<sr:Credit/>") + upm("<sr:Credit/>")))
        assert err.rule == "duis.body"
        assert "found 2" in err.message

    def test_empty_body(self):
        err = request_refused(request_xml(body=""))
        assert err.rule == "duis.body"
        assert "found 0" in err.message

    def test_two_credit(self):
        err = request_refused(request_xml(body=upm("<sr:Credit/><sr:Credit/>")))
        assert err.rule == "duis.duplicate"
        assert "Credit" in err.message

    def test_two_headers(self):
        raw = request_xml().replace(b"<sr:Body>", b"<sr:Header/><sr:Body>")
        err = request_refused(raw)
        assert err.rule == "duis.structure"
        assert "Header, Header, Body" in err.message

    def test_body_before_header(self):
        raw = (
            f'<sr:Request {SR} schemaVersion="5.4"><sr:Body>{upm("<sr:Credit/>")}</sr:Body>'
            f"<sr:Header>{RID}{CV}{SRV}</sr:Header></sr:Request>"
        ).encode()
        err = request_refused(raw)
        assert err.rule == "duis.structure"
        assert "Body, Header" in err.message

    def test_header_element_in_wrong_namespace(self):
        header = RID + f'<x:CommandVariant xmlns:x="{NS_RA}">4</x:CommandVariant>' + SRV
        err = request_refused(with_header(header))
        assert err.rule == "duis.namespace"
        assert NS_RA in err.message and "CommandVariant" in err.message

    def test_header_element_in_no_namespace(self):
        err = request_refused(with_header(RID + "<CommandVariant>4</CommandVariant>" + SRV))
        assert err.rule == "duis.namespace"
        assert "(none)" in err.message

    def test_body_element_in_wrong_namespace(self):
        body = f'<x:UpdatePaymentMode xmlns:x="{NS_RA}"><x:Credit/></x:UpdatePaymentMode>'
        err = request_refused(request_xml(body=body))
        assert err.rule == "duis.namespace"
        assert "UpdatePaymentMode" in err.message

    def test_credit_in_wrong_namespace(self):
        body = upm(f'<x:Credit xmlns:x="{NS_DS}"/>')
        err = request_refused(request_xml(body=body))
        assert err.rule == "duis.namespace"
        assert "Credit" in err.message

    def test_elements_out_of_order(self):
        err = request_refused(with_header(CV + RID + SRV))
        assert err.rule == "duis.order"
        assert "RequestID" in err.message

    def test_body_elements_out_of_order(self):
        body = upm("<sr:Credit/><sr:ExecutionDateTime>2030-01-01T00:00:00Z</sr:ExecutionDateTime>")
        err = request_refused(request_xml(body=body))
        assert err.rule == "duis.order"
        assert "ExecutionDateTime" in err.message

    def test_unexpected_element(self):
        err = request_refused(with_header(RID + "<sr:Credit>1</sr:Credit>" + CV + SRV))
        assert err.rule == "duis.unexpected_element"
        assert "Credit" in err.message

    def test_missing_element(self):
        err = request_refused(with_header(RID + SRV))
        assert err.rule == "duis.missing_element"
        assert "CommandVariant" in err.message

    def test_unexpected_attribute_xsi_type(self):
        raw = request_xml(
            body='<sr:UpdatePaymentMode xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:type="sr:Other"><sr:Credit/></sr:UpdatePaymentMode>'
        )
        err = request_refused(raw)
        assert err.rule == "duis.attribute"
        assert "XMLSchema-instance}type" in err.message

    @pytest.mark.parametrize(
        "old, new",
        [
            (b"<sr:Header>", b'<sr:Header Id="h">'),
            (b"<sr:Body>", b'<sr:Body Id="b">'),
            (b"<sr:RequestID>", b'<sr:RequestID Id="r">'),
            (b"<sr:Credit/>", b'<sr:Credit index="2"/>'),
            (b'schemaVersion="5.4"', b'schemaVersion="5.4" Id="root"'),
        ],
    )
    def test_unexpected_attribute_anywhere(self, old, new):
        raw = request_xml()
        assert old in raw
        err = request_refused(raw.replace(old, new))
        assert err.rule == "duis.attribute"
        assert "unexpected attribute" in err.message

    def test_mixed_content_between_elements(self):
        raw = request_xml().replace(b"</sr:RequestID>", b"</sr:RequestID>sneaky text")
        err = request_refused(raw)
        assert err.rule == "duis.mixed_content"
        assert "RequestID" in err.message

    def test_mixed_content_leading_text(self):
        err = request_refused(request_xml(body="text" + upm("<sr:Credit/>")))
        assert err.rule == "duis.mixed_content"
        assert "Body" in err.message

    def test_mixed_content_in_root(self):
        raw = request_xml().replace(b"</sr:Header>", b"</sr:Header>junk")
        err = request_refused(raw)
        assert err.rule == "duis.mixed_content"

    def test_value_element_holding_elements(self):
        raw = request_xml().replace(b"<sr:CommandVariant>4", b"<sr:CommandVariant><sr:Credit/>4")
        err = request_refused(raw)
        assert err.rule == "duis.mixed_content"
        assert "CommandVariant" in err.message

    def test_credit_with_text(self):
        err = request_refused(request_xml(body=upm("<sr:Credit>yes</sr:Credit>")))
        assert err.rule == "duis.mixed_content"
        assert "Credit" in err.message

    def test_credit_with_child(self):
        err = request_refused(request_xml(body=upm("<sr:Credit><sr:Prepayment/></sr:Credit>")))
        assert err.rule == "duis.value"
        assert "Credit must be empty" in err.message

    @pytest.mark.parametrize(
        "old, new, where",
        [
            (b"<sr:CommandVariant>", b"<!-- c --><sr:CommandVariant>", "Header"),
            # "...:1<!---->0" reads as counter 1 to a naive .text reader, 10 to another
            (b":1</sr:RequestID>", b":1<!---->0</sr:RequestID>", "RequestID"),
            (b"<sr:Credit/>", b"<!-- x --><sr:Credit/>", "UpdatePaymentMode"),
        ],
    )
    def test_comment_refused_at_the_boundary_and_by_the_strict_reader(self, old, new, where):
        raw = request_xml(counter=1).replace(old, new)
        assert raw != request_xml(counter=1)
        err = refused(raw)
        assert err.rule == "xml.comment"
        assert "2007" in err.message  # the message says why a comment is dangerous
        # The strict reader refuses it too, for trees that did not come through parse_document.
        with pytest.raises(ParseRefused) as info:
            build_request(etree.fromstring(raw))
        assert info.value.rule == "duis.comment" and where in info.value.message

    def test_comment_inside_prepayment_value(self):
        raw = request_xml(body=prepayment(n="55<!-- -->6677"))
        assert refused(raw).rule == "xml.comment"
        with pytest.raises(ParseRefused) as info:
            build_request(etree.fromstring(raw))
        assert info.value.rule == "duis.comment" and "DisablementThreshold" in info.value.message

    @pytest.mark.parametrize(
        "rid, fragment",
        [
            (f"90-B3-D5-1F-30-01-00:{DEVICE_EUI}:1", "not an EUI-64"),
            (f"{USER_EUI}:00-DB-12-34-56-78-90-AZ:1", "not an EUI-64"),
            (f"90-B3-D5-1F-30-01-00-00-00:{DEVICE_EUI}:1", "not an EUI-64"),
            (f"{USER_EUI}:{DEVICE_EUI}:{MAX_COUNTER + 1}", "larger than 2^64-1"),
            (f"{USER_EUI}:{DEVICE_EUI}:007", "leading zeros"),
            (f"{USER_EUI}:{DEVICE_EUI}:-1", "leading zeros"),
            (f"{USER_EUI}:{DEVICE_EUI}:+1", "leading zeros"),
            (f"{USER_EUI}:{DEVICE_EUI}:1.0", "leading zeros"),
            (f"{USER_EUI}:{DEVICE_EUI}:\u0661\u0662", "leading zeros"),  # Arabic-Indic digits
            (f"{USER_EUI}:{DEVICE_EUI}:", "leading zeros"),
            (f"{USER_EUI}:{DEVICE_EUI}", "originator:target:counter"),
            (f"{USER_EUI}:{DEVICE_EUI}:1:2", "originator:target:counter"),
            ("", "originator:target:counter"),
        ],
    )
    def test_malformed_request_id(self, rid, fragment):
        raw = with_header(f"<sr:RequestID>{rid}</sr:RequestID>" + CV + SRV)
        err = request_refused(raw)
        assert err.rule == "duis.request_id"
        assert err.code == "E1"
        assert fragment in err.message

    def test_eui_with_trailing_newline_inside_request_id(self):
        rid = f"{USER_EUI}\n:{DEVICE_EUI}:1"
        err = request_refused(with_header(f"<sr:RequestID>{rid}</sr:RequestID>" + CV + SRV))
        assert err.rule == "duis.request_id"
        assert "not an EUI-64" in err.message

    def test_malformed_preceding_request_id(self):
        header = RID + f"<sr:PrecedingServiceRequestID>{USER_EUI}:bad:1</sr:PrecedingServiceRequestID>" + CV + SRV
        err = request_refused(with_header(header))
        assert err.rule == "duis.request_id"
        assert "PrecedingServiceRequestID" in err.message

    @pytest.mark.parametrize("cv", ["0", "9", "x", "", "44", "\u0664", "4.0"])
    def test_bad_command_variant(self, cv):
        err = request_refused(with_header(RID + f"<sr:CommandVariant>{cv}</sr:CommandVariant>" + SRV))
        assert err.rule == "duis.command_variant"
        assert err.code == "E12"
        assert "CommandVariant must be 1 to 8" in err.message

    @pytest.mark.parametrize("srv", ["1.6.1.1", "x", "", "\u0661.\u0666", "1.6\u00a0"])
    def test_bad_service_reference(self, srv):
        header = RID + CV + f"<sr:ServiceReference>{srv}</sr:ServiceReference><sr:ServiceReferenceVariant>1.6</sr:ServiceReferenceVariant>"
        err = request_refused(with_header(header))
        assert err.rule == "duis.header"
        assert "service_reference" in err.message

    @pytest.mark.parametrize("value", ["yes", "TRUE", "True", "2", "", "true\u00a0"])
    def test_bad_boolean(self, value):
        err = request_refused(request_xml(body=prepayment(a=value)))
        assert err.rule == "duis.value"
        assert "SuspendDebtDisabled" in err.message and "true or false" in err.message

    def test_bad_first_in_sequence(self):
        header = RID + "<sr:FirstInSequence>maybe</sr:FirstInSequence>" + CV + SRV
        err = request_refused(with_header(header))
        assert err.rule == "duis.value"
        assert "FirstInSequence" in err.message

    @pytest.mark.parametrize("value", ["12.5", "abc", "", "1e3", "\uff15\uff15", "1" * 21])
    def test_bad_integer(self, value):
        err = request_refused(request_xml(body=prepayment(n=value)))
        assert err.rule == "duis.value"
        assert "DisablementThreshold" in err.message and "integer" in err.message

    def test_integer_out_of_range(self):
        err = request_refused(request_xml(body=prepayment(n=str(2**31))))
        assert err.rule == "duis.value"
        assert "disablement_threshold" in err.message

    def test_prepayment_missing_field(self):
        body = upm("<sr:Prepayment><sr:SuspendDebtDisabled>true</sr:SuspendDebtDisabled></sr:Prepayment>")
        err = request_refused(request_xml(body=body))
        assert err.rule == "duis.missing_element"
        assert "SuspendDebtEmergency" in err.message

    @pytest.mark.parametrize(
        "value, fragment",
        [
            ("2030-01-01T00:00:00", "time zone"),
            ("2030-01-01", "not a date-time"),
            ("2030-13-01T00:00:00Z", "not a date-time"),
            ("2030-W01-1T00:00Z", "not a date-time"),
            ("20300101T000000Z", "not a date-time"),
            ("2030-01-01 00:00:00Z", "not a date-time"),
            ("tomorrow", "not a date-time"),
        ],
    )
    def test_bad_execution_date_time(self, value, fragment):
        body = upm(f"<sr:ExecutionDateTime>{value}</sr:ExecutionDateTime><sr:Credit/>")
        err = request_refused(request_xml(body=body))
        assert err.rule == "duis.value"
        assert "ExecutionDateTime" in err.message and fragment in err.message

    @pytest.mark.parametrize("payload", ["!!!notbase64", "QUJD*", "QUJDRA=", "\u00e9\u00e9\u00e9\u00e9"])
    def test_signed_pre_command_bad_base64(self, payload):
        body = f"<sr:SignedPreCommand><sr:GBCSPayload>{payload}</sr:GBCSPayload></sr:SignedPreCommand>"
        err = request_refused(request_xml(cv=5, body=body))
        assert err.rule == "duis.base64"
        assert "not valid base64" in err.message

    @pytest.mark.parametrize("payload", ["", "   \n  "])
    def test_signed_pre_command_empty_payload(self, payload):
        body = f"<sr:SignedPreCommand><sr:GBCSPayload>{payload}</sr:GBCSPayload></sr:SignedPreCommand>"
        err = request_refused(request_xml(cv=5, body=body))
        assert err.rule == "duis.base64"
        assert "empty" in err.message

    def test_signed_pre_command_missing_payload(self):
        err = request_refused(request_xml(cv=5, body="<sr:SignedPreCommand/>"))
        assert err.rule == "duis.missing_element"
        assert "GBCSPayload" in err.message

    def test_credit_and_prepayment_both(self):
        body = upm("<sr:Credit/>" + PREPAYMENT.format(a="true", b="true", n="1"))
        err = request_refused(request_xml(body=body))
        assert err.rule == "duis.choice"
        assert "exactly one of sr:Credit or sr:Prepayment" in err.message

    def test_neither_credit_nor_prepayment(self):
        for body in (upm(""), upm("<sr:ExecutionDateTime>2030-01-01T00:00:00Z</sr:ExecutionDateTime>")):
            err = request_refused(request_xml(body=body))
            assert err.rule == "duis.choice"

    def test_response_is_not_a_request(self):
        err = request_refused(f'<sr:Response {SR} schemaVersion="5.4"/>'.encode())
        assert err.rule == "duis.root"
        assert "Response" in err.message


# -- build_request: acceptance -------------------------------------------------------------------
class TestBuildRequestAccepts:
    def test_credit(self):
        request = parse(request_xml(counter=42))
        rid = request.header.request_id
        assert (rid.originator, rid.target, rid.counter) == ("90B3D51F30010000", "00DB1234567890A0", 42)
        assert str(rid) == f"{USER_EUI}:{DEVICE_EUI}:42"
        assert request.schema_version == "5.4"
        assert request.header.command_variant == 4
        assert request.header.service_reference == request.header.service_reference_variant == "1.6"
        assert isinstance(request.body, UpdatePaymentMode)
        assert request.body.mode == "credit" and request.body.prepayment is None
        assert request.body.execution_date_time is None
        assert request.body_element == "UpdatePaymentMode"

    def test_prepayment_fields(self):
        request = parse(request_xml(body=prepayment(a="1", b="false", n="-12")))
        body = request.body
        assert body.mode == "prepayment"
        assert body.prepayment.suspend_debt_disabled is True
        assert body.prepayment.suspend_debt_emergency is False
        assert body.prepayment.disablement_threshold == -12

    def test_values_with_xml_whitespace(self):
        request = parse(request_xml(body=prepayment(a="\n  true \t", b=" 0 ", n=" 5\n")))
        assert request.body.prepayment.suspend_debt_disabled is True
        assert request.body.prepayment.disablement_threshold == 5

    def test_execution_date_time(self):
        body = upm("<sr:ExecutionDateTime>3000-12-31T00:00:00Z</sr:ExecutionDateTime><sr:Credit/>")
        request = parse(request_xml(body=body))
        assert request.body.execution_date_time == datetime(3000, 12, 31, tzinfo=timezone.utc)

    def test_execution_date_time_with_offset(self):
        body = upm("<sr:ExecutionDateTime>2030-06-01T01:30:00.5+01:00</sr:ExecutionDateTime><sr:Credit/>")
        when = parse(request_xml(body=body)).body.execution_date_time
        assert when.astimezone(timezone.utc) == datetime(2030, 6, 1, 0, 30, 0, 500000, tzinfo=timezone.utc)

    def test_signed_pre_command(self):
        payload = bytes.fromhex("DF0901") + bytes(range(40))
        text = base64.b64encode(payload).decode()
        folded = "\n".join(text[i : i + 20] for i in range(0, len(text), 20))
        body = (
            "<sr:SignedPreCommand><sr:ExecutionDateTime>2030-01-01T00:00:00Z</sr:ExecutionDateTime>"
            f"<sr:GBCSPayload>{folded}</sr:GBCSPayload></sr:SignedPreCommand>"
        )
        request = parse(request_xml(cv=5, body=body))
        assert isinstance(request.body, SignedPreCommand)
        assert request.body.gbcs_payload == payload
        assert request.body.execution_date_time == datetime(2030, 1, 1, tzinfo=timezone.utc)
        assert request.header.command_variant == 5
        assert request.body_element == "SignedPreCommand"

    def test_unknown_srv_body_is_other(self):
        body = "<sr:UpdateMeterBalance><sr:PrepaymentMode><sr:AdjustMeterBalance>1200000</sr:AdjustMeterBalance></sr:PrepaymentMode></sr:UpdateMeterBalance>"
        request = parse(request_xml(srv="1.5", body=body))
        assert isinstance(request.body, OtherBody)
        assert request.body.element == "UpdateMeterBalance"
        assert request.body_element == "UpdateMeterBalance"
        assert request.summary()["body"] == "UpdateMeterBalance"
        assert request.summary()["srv"] == "1.5"

    def test_counter_max_accepted(self):
        request = parse(request_xml(counter=MAX_COUNTER))
        assert request.header.request_id.counter == 2**64 - 1

    def test_counter_zero_accepted(self):
        assert parse(request_xml(counter=0)).header.request_id.counter == 0

    def test_lower_case_and_plain_euis_are_canonicalised(self):
        request = parse(request_xml(originator="90-b3-d5-1f-30-01-00-00", target="00DB1234567890A0"))
        assert request.header.request_id.originator == "90B3D51F30010000"
        assert request.header.request_id.target == "00DB1234567890A0"

    def test_optional_header_fields(self):
        header = (
            RID
            + "<sr:FirstInSequence>true</sr:FirstInSequence>"
            + f"<sr:PrecedingServiceRequestID>{USER_EUI}:{DEVICE_EUI}:6</sr:PrecedingServiceRequestID>"
            + CV
            + SRV
        )
        request = parse(with_header(header))
        assert request.header.first_in_sequence is True
        assert request.header.preceding_request_id.counter == 6

    def test_signature_child_of_the_root_is_skipped(self):
        raw = request_xml().replace(
            b"</sr:Request>", b"<ds:Signature><ds:SignedInfo/></ds:Signature></sr:Request>"
        )
        assert parse(raw).body.mode == "credit"

    @pytest.mark.parametrize(
        "raw",
        [
            request_xml().replace(b"</sr:Request>", b"<!-- note --></sr:Request>"),
            request_xml() + b"<!-- after -->",
            request_xml().replace(b"<sr:Request ", b"<!-- before --><sr:Request "),
            request_xml().replace(b"</sr:Request>", b"<ds:Signature><!-- note --><ds:SignedInfo/></ds:Signature></sr:Request>"),
        ],
    )
    def test_comment_anywhere_is_refused(self, raw):
        assert refused(raw).rule == "xml.comment"


# -- fuzzing: only Refused, never anything else ------------------------------------------------
_BASE = request_xml(body=prepayment())
_FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])


def _only_refusals(raw: bytes) -> None:
    try:
        build_request(parse_document(raw))
    except Refused:
        pass


@_FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes(raw):
    _only_refusals(raw)


@st.composite
def _mutated(draw):
    data = bytearray(_BASE)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "token"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            length = draw(st.integers(1, 80))
            data[pos:pos] = data[pos : pos + length]
        else:
            token = draw(
                st.sampled_from(
                    [b"<!-- x -->", b"<?pi?>", b"&amp;", b"&lt;", b"<![CDATA[<x>]]>", b"\xc3\xa9", b"<sr:Credit/>",
                     b"</sr:Body>", b'xsi:type="x"', b"\xef\xbb\xbf", b"\x00", b"\xff\xfe", b"<!DOCTYPE a>"]
                )
            )
            data[pos:pos] = token
    return bytes(data)


@_FUZZ
@given(_mutated())
def test_fuzz_mutations_of_a_valid_request(raw):
    _only_refusals(raw)


@_FUZZ
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["counter", "cv", "srv", "a", "n", "when", "payload"]),
)
def test_fuzz_field_values(value, field):
    value = re.sub(r"[<&]", "", value)
    if field in ("counter", "cv", "srv"):
        raw = request_xml(**{field: value})
    elif field in ("a", "n"):
        raw = request_xml(body=prepayment(**{field: value}))
    elif field == "when":
        raw = request_xml(body=upm(f"<sr:ExecutionDateTime>{value}</sr:ExecutionDateTime><sr:Credit/>"))
    else:
        raw = request_xml(body=f"<sr:SignedPreCommand><sr:GBCSPayload>{value}</sr:GBCSPayload></sr:SignedPreCommand>")
    _only_refusals(raw)


def test_valid_base_document_parses():
    # the fuzz corpus starts from a request that is accepted as is
    assert parse(_BASE).body.prepayment.disablement_threshold == 556677


def _request_id_by_parts(text: str):
    """RequestId.parse without its one-pattern shortcut: split, then each part checked."""
    from solr_policy.duis.models import MAX_COUNTER, RequestId
    from solr_policy.eui import parse_eui64

    originator, target, counter = text.split(":")
    if not re.fullmatch(r"[0-9]+", counter) or (len(counter) > 1 and counter[0] == "0") or int(counter) > MAX_COUNTER:
        raise ValueError(counter)
    return RequestId(originator=parse_eui64(originator), target=parse_eui64(target), counter=int(counter))


@_FUZZ
@given(
    st.lists(
        st.sampled_from(["90-B3-D5-1F-30-01-00-00", "90b3d51f30010000", "90-b3-D5-1f-30-01-00-0", "90B3D51F3001000G", "",
                         "0", "00", "7", "18446744073709551615", "18446744073709551616", "0099", "١٢", "1\n", " 1",
                         "90-B3-D5-1F-30-01-00-00\n", "-", "90B3D51F30010000"]),
        min_size=1, max_size=4,
    )
)
def test_request_id_shortcut_agrees_with_the_parts(pieces):
    from solr_policy.duis.models import RequestId

    text = ":".join(pieces)
    try:
        expected = _request_id_by_parts(text)
    except ValueError:
        with pytest.raises(ValueError):
            RequestId.parse(text)
        return
    assert RequestId.parse(text) == expected
