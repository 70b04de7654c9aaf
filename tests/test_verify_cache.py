"""The verifier keeps the certificates it read between verifications, and sees any change to a
certificate or its status at the next verification: made through its own store, by another
node (another store on the same database), by a CRL import, an SMKI sync or a governance act;
not a change rolled back in a transaction of its own thread."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import USER_EUI, add_cert, request_xml, signed
from solr_policy.crypto.verify import Verifier
from solr_policy.engine import Engine
from solr_policy.errors import Refused
from solr_policy.governance.certificates import import_certificates, import_crl
from solr_policy.policy import PolicySet
from solr_policy.records import SmkiStatus, TrustAnchor
from solr_policy.smki_sync import sync_extract
from solr_policy.store import open_store
from solr_policy.testing.pki import TestPki
from solr_policy.testing.scenario import SolrScenario


POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture()
def nodes(db):
    """Two stores on one database: the verifying node and another one."""
    node_a, node_b = open_store(db), open_store(db)
    yield node_a, node_b
    node_a.close()
    node_b.close()


def rule_of(verifier: Verifier, raw: bytes) -> str:
    try:
        verifier.verify_request(raw, now=NOW)
    except Refused as refusal:
        return refusal.rule
    return "verified"


def test_certificates_are_read_once_per_generation(store, user_cert, monkeypatch):
    add_cert(store, user_cert)
    verifier = Verifier(store)
    reads: list[str] = []
    for name in ("get_certificate", "key_shared_with"):
        method = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _m=method, _n=name: reads.append(_n) or _m(*a))
    for counter in (1, 2, 3):
        assert rule_of(verifier, signed(request_xml(counter=counter), user_cert)) == "verified"
    assert reads == ["get_certificate", "key_shared_with"]
    store.set_certificate_status(*_issuer_serial(store, user_cert), SmkiStatus.IN_USE)  # a change, even to the same
    assert rule_of(verifier, signed(request_xml(counter=4), user_cert)) == "verified"
    assert reads == ["get_certificate", "key_shared_with"] * 2


def test_an_unknown_certificate_is_not_kept(store, user_cert):
    verifier = Verifier(store)
    raw = signed(request_xml(), user_cert)
    assert rule_of(verifier, raw) == "signature.unknown_certificate"
    add_cert(store, user_cert)
    assert rule_of(verifier, raw) == "verified"


def _issuer_serial(store, issued) -> tuple[str, int]:
    (record,) = store.find_certificates(eui=issued.eui)
    return record.issuer, record.serial


def test_a_status_change_by_another_node_is_seen_by_the_next_verification(nodes, user_cert):
    node_a, node_b = nodes
    add_cert(node_a, user_cert)
    verifier = Verifier(node_a)
    raw = signed(request_xml(), user_cert)
    assert rule_of(verifier, raw) == "verified"
    assert rule_of(verifier, raw) == "verified"  # from what it kept
    issuer, serial = _issuer_serial(node_b, user_cert)
    node_b.set_certificate_status(issuer, serial, SmkiStatus.REVOKED)
    assert rule_of(verifier, raw) == "signature.certificate_revoked"
    node_b.set_certificate_status(issuer, serial, SmkiStatus.NOT_IN_USE)
    assert rule_of(verifier, raw) == "signature.certificate_not_in_use"
    node_b.set_certificate_status(issuer, serial, SmkiStatus.IN_USE)
    assert rule_of(verifier, raw) == "verified"


def test_a_certificate_sharing_the_key_added_by_another_node_is_seen(nodes, pki):
    node_a, node_b = nodes
    key = ec.generate_private_key(ec.SECP256R1())
    xml_cert = pki.issue(USER_EUI, 135, key=key)
    add_cert(node_a, xml_cert)
    verifier = Verifier(node_a)
    raw = signed(request_xml(), xml_cert)
    assert rule_of(verifier, raw) == "verified"
    add_cert(node_b, pki.issue(USER_EUI, 135, usage="key_agreement", key=key))
    assert rule_of(verifier, raw) == "signature.key_separation"


def _anchored(store, ca: TestPki) -> None:
    anchor = x509.load_pem_x509_certificate(ca.ca_cert_pem).public_bytes(Encoding.DER)
    store.add_trust_anchor(TrustAnchor(fingerprint=hashlib.sha256(anchor).hexdigest(), subject=f"OU=07,CN={ca.name}",
                                       der=anchor, added_at=NOW, added_by="gov-alice"))


def _verified_on(node, ca_name: str):
    """A User certificate of a new anchored CA imported on ``node``, and a request it signed,
    verified there (so the verifier has cached the certificate)."""
    ca = TestPki(ca_name)
    _anchored(node, ca)
    leaf = ca.issue(USER_EUI, 135)
    assert import_certificates(node, leaf.cert_pem, source="leaf.pem", at=NOW)[0].imported
    verifier = Verifier(node)
    raw = signed(request_xml(), leaf)
    assert rule_of(verifier, raw) == "verified"
    return ca, leaf, verifier, raw


def test_a_crl_imported_on_another_node_is_seen(nodes):
    node_a, node_b = nodes
    ca, leaf, verifier, raw = _verified_on(node_a, "C7")
    assert import_crl(node_b, ca.crl_pem([leaf.serial]), source="c7.crl", at=NOW)["revoked"] == [str(leaf.serial)]
    assert rule_of(verifier, raw) == "signature.certificate_revoked"


def test_an_smki_sync_on_another_node_is_seen(nodes, tmp_path):
    node_a, node_b = nodes
    ca, leaf, verifier, raw = _verified_on(node_a, "S7")
    extract = tmp_path / "extract.xml"
    extract.write_text(
        '<?xml version="1.0"?><s:Extract xmlns:s="urn:smki"><s:Certificates><s:CertificateResponse>'
        f"<s:CertificateStatus>N</s:CertificateStatus><s:CertificateSerial>{leaf.serial}</s:CertificateSerial>"
        "<s:CertificateSubjectName>CN=x</s:CertificateSubjectName></s:CertificateResponse></s:Certificates></s:Extract>"
    )
    assert sync_extract(extract, node_b, at=NOW)["status_applied"] == 1
    assert rule_of(verifier, raw) == "signature.certificate_not_in_use"


def test_a_change_rolled_back_in_this_thread_is_not_kept(nodes, user_cert, pki):
    node_a, node_b = nodes
    add_cert(node_a, user_cert)
    verifier = Verifier(node_a)
    raw = signed(request_xml(), user_cert)
    assert rule_of(verifier, raw) == "verified"
    issuer, serial = _issuer_serial(node_a, user_cert)
    with pytest.raises(RuntimeError):
        with node_a.transaction():
            node_a.set_certificate_status(issuer, serial, SmkiStatus.REVOKED)
            assert rule_of(verifier, raw) == "signature.certificate_revoked"  # its own transaction's view
            raise RuntimeError("roll back")
    # Another change takes the generation the rolled-back one had: what the transaction saw
    # must not be taken for it.
    add_cert(node_b, pki.issue("90-B3-D5-1F-30-01-00-77", 135))
    assert rule_of(verifier, raw) == "verified"


def test_the_engine_sees_a_revocation_by_another_node_at_the_next_request(nodes, pki):
    node_a, node_b = nodes
    scenario = SolrScenario(pki=pki).install(node_a, now=NOW)
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    engine = Engine(node_a, PolicySet.load_dir(POLICIES))
    assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"
    (record,) = node_b.find_certificates(eui=scenario.user_eui, role=135)
    node_b.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    refused = engine.decide(ask.switch_to_credit(meter), now=NOW)
    assert refused.outcome == "reject" and refused.reasons[0].rule == "signature.certificate_revoked"
    node_b.set_certificate_status(record.issuer, record.serial, SmkiStatus.IN_USE)
    assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"


def test_a_request_prepared_before_a_change_is_decided_after_it(nodes, pki):
    """prepare() takes the certificates as of the generation last seen, without reading it; the
    group's transaction reads it and admits again whatever was prepared at another one."""
    node_a, node_b = nodes
    scenario = SolrScenario(pki=pki).install(node_a, now=NOW)
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    engine = Engine(node_a, PolicySet.load_dir(POLICIES))
    assert engine.decide_group([engine.prepare(ask.switch_to_credit(meter), NOW)])[0].outcome == "allow"
    (record,) = node_b.find_certificates(eui=scenario.user_eui, role=135)

    stale = engine.prepare(ask.switch_to_credit(meter), NOW)
    assert stale.certificates_at is not None and not hasattr(stale.admitted, "rule")  # as last seen
    node_b.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    (decided,) = engine.decide_group([stale])
    assert decided.outcome == "reject" and decided.reasons[0].rule == "signature.certificate_revoked"

    refused = engine.prepare(ask.switch_to_credit(meter), NOW)  # the revocation is what it last saw
    assert getattr(refused.admitted, "rule", None) == "signature.certificate_revoked"
    node_b.set_certificate_status(record.issuer, record.serial, SmkiStatus.IN_USE)
    assert [d.outcome for d in engine.decide_group([refused, engine.prepare(ask.switch_to_credit(meter), NOW)])] == ["allow", "allow"]


def test_prepare_reads_no_generation_while_the_certificates_are_known(store, pki, monkeypatch):
    scenario = SolrScenario(pki=pki).install(store, now=NOW)
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    reads: list[int] = []
    read = store.world_generation
    monkeypatch.setattr(store, "world_generation", lambda: reads.append(1) or read())
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    engine.prepare(ask.switch_to_credit(meter), NOW)
    assert len(reads) == 1  # the first time: nothing known yet
    prepared = [engine.prepare(ask.switch_to_credit(meter), NOW) for _ in range(3)]
    assert len(reads) == 1
    assert [d.outcome for d in engine.decide_group(prepared)] == ["allow"] * 3
    assert len(reads) == 2  # the group's transaction, once


def test_a_group_decided_one_by_one_after_a_fault_still_admits_stale_requests_again(nodes, pki, monkeypatch):
    """The fault path of decide_group (each request decided alone) checks the generation too,
    for refusals as for admitted requests."""
    import solr_policy.engine as engine_module

    node_a, node_b = nodes
    scenario = SolrScenario(pki=pki).install(node_a, now=NOW)
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    engine = Engine(node_a, PolicySet.load_dir(POLICIES))
    (record,) = node_b.find_certificates(eui=scenario.user_eui, role=135)
    node_b.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    prepared = [engine.prepare(ask.switch_to_credit(meter), NOW) for _ in range(3)]
    assert [getattr(p.admitted, "rule", None) for p in prepared] == ["signature.certificate_revoked"] * 3
    node_b.set_certificate_status(record.issuer, record.serial, SmkiStatus.IN_USE)

    real = engine_module.authorize
    failing = 12  # the second request's counter

    def flaky(facts, rules, **kw):
        if facts.request.header.request_id.counter == failing:
            raise RuntimeError("boom")
        return real(facts, rules, **kw)

    monkeypatch.setattr(engine_module, "authorize", flaky)
    decided = engine.decide_group(prepared)
    assert [d.request["counter"] for d in decided] == [11, 12, 13]
    assert [d.outcome for d in decided] == ["allow", "reject", "allow"]
    assert decided[1].reasons[0].rule == "engine.internal-error"
