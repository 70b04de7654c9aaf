"""Input that cannot stall the engine (issue 11, items 3 and 4): the pre-scan's bounds and
vocabulary, checked before lxml, C14N or any signature work; and the unsigned additions
(comments, ds:Object, attributes on the signature, unused namespace declarations) refused
on purpose. Each test asserts a refusal and its rule; the timings live in
scripts/adversarial.py."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import REFERENCE, request_xml
from solr_policy.duis.parser import NS_DS, NS_RA, NS_SR, ParserLimits, parse_document
from solr_policy.duis.vocabulary import ATTRIBUTE_NAMES, ELEMENT_NAMES
from solr_policy.engine import Engine
from solr_policy.errors import ParseRefused
from solr_policy.policy import PolicySet
from solr_policy.testing.scenario import SolrScenario

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SIGNATURE = (
    f'<ds:Signature xmlns:ds="{NS_DS}"><ds:SignedInfo>'
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    '<ds:Reference URI=""><ds:DigestValue>AA==</ds:DigestValue></ds:Reference>'
    "</ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>"
)


def refused(raw: bytes, limits: ParserLimits | None = None) -> ParseRefused:
    with pytest.raises(ParseRefused) as info:
        parse_document(raw, limits) if limits else parse_document(raw)
    return info.value


def with_body(body: str, **kwargs) -> bytes:
    return request_xml(body=body, **kwargs)


def signed_shape(extra: str = "", signature: str = SIGNATURE) -> bytes:
    return request_xml().replace(b"</sr:Request>", (signature + extra).encode() + b"</sr:Request>")


# -- the measured inputs -------------------------------------------------------------
class TestMeasuredAttacks:
    def test_95000_attributes_on_one_element_are_refused_before_parsing(self):
        attributes = "".join(f' a{i}="1"' for i in range(95_000))
        raw = request_xml().replace(b'schemaVersion="5.4"', b'schemaVersion="5.4"' + attributes.encode())
        assert 900_000 < len(raw) < ParserLimits().max_bytes  # inside the size limit
        err = refused(raw)
        assert err.rule == "xml.too_many_attributes"
        assert "more than 16 attributes" in err.message

    def test_100_new_names_are_refused_by_the_vocabulary(self):
        body = "".join(f'<sr:E{i} a{i}="1"/>' for i in range(50))
        err = refused(with_body(body))
        assert err.rule == "xml.unknown_name" and "not in the DUIS schemas" in err.message

    def test_comment_splitting_the_counter_is_refused_by_the_engine(self, store, pki):
        scenario = SolrScenario(pki=pki).install(store, now=NOW)
        engine = Engine(store, PolicySet.load_dir(ROOT / "policies"))
        raw = scenario.requests(counter=19).switch_to_credit(scenario.device("electricity meter (SMETS1)"))
        assert b":20</sr:RequestID>" in raw
        tampered = raw.replace(b":20</sr:RequestID>", b":20<!--x-->07</sr:RequestID>")
        decision = engine.decide(tampered, now=NOW)
        assert decision.outcome == "reject" and decision.reasons[0].rule == "xml.comment"
        assert store.get_counter(scenario.user_eui) is None  # 2007 was never taken


# -- per-limit refusals ------------------------------------------------------------------------
class TestLimits:
    def test_attributes_on_one_element(self):
        attributes = "".join(f' index="{i}"'.replace("index", n) for i, n in enumerate(sorted(ATTRIBUTE_NAMES)[:17]))
        err = refused(with_body(f"<sr:Credit{attributes}/>"))
        assert err.rule == "xml.too_many_attributes"
        assert parse_document(with_body(f"<sr:Credit{attributes}/>"), ParserLimits(max_attributes=17)) is not None

    def test_attributes_in_the_document(self):
        raw = with_body('<sr:Credit index="1"/>' * 6)  # and on the root: xmlns:sr, xmlns:ds, schemaVersion
        err = refused(raw, ParserLimits(max_attributes_total=8))
        assert err.rule == "xml.too_many_attributes" and "more than 8 attributes in the document" in err.message
        assert parse_document(raw, ParserLimits(max_attributes_total=9)) is not None

    def test_namespace_declarations_on_one_element(self):
        declarations = "".join(f' xmlns:n{i}="{NS_SR}"' for i in range(9))
        body = f"<sr:Credit{declarations}/>".replace("<sr:Credit", "<n0:Credit")
        err = refused(with_body(body))
        assert err.rule == "xml.too_many_namespaces" and "declares more than 8" in err.message

    def test_namespace_declarations_in_the_document(self):
        body = "".join(f'<n{i}:Credit xmlns:n{i}="{NS_SR}"/>' for i in range(31))
        err = refused(with_body(body))  # 31 + sr + ds on the root
        assert err.rule == "xml.too_many_namespaces" and "more than 32" in err.message
        assert parse_document(with_body(body), ParserLimits(max_namespace_declarations_total=33)) is not None

    def test_distinct_names(self):
        body = "".join(f"<sr:{name}/>" for name in sorted(ELEMENT_NAMES)[:300])
        err = refused(with_body(body))
        assert err.rule == "xml.too_many_names" and "more than 256" in err.message

    def test_text_node_and_attribute_value_length(self):
        limits = ParserLimits(max_text_bytes=1000)
        assert refused(with_body(f"<sr:Credit>{'x' * 1001}</sr:Credit>"), limits).rule == "xml.text_too_long"
        assert refused(with_body(f'<sr:Credit index="{"1" * 1001}"/>'), limits).rule == "xml.text_too_long"
        assert parse_document(with_body(f"<sr:Credit>{'x' * 900}</sr:Credit>"), limits) is not None

    def test_text_in_the_document(self):
        raw = with_body(f"<sr:Credit>{'x' * 600}</sr:Credit>" * 3)
        err = refused(raw, ParserLimits(max_text_bytes_total=1500))
        assert err.rule == "xml.too_much_text" and "limit is 1500" in err.message
        assert parse_document(raw, ParserLimits(max_text_bytes_total=2500)) is not None

    def test_references(self):
        raw = with_body(f"<sr:Credit>{'&amp;' * 11}</sr:Credit>")
        err = refused(raw, ParserLimits(max_references=10))
        assert err.rule == "xml.too_many_references" and "more than 10" in err.message
        assert parse_document(raw, ParserLimits(max_references=11)) is not None

    def test_elements_counted_before_parsing(self):
        body = "<sr:Credit/>" * 30
        err = refused(with_body(body), ParserLimits(max_elements=20))
        assert err.rule == "xml.too_many_elements" and "more than 20 elements" in err.message
        flood = "<" * 100
        assert refused(with_body(flood), ParserLimits(max_elements=20)).rule == "xml.too_many_elements"

    def test_a_lt_that_opens_no_tag(self):
        for body in ("<sr:Credit index=\"1\"index=\"2\"/>", "< sr:Credit/>", "<sr:Credit index=1/>"):
            err = refused(with_body(body))
            assert err.rule == "xml.malformed" and "does not open a start or end tag" in err.message


# -- vocabulary, prefixes and namespaces ---------------------------------------------------------
class TestVocabulary:
    @pytest.mark.parametrize("body", ['<sr:Credit mode="x"/>', '<sr:Credit xsi:bogus="1"/>'])
    def test_unknown_attribute_names(self, body):
        raw = with_body(body).replace(b"<sr:Request ", f'<sr:Request xmlns:xsi="{XSI}" '.encode())
        err = refused(raw)
        assert err.rule == "xml.unknown_name" and "attribute name" in err.message

    def test_every_schema_name_is_accepted(self):
        names = sorted(ELEMENT_NAMES)
        for start in range(0, len(names), 200):
            parse_document(with_body("".join(f"<sr:{n}/>" for n in names[start : start + 200])))
        attributes = sorted(ATTRIBUTE_NAMES - {"type", "nil", "schemaLocation", "noNamespaceSchemaLocation"})
        parse_document(with_body("".join(f'<sr:Credit {a}="1"/>' for a in attributes)))

    @pytest.mark.parametrize("prefix", ["sr", "ns3", "ns12", "ns999", "x", "dsig", "a1b"])
    def test_allowed_prefixes(self, prefix):
        parse_document(with_body(f'<{prefix}:Credit xmlns:{prefix}="{NS_SR}"/>'))

    @pytest.mark.parametrize("prefix", ["abcd", "Sr", "n-1", "ns1000", "longprefix"])
    def test_prefixes_outside_the_bounded_set(self, prefix):
        err = refused(with_body(f'<{prefix}:Credit xmlns:{prefix}="{NS_SR}"/>'))
        assert err.rule == "xml.prefix" and "three lower-case" in err.message

    def test_xml_id_values_never_reach_lxml(self):
        # libxml2 would keep every xml:id value in its dictionary.
        assert refused(with_body('<sr:Credit xml:id="i1"/>')).rule == "xml.prefix"

    def test_unknown_namespace(self):
        err = refused(with_body('<x:Credit xmlns:x="urn:example:new"/>'))
        assert err.rule == "xml.unknown_namespace" and "urn:example:new" in err.message

    def test_undeclaring_the_default_namespace_is_fine(self):
        parse_document(with_body('<Credit xmlns=""/>'))


class TestUnusedNamespaces:
    def test_unused_on_an_inner_element(self):
        err = refused(with_body(f'<sr:UpdatePaymentMode xmlns:ra="{NS_RA}"><sr:Credit/></sr:UpdatePaymentMode>'))
        assert err.rule == "xml.unused_namespace" and "xmlns:ra" in err.message

    def test_used_elsewhere_but_not_in_its_scope(self):
        body = f'<sr:Credit xmlns:ra="{NS_RA}"/><ra:Credit xmlns:ra="{NS_RA}"/>'
        err = refused(with_body(body))
        assert err.rule == "xml.unused_namespace" and "sr:Credit" in err.message

    def test_unused_default_namespace_on_an_inner_element(self):
        err = refused(with_body(f'<sr:Credit xmlns="{NS_SR}"/>'))
        assert err.rule == "xml.unused_namespace"

    def test_used_in_scope_is_fine(self):
        root = parse_document(with_body(f'<UpdatePaymentMode xmlns="{NS_SR}"><Credit/></UpdatePaymentMode>'))
        assert root.find(f".//{{{NS_SR}}}Credit") is not None

    def test_unused_on_the_root_and_the_signature_as_dcc_tooling_writes_them(self):
        raw = request_xml().replace(b"<sr:Request ", f'<sr:Request xmlns:xsi="{XSI}" xmlns:ns3="{NS_DS}" '.encode())
        parse_document(raw.replace(b"</sr:Request>", SIGNATURE.replace("<ds:Signature ", f'<ds:Signature xmlns="{NS_DS}" ').encode() + b"</sr:Request>"))

    def test_signature_may_not_declare_another_namespace_unused(self):
        signature = SIGNATURE.replace("<ds:Signature ", f'<ds:Signature xmlns:ra="{NS_RA}" ')
        assert refused(signed_shape(signature=signature)).rule == "xml.unused_namespace"


class TestWhitespace:
    @pytest.mark.parametrize("blank", ["\n  ", "\r\n\t\t", "  \n    \n  ", "\n\n", "   ", "\t"])
    def test_indentation_forms(self, blank):
        parse_document(with_body(f"<sr:UpdatePaymentMode>{blank}<sr:Credit/>{blank}</sr:UpdatePaymentMode>"))

    @pytest.mark.parametrize("blank", ["\n \t", " \t ", "\n\n\n  "])
    def test_short_odd_whitespace(self, blank):
        err = refused(with_body(f"<sr:UpdatePaymentMode>{blank}<sr:Credit/></sr:UpdatePaymentMode>"))
        assert err.rule == "xml.whitespace" and "mixes spaces and tabs" in err.message

    def test_long_runs_are_not_interned_so_any_mix_is_fine(self):
        run = " \t\n" * 20
        parse_document(with_body(f"<sr:UpdatePaymentMode>{run}<sr:Credit/></sr:UpdatePaymentMode>"))

    def test_too_many_forms(self):
        body = "".join(f"<sr:Credit/>{' ' * (i % 50)}\n{' ' * (i // 50)}" for i in range(257))
        err = refused(with_body(body))
        assert err.rule == "xml.whitespace" and "more than 256" in err.message


# -- markup and encodings ------------------------------------------------------------------------
class TestMarkup:
    def test_cdata(self):
        err = refused(with_body("<sr:Credit><![CDATA[x]]></sr:Credit>"))
        assert err.rule == "xml.cdata"

    @pytest.mark.parametrize("reference", ["&e;", "&amp", "& ", "&lt;&nbsp;"])
    def test_undefined_entity_references(self, reference):
        err = refused(with_body(f"<sr:Credit>{reference}</sr:Credit>"))
        assert err.rule == "xml.malformed" and "undefined entity" in err.message

    def test_predefined_and_character_references_are_fine(self):
        root = parse_document(with_body("<sr:Credit>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</sr:Credit>"))
        assert root.find(f".//{{{NS_SR}}}Credit").text == "<>&\"'AB"

    def test_malformed_declaration(self):
        raw = b'<?xml version="1.0" encoding="UTF-8"' + request_xml().split(b"?>", 1)[1]
        assert refused(raw).rule == "xml.malformed"

    def test_nul_byte(self):
        err = refused(request_xml().replace(b"<sr:Body>", b"<sr:Body>\x00"))
        assert err.rule == "xml.malformed" and "NUL byte" in err.message


# -- additions that a signature does not cover ---------------------------------------------------
class TestUnsignedAdditions:
    def test_ds_object(self):
        err = refused(signed_shape(signature=SIGNATURE.replace("</ds:Signature>", "<ds:Object>x</ds:Object></ds:Signature>")))
        assert err.rule == "signature.object"

    @pytest.mark.parametrize(
        "old, new",
        [
            ("<ds:Signature ", '<ds:Signature Id="s1" '),
            ("<ds:SignedInfo>", '<ds:SignedInfo Id="i1">'),
            ('<ds:Reference URI="">', '<ds:Reference URI="" Type="x">'),
            ("<ds:SignatureValue>", '<ds:SignatureValue Id="v1">'),
        ],
    )
    def test_attributes_on_the_signature(self, old, new):
        err = refused(signed_shape(signature=SIGNATURE.replace(old, new)))
        assert err.rule == "signature.attribute" and "not part of a DUIS signature" in err.message

    def test_comment_before_or_after_the_root(self):
        assert refused(b"<!-- a -->" + request_xml().split(b"?>", 1)[1]).rule == "xml.comment"
        assert refused(request_xml() + b"<!-- z -->").rule == "xml.comment"


# -- real material -------------------------------------------------------------------------------
@pytest.mark.reference
class TestReferenceMaterial:
    @pytest.mark.parametrize("path", sorted((REFERENCE / "duis-templates").glob("*.XML")), ids=lambda p: p.name)
    def test_templates_are_refused_only_for_their_placeholder_comment(self, path):
        raw = path.read_bytes()
        assert refused(raw).rule == "xml.comment"  # the NOTE beside the placeholder signature
        root = parse_document(re.sub(rb"<!--.*?-->", b"", raw, flags=re.S))
        assert root.get("schemaVersion") == "5.4"

    def test_dcc_signed_response_passes_as_it_is(self):
        root = parse_document((REFERENCE / "signed-messages" / "read-inventory-response-5.4.xml").read_bytes())
        assert root.tag == f"{{{NS_SR}}}Response"

    def test_vocabulary_module_is_what_the_schema_gives(self):
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "gen_vocabulary.py"), str(REFERENCE / "duis-xsd"), "--check"],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "up to date" in result.stdout


# -- verdicts remembered per tag sequence ---------------------------------------------------------
class TestRememberedVerdicts:
    """The pre-scan remembers its verdict on a document's tags; whatever is not in the tags (the
    text, the markup, the limits) is checked on every document all the same."""

    BODY = "<sr:UpdatePaymentMode><sr:Credit>{}</sr:Credit></sr:UpdatePaymentMode>"

    def test_the_text_of_a_known_tag_sequence_is_still_checked(self):
        assert parse_document(with_body(self.BODY.format("x"))) is not None  # the tags' verdict is kept
        for text, rule in [
            ("&e;", "xml.malformed"),
            ("\x00", "xml.malformed"),
            ("&amp;" * 1_025, "xml.too_many_references"),
        ]:
            assert refused(with_body(self.BODY.format(text))).rule == rule
        assert refused(with_body(self.BODY.format("é")).replace("é".encode(), b"\xe9")).rule == "xml.encoding"
        limits = ParserLimits(max_text_bytes=200, max_text_bytes_total=250)
        assert parse_document(with_body(self.BODY.format("x")), limits) is not None
        assert refused(with_body(self.BODY.format("x" * 201)), limits).rule == "xml.text_too_long"
        long_header = request_xml(originator="9" * 120, body=self.BODY.format("x" * 90))
        assert refused(long_header, limits).rule == "xml.too_much_text"

    def test_a_verdict_holds_for_its_limits_only(self):
        raw = with_body('<sr:Credit index="1"/>' * 6)
        assert parse_document(raw, ParserLimits(max_attributes_total=9)) is not None
        assert refused(raw, ParserLimits(max_attributes_total=8)).rule == "xml.too_many_attributes"
        assert parse_document(raw, ParserLimits(max_attributes_total=9)) is not None

    def test_a_refused_sequence_stays_refused(self):
        raw = with_body('<sr:Credit mode="x"/>')
        for _ in range(3):
            assert refused(raw).rule == "xml.unknown_name"

    def test_depth_is_read_from_the_tags_as_the_tree_has_it(self):
        from solr_policy.duis.prescan import prescan

        for body, depth in [
            ("", 3),  # Request/Body, Request/Header/RequestID
            ("<sr:Credit/>", 3),
            ("<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>", 4),
            ("<sr:Body><sr:Body><sr:Credit/></sr:Body></sr:Body><sr:Credit/>", 5),
            ('<sr:Credit index="/>"/><sr:Body><sr:Body index="a/"></sr:Body></sr:Body>', 4),
        ]:
            raw = with_body(body)
            root = parse_document(raw)
            assert max(len(list(e.iterancestors())) + 1 for e in root.iter()) == depth
            assert prescan(raw, ParserLimits()).depth == depth
            assert parse_document(raw, ParserLimits(max_depth=depth)) is not None
            assert refused(raw, ParserLimits(max_depth=depth - 1)).rule == "xml.too_deep"

    def test_remembered_verdicts_are_bounded(self):
        from solr_policy.duis import prescan

        for i in range(prescan._REMEMBERED + 50):
            parse_document(with_body(f"<sr:UpdatePaymentMode>{' ' * (i % 40)}\n{' ' * (i // 40)}<sr:Credit/></sr:UpdatePaymentMode>"))
        assert len(prescan._VERDICTS) <= prescan._REMEMBERED
        big = with_body("<sr:Credit/>" * 2_000)
        assert len(big) > prescan._REMEMBER_BYTES
        parse_document(big)
        assert all(len(key) <= prescan._REMEMBER_BYTES for _, key in prescan._VERDICTS)

    @pytest.mark.parametrize(
        "signature, rule",
        [
            (SIGNATURE, None),
            (SIGNATURE.replace("<ds:Signature ", '<ds:Signature Id="s1" '), "signature.attribute"),
            (SIGNATURE.replace('URI=""', 'URI="" ds:Type="x"'), "signature.attribute"),
            (SIGNATURE.replace("</ds:SignedInfo>", "</ds:SignedInfo><ds:Object/>"), "signature.object"),
            # the default namespace as XMLDSig, declared on the Signature
            (SIGNATURE.replace("ds:", "").replace(f'xmlns:ds="{NS_DS}"', f'xmlns="{NS_DS}" Id="s"'), "signature.attribute"),
            (SIGNATURE.replace("ds:", "").replace(f'xmlns:ds="{NS_DS}"', f'xmlns="{NS_DS}"'), None),
            # another prefix bound to XMLDSig on an inner element
            (SIGNATURE.replace("<ds:SignatureValue>", f'<x:SignatureValue xmlns:x="{NS_DS}" Id="v">')
             .replace("</ds:SignatureValue>", "</x:SignatureValue>"), "signature.attribute"),
        ],
    )
    def test_the_tags_rule_out_signature_additions_only_when_there_are_none(self, signature, rule):
        from solr_policy.duis.parser import _check_signature_additions
        from solr_policy.duis.prescan import prescan

        raw = signed_shape(signature=signature)
        ruled_out = prescan(raw, ParserLimits()).no_signature_additions
        if rule is None:
            assert ruled_out
            _check_signature_additions(parse_document(raw))  # the tree agrees
        else:
            assert not ruled_out
            assert refused(raw).rule == rule

    def test_xmldsig_names_outside_the_signature_are_still_looked_at(self):
        body = f'<sr:Credit/><ds:KeyInfo xmlns:ds="{NS_DS}" Id="k"/>'
        assert refused(with_body(body)).rule == "signature.attribute"
        assert refused(with_body(f'<ds:Object xmlns:ds="{NS_DS}"/>')).rule == "signature.object"
