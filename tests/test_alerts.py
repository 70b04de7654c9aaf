"""MP134B R7: alerts for a failed Supplier's Devices keep flowing to its Shared Resource
Provider (SRP) after its certificates are revoked, and no alert is lost.

* parsing (``build_alert``): Device Alerts and DCC Alerts give the right ``Alert``; anything
  that is not a genuine alert is refused with a named rule;
* the real shapes: every alert document used here is first proven valid against the DUIS
  XML Schema v5.4 (``reference``), and every "bad" one proven invalid where the schema can tell;
* routing (``plan``, ``AlertRouter.route``, ``retry_pending``) before and after revocation,
  with and without an SRP, for unaffected Suppliers and unknown recipients, with the SoLR
  Party copy switched on in a policy copy; a mixed run where nothing is lost;
* persistence across a closed and reopened ``SqliteStore``;
* the ``alerts`` and ``srp`` CLI groups; ``world load`` refuses an ``srps:`` section.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REFERENCE, OfficerKeys
from lxml import etree

from solr_policy.alerts.parse import Alert, build_alert
from solr_policy.alerts.routing import AlertRouter, plan
from solr_policy.cli import cli
from solr_policy.crypto.certs import read_certificates
from solr_policy.crypto.sign import sign_duis
from solr_policy.errors import GovernanceRefused, ParseRefused
from solr_policy.eui import duis_form
from solr_policy.policy import PolicySet
from solr_policy.records import AlertStatus, SmkiStatus, SrpRecord
from solr_policy.testing.scenario import DCC_EUI, AlertBuilder, SolrScenario, alert_document
from solr_policy.store import SqliteStore
from solr_policy.world import InstructionStatus, User

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
XSD = REFERENCE / "duis-xsd"
NOW = datetime.now(UTC).replace(microsecond=0)

FAILED = "FAILED-ENERGY"
STEADY = "STEADY-POWER"
SOLR = "SOLR-PARTY"
FAILED_USER = SolrScenario.failed_supplier_user  # 90B3D51F300E0001, Import Supplier of FAILED-ENERGY
STEADY_USER = SolrScenario.other_supplier_user  # 90B3D51F300D0001, Import Supplier of STEADY-POWER
UNKNOWN_USER = "90B3D51F300C0009"  # no such User in the store
FAILED_METER = "00DB1234567890B0"  # FAILED-ENERGY's SMETS2 electricity meter
STEADY_METER = "00DB1234567890C0"  # STEADY-POWER's electricity meter
COMMS_HUB = "00DB1234567890FF"
SRP_ID = "SRP-NORTH"
SRP_ENDPOINT = "https://srp-north.example/alerts"

_counter = itertools.count(7000)
_GBCS = base64.b64encode(bytes.fromhex("DF0903") + bytes(8)).decode()
_RA = "http://www.dccinterface.co.uk/ResponseAndAlert"  # a DUIS namespace, but not the one expected


# -- documents ---------------------------------------------------------------------------------
def device_alert_doc(
    device: str = FAILED_METER,
    recipient: str = FAILED_USER,
    *,
    alert_code: str = "8F84",
    payload: str = _GBCS,
    throttled: bool = False,
) -> bytes:
    throttle = "<sr:ThrottledAlertSequenceId>7</sr:ThrottledAlertSequenceId><sr:ThrottledAlertCount>3</sr:ThrottledAlertCount>" if throttled else ""
    body = f"<sr:DeviceAlertMessage><sr:AlertCode>{alert_code}</sr:AlertCode>{throttle}<sr:GBCSPayload>{payload}</sr:GBCSPayload></sr:DeviceAlertMessage>"
    return alert_document(originator=device, recipient=recipient, counter=next(_counter), body=body, when=NOW)


def future_dated_alert_doc(
    device: str = FAILED_METER, recipient: str = FAILED_USER, *, alert_code: str = "8F66", instruction: str = "<sr:InstructionNumber>1</sr:InstructionNumber>"
) -> bytes:
    """A Future Dated Device Alert (8F66 executed / 8F67 failed): a DUIS Response whose
    ResponseMessage carries it, for a command the recipient dated ahead (e.g. SRV 1.6)."""
    body = (
        "<sr:ResponseMessage><sr:ServiceReference>1.6</sr:ServiceReference><sr:ServiceReferenceVariant>1.6</sr:ServiceReferenceVariant>"
        f"<sr:FutureDatedDeviceAlertMessage><sr:FutureDatedAlertCode>{alert_code}</sr:FutureDatedAlertCode>"
        f"<sr:GBCSPayload>{_GBCS}</sr:GBCSPayload>{instruction}"
        "<sr:TotalCommandInstructions>1</sr:TotalCommandInstructions></sr:FutureDatedDeviceAlertMessage></sr:ResponseMessage>"
    )
    return alert_document(originator=device, recipient=recipient, counter=next(_counter), body=body, when=NOW)


def dcc_alert_doc(code: str, alert: str, recipient: str = FAILED_USER) -> bytes:
    body = f"<sr:DCCAlertMessage><sr:DCCAlertCode>{code}</sr:DCCAlertCode><sr:DCCAlert>{alert}</sr:DCCAlert></sr:DCCAlertMessage>"
    return alert_document(originator=DCC_EUI, recipient=recipient, counter=next(_counter), body=body, when=NOW)


def power_outage(comms_hub: str = COMMS_HUB) -> str:
    return (
        f"<sr:PowerOutageEvent><sr:CommsHubDeviceID>{duis_form(comms_hub)}</sr:CommsHubDeviceID>"
        "<sr:StartDateTime>2026-11-22T09:58:00Z</sr:StartDateTime><sr:MPxN>1234567890123</sr:MPxN></sr:PowerOutageEvent>"
    )


def status_change(device: str = FAILED_METER, change: str = "<sr:DeviceSuspended/>") -> str:
    return (
        f"<sr:DeviceStatusChangeEvent><sr:DeviceID>{duis_form(device)}</sr:DeviceID>"
        f"<sr:DeviceStatusChange>{change}</sr:DeviceStatusChange></sr:DeviceStatusChangeEvent>"
    )


def quarantined(request_target: str = FAILED_METER) -> str:
    rid = f"{duis_form(SolrScenario.user_eui)}:{duis_form(request_target)}:1001"
    return (
        "<sr:QuarantinedRequest><sr:ADUserThresholdBreach>"
        f"<sr:RequestID>{rid}</sr:RequestID><sr:QuarantineEventRef>42</sr:QuarantineEventRef>"
        "</sr:ADUserThresholdBreach></sr:QuarantinedRequest>"
    )


def with_header(doc: bytes, old: str, new: str) -> bytes:
    assert old.encode() in doc, old
    return doc.replace(old.encode(), new.encode(), 1)


def without_response_id(doc: bytes) -> bytes:
    """The ResponseID turned into a RequestID: a schema-valid Response that names no recipient."""
    rid = rid_of(doc)
    return with_header(doc, f"<sr:ResponseID>{rid}</sr:ResponseID>", f"<sr:RequestID>{rid}</sr:RequestID>")


def rid_of(doc: bytes) -> str:
    return etree.fromstring(doc).findtext(".//{http://www.dccinterface.co.uk/ServiceUserGateway}ResponseID")


# The genuine alert shapes used below: (id, builder, expected Alert fields).
SHAPES = [
    ("device-alert", lambda: device_alert_doc(),
     {"kind": "device", "alert_code": "8F84", "dcc_alert": None, "device": FAILED_METER, "originator": FAILED_METER, "gbcs_payload_length": 11}),
    ("device-alert-throttled-lowercase-code", lambda: device_alert_doc(alert_code="8f3e", throttled=True),
     {"kind": "device", "alert_code": "8F3E", "dcc_alert": None, "device": FAILED_METER}),
    ("N1-power-outage", lambda: dcc_alert_doc("N1", power_outage()),
     {"kind": "dcc", "alert_code": "N1", "dcc_alert": "PowerOutageEvent", "device": COMMS_HUB, "originator": DCC_EUI}),
    ("N12-device-status-change", lambda: dcc_alert_doc("N12", status_change()),
     {"kind": "dcc", "alert_code": "N12", "dcc_alert": "DeviceStatusChangeEvent", "device": FAILED_METER}),
    ("N999-device-status-change-removed", lambda: dcc_alert_doc("N999", status_change(change="<sr:DeviceRemovedFromInventory/>")),
     {"kind": "dcc", "alert_code": "N999", "dcc_alert": "DeviceStatusChangeEvent", "device": FAILED_METER}),
    # AD1 names no DeviceID/CommsHubDeviceID of its own: the Device stays unknown (None).
    ("AD1-quarantined-request", lambda: dcc_alert_doc("AD1", quarantined()),
     {"kind": "dcc", "alert_code": "AD1", "dcc_alert": "QuarantinedRequest", "device": None, "originator": DCC_EUI}),
    # A future-dated command the failed Supplier set before it failed runs (or fails) after.
    ("future-dated-device-alert-8F66", lambda: future_dated_alert_doc(),
     {"kind": "device", "alert_code": "8F66", "dcc_alert": None, "device": FAILED_METER, "originator": FAILED_METER, "gbcs_payload_length": 11}),
    ("future-dated-device-alert-8F67-lowercase", lambda: future_dated_alert_doc(alert_code="8f67"),
     {"kind": "device", "alert_code": "8F67", "dcc_alert": None, "device": FAILED_METER}),
]

_NOT_AN_ALERT = "<sr:ResponseMessage><sr:ServiceReference>1.6</sr:ServiceReference><sr:ServiceReferenceVariant>1.6</sr:ServiceReferenceVariant></sr:ResponseMessage>"

# Documents that are not genuine alerts: (id, builder, rule, the DUIS schema also refuses it).
BAD = [
    ("response-not-an-alert", lambda: alert_document(originator=DCC_EUI, recipient=FAILED_USER, counter=1, body=_NOT_AN_ALERT, when=NOW),
     "alert.not_an_alert", False),
    ("missing-response-id", lambda: without_response_id(device_alert_doc()), "alert.response_id", False),
    ("malformed-response-id", lambda: with_header(device_alert_doc(), f"{duis_form(FAILED_USER)}:", "not-a-user:"),
     "alert.response_id", True),
    ("response-id-two-parts", lambda: with_header(device_alert_doc(), f"{duis_form(FAILED_METER)}:", ""),
     "alert.response_id", True),
    ("alert-code-not-hex", lambda: device_alert_doc(alert_code="8G84"), "alert.code", True),
    ("alert-code-odd-length", lambda: device_alert_doc(alert_code="8F8"), "alert.code", True),
    ("dcc-alert-code-x9", lambda: dcc_alert_doc("X9", power_outage()), "alert.code", True),
    ("gbcs-payload-not-base64", lambda: device_alert_doc(payload="@@not*base64@@"), "alert.base64", True),
    ("two-messages-in-body", lambda: with_header(
        device_alert_doc(), "</sr:DeviceAlertMessage>",
        f"</sr:DeviceAlertMessage><sr:DeviceAlertMessage><sr:AlertCode>8F84</sr:AlertCode><sr:GBCSPayload>{_GBCS}</sr:GBCSPayload></sr:DeviceAlertMessage>"),
     "alert.body", True),
    ("body-message-in-wrong-namespace", lambda: with_header(
        with_header(device_alert_doc(), "<sr:DeviceAlertMessage>", f'<x:DeviceAlertMessage xmlns:x="{_RA}">'),
        "</sr:DeviceAlertMessage>", "</x:DeviceAlertMessage>"),
     "alert.body", True),
    ("header-field-in-wrong-namespace", lambda: with_header(
        device_alert_doc(), "<sr:ResponseCode>I0</sr:ResponseCode>", f'<x:ResponseCode xmlns:x="{_RA}">I0</x:ResponseCode>'),
     "duis.namespace", True),
    ("foreign-element-beside-header-and-body", lambda: with_header(
        device_alert_doc(), "</sr:Header>", f'</sr:Header><x:Header xmlns:x="{_RA}">smuggled</x:Header>'),
     "alert.structure", True),
    ("unexpected-attribute-on-response", lambda: with_header(device_alert_doc(), 'schemaVersion="5.4"', 'schemaVersion="5.4" index="1"'),
     "duis.attribute", True),
    ("unexpected-attribute-on-body", lambda: with_header(device_alert_doc(), "<sr:Body>", '<sr:Body id="b1">'),
     "duis.attribute", True),
    ("empty-body", lambda: alert_document(originator=DCC_EUI, recipient=FAILED_USER, counter=1, body="", when=NOW),
     "alert.body", True),
    ("dcc-alert-with-two-alerts", lambda: dcc_alert_doc("N1", power_outage() + power_outage()), "alert.body", True),
    ("dcc-alert-device-id-not-eui", lambda: dcc_alert_doc("N12", status_change().replace(duis_form(FAILED_METER), "METER-1")),
     "alert.device", True),
    ("device-alert-fields-out-of-order", lambda: with_header(
        device_alert_doc(alert_code="8F84"), f"<sr:AlertCode>8F84</sr:AlertCode><sr:GBCSPayload>{_GBCS}</sr:GBCSPayload>",
        f"<sr:GBCSPayload>{_GBCS}</sr:GBCSPayload><sr:AlertCode>8F84</sr:AlertCode>"),
     "duis.order", True),
    ("future-dated-alert-without-instruction-number", lambda: future_dated_alert_doc(instruction=""),
     "duis.missing_element", True),
    ("future-dated-alert-code-not-8F66-or-8F67", lambda: future_dated_alert_doc(alert_code="8F84"), "alert.code", True),
    ("response-code-not-duis", lambda: with_header(device_alert_doc(), "<sr:ResponseCode>I0<", "<sr:ResponseCode>ok<"),
     "alert.response_code", True),
    ("response-date-time-without-zone", lambda: with_header(
        device_alert_doc(), f"{NOW.strftime('%Y-%m-%dT%H:%M:%S')}Z", NOW.strftime("%Y-%m-%dT%H:%M:%S")),
     "duis.value", False),  # xs:dateTime allows no zone; we refuse it (BST/GMT ambiguity)
]


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture()
def scenario(store) -> SolrScenario:
    return SolrScenario().install(store, now=NOW)


@pytest.fixture()
def alerts(scenario, store) -> AlertBuilder:
    return scenario.install_alerting(store)


def signed(doc: bytes, builder: AlertBuilder) -> bytes:
    return sign_duis(doc, builder.dsp.key_pem, builder.dsp.cert_pem)


def fail_supplier(scenario: SolrScenario, store, *, srp: bool = True) -> None:
    """FAILED-ENERGY's certificates are revoked (the instruction came with install)."""
    assert scenario.revoke_certificates(store, FAILED) == 1
    if srp:
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])


def audit(store, kind: str) -> list[dict]:
    return [entry.to_json_dict() for entry in store.audit_entries(kind=kind)]


@pytest.fixture()
def policy_copy_dir(tmp_path) -> Path:
    """A copy of the project's policies with ``alerts_to_solr_party: true`` for role SC."""
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    path = folder / "solr-contingency.yaml"
    text = path.read_text()
    assert "alerts_to_solr_party" not in text
    path.write_text(text.rstrip("\n") + "\n\n# R7: copy the SoLR Party\nalerts_to_solr_party: true\n")
    return folder


@pytest.fixture()
def policies_with_copy(policy_copy_dir) -> PolicySet:
    loaded = PolicySet.load_dir(policy_copy_dir)
    assert loaded.for_role("SC").alerts_to_solr_party is True
    return loaded


@pytest.fixture(scope="module")
def schema():
    from solr_policy.duis.xsd import DuisSchema

    return DuisSchema.from_folder(XSD)


# -- parsing -----------------------------------------------------------------------------------
class TestParse:
    @pytest.mark.parametrize(("name", "build", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
    def test_alert_fields(self, name, build, expected):
        doc = build()
        alert = build_alert(etree.fromstring(doc))
        assert isinstance(alert, Alert)
        for key, value in expected.items():
            assert getattr(alert, key) == value, key
        assert alert.recipient == FAILED_USER  # the User the ResponseID addresses, canonical form
        assert alert.response_code == "I0"
        assert alert.response_date_time == NOW
        assert alert.response_id == rid_of(doc)  # round-trips to the DUIS form
        summary = alert.summary()
        assert summary["recipient"] == FAILED_USER and summary["alert_code"] == expected["alert_code"]

    def test_recipient_and_counter_from_response_id(self):
        doc = device_alert_doc(STEADY_METER, STEADY_USER)
        counter = int(rid_of(doc).rsplit(":", 1)[1])
        alert = build_alert(etree.fromstring(doc))
        assert (alert.originator, alert.recipient, alert.counter) == (STEADY_METER, STEADY_USER, counter)

    def test_device_status_change_names_its_device_not_the_dcc(self):
        alert = build_alert(etree.fromstring(dcc_alert_doc("N12", status_change(STEADY_METER), STEADY_USER)))
        assert alert.device == STEADY_METER and alert.originator == DCC_EUI

    @pytest.mark.parametrize(("name", "build", "rule", "schema_refuses"), BAD, ids=[b[0] for b in BAD])
    def test_refusals_name_the_rule(self, name, build, rule, schema_refuses):
        with pytest.raises(ParseRefused) as refused:
            build_alert(etree.fromstring(build()))
        assert refused.value.rule == rule, refused.value.message

    def test_a_request_is_not_an_alert(self, scenario):
        request = scenario.requests().switch_to_credit(FAILED_METER)
        with pytest.raises(ParseRefused) as refused:
            build_alert(etree.fromstring(request))
        assert refused.value.rule == "alert.root"


# -- the real shapes, proven against the DUIS XML Schema v5.4 ---------------------------------
@pytest.mark.reference
class TestSchemaShapes:
    @pytest.mark.parametrize(("name", "build", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
    def test_shape_is_schema_valid_then_signed_and_routed(self, schema, store, alerts, name, build, expected):
        doc = build()
        schema.validate(etree.fromstring(doc))  # before signing: the fixture is a real DUIS alert
        raw = signed(doc, alerts)
        schema.validate(etree.fromstring(raw))  # and still one once signed
        delivery = AlertRouter(store, schema=schema).route(raw, now=NOW)
        assert delivery.status == "routed", delivery.reason
        assert delivery.alert["alert_code"] == expected["alert_code"]
        assert delivery.alert["dcc_alert"] == expected["dcc_alert"]
        assert delivery.alert["device"] == expected["device"]

    def test_alert_builder_output_is_schema_valid(self, schema, alerts):
        for raw in (
            alerts.device_alert(FAILED_METER, FAILED_USER, when=NOW),
            alerts.device_alert(STEADY_METER, STEADY_USER, alert_code="8F3E"),
            alerts.power_outage(COMMS_HUB, FAILED_USER, when=NOW),
        ):
            root = etree.fromstring(raw)
            schema.validate(root)
            signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
            root.remove(signature)
            schema.validate(root)  # unsigned too (ds:Signature is optional in sr:Response)
        assert alerts.counter == 5003

    @pytest.mark.parametrize(("name", "build", "rule", "schema_refuses"), BAD, ids=[b[0] for b in BAD])
    def test_bad_shapes_against_the_schema(self, schema, name, build, rule, schema_refuses):
        """Those the schema can tell apart it refuses too; the others are valid Responses that
        are still no alert (or a date-time we refuse as ambiguous)."""
        root = etree.fromstring(build())
        if schema_refuses:
            with pytest.raises(ParseRefused) as refused:
                schema.validate(root)
            assert refused.value.rule == "duis.schema"
        else:
            schema.validate(root)

    def test_router_with_schema_refuses_an_invalid_alert(self, schema, store, alerts):
        raw = signed(dcc_alert_doc("X9", power_outage()), alerts)
        delivery = AlertRouter(store, schema=schema).route(raw, now=NOW)
        assert (delivery.status, delivery.rule) == ("refused", "duis.schema")
        assert [r.status for r in store.alert_deliveries()] == ["refused"]  # kept, never routed


# -- refusals by the router ---------------------------------------------------------------------
class TestRouterRefuses:
    def _refused(self, store, raw: bytes, rule: str) -> None:
        before = len(audit(store, "alert.refused"))
        delivery = AlertRouter(store).route(raw, now=NOW)
        assert delivery.status == "refused"
        assert delivery.rule == rule, delivery.reason
        assert delivery.targets == [] and delivery.alert is None and delivery.delivery_id is not None
        entries = audit(store, "alert.refused")
        assert len(entries) == before + 1
        assert entries[-1]["payload"]["rule"] == rule
        # Not routed, but not lost either: kept with its bytes and reason, for a later retry.
        rows = store.alert_deliveries()
        assert [(r.id, r.status, r.target_id) for r in rows] == [(delivery.delivery_id, "refused", None)]
        assert rows[0].reason.startswith(rule) and store.alert_raw(delivery.delivery_id) == raw
        assert audit(store, "alert.route") == []

    def test_unsigned_alert(self, store, alerts):
        self._refused(store, device_alert_doc(), "signature.missing")

    def test_alert_signed_by_a_user_certificate_not_the_dcc(self, store, alerts, scenario):
        # An XML Sign (135) certificate may sign Requests, never a Response: only the DCC (137).
        raw = sign_duis(device_alert_doc(), scenario.user.key_pem, scenario.user.cert_pem)
        self._refused(store, raw, "signature.certificate_role")

    def test_tampered_alert(self, store, alerts):
        raw = signed(device_alert_doc(recipient=FAILED_USER), alerts)
        raw = raw.replace(duis_form(FAILED_USER).encode(), duis_form(STEADY_USER).encode())
        self._refused(store, raw, "signature.digest")

    def test_signed_request_instead_of_a_response(self, store, alerts, scenario):
        # Signature and signer are fine for a Request; it is still no alert.
        self._refused(store, scenario.requests().switch_to_credit(FAILED_METER), "alert.root")

    @pytest.mark.parametrize(("name", "build", "rule", "schema_refuses"), BAD, ids=[b[0] for b in BAD])
    def test_dcc_signed_but_not_an_alert(self, store, alerts, name, build, rule, schema_refuses):
        self._refused(store, signed(build(), alerts), rule)

    def test_revoked_dcc_certificate(self, store, alerts):
        record = read_certificates(alerts.dsp.cert_pem)[0]
        store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
        self._refused(store, alerts.device_alert(FAILED_METER, FAILED_USER), "signature.certificate_revoked")


# -- routing (R7) ------------------------------------------------------------------------------
class TestRefusedAlertsAreKept:
    def test_an_alert_signed_by_a_dcc_certificate_not_yet_imported_is_routed_on_retry(self, store, scenario):
        from solr_policy.testing.pki import TestPki

        builder = scenario.install_alerting(store)
        new_dcc = TestPki("T8").issue(DCC_EUI, 137)  # the DCC's new certificate, not imported yet
        late = AlertBuilder(new_dcc).device_alert(scenario.device("electricity meter (SMETS2)"), scenario.failed_supplier_user)
        router = AlertRouter(store)
        first = router.route(late, now=NOW)
        assert first.status == "refused" and first.rule == "signature.unknown_certificate"
        assert router.retry(now=NOW) == []  # a plain retry leaves refused alerts alone
        for record in read_certificates(new_dcc.cert_pem):
            store.put_certificate(record)
        again = router.retry(now=NOW, refused=True)
        assert [(d.status, d.delivery_id) for d in again] == [("routed", first.delivery_id)]
        row = store.alert_deliveries()[-1]
        assert (row.status, row.recipient, row.target_id) == ("routed", scenario.failed_supplier_user, scenario.failed_supplier_user)
        assert builder is not None and store.verify_audit().intact


class TestRouting:
    def test_before_revocation_to_the_failed_suppliers_user(self, store, alerts):
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])  # not used yet
        delivery = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert delivery.status == "routed"
        assert [(t.kind, t.id, t.endpoint) for t in delivery.targets] == [("user", FAILED_USER, None)]
        assert "not revoked" in delivery.reason
        (row,) = store.alert_deliveries()
        assert (row.id, row.status, row.target_kind, row.target_id) == (delivery.delivery_id, "routed", "user", FAILED_USER)
        assert row.endpoint is None and row.routed_at == NOW
        (entry,) = audit(store, "alert.route")
        assert entry["payload"]["delivery"] == delivery.delivery_id
        assert entry["payload"]["targets"] == [{"kind": "user", "id": FAILED_USER, "endpoint": None}]
        assert entry["device"] == FAILED_METER and entry["originator"] == FAILED_METER

    @pytest.mark.parametrize("status", [InstructionStatus.ACTIVE, InstructionStatus.SUSPENDED, InstructionStatus.ENDED])
    def test_after_revocation_to_the_srp(self, store, status):
        scenario = SolrScenario().install(store, now=NOW, instruction_status=status)
        builder = scenario.install_alerting(store)
        fail_supplier(scenario, store)
        router = AlertRouter(store)
        for raw in (
            builder.device_alert(FAILED_METER, FAILED_USER),
            builder.power_outage(COMMS_HUB, FAILED_USER),
            signed(dcc_alert_doc("N12", status_change()), builder),
        ):
            delivery = router.route(raw, now=NOW)
            assert delivery.status == "routed", delivery.reason
            assert [(t.kind, t.id, t.endpoint) for t in delivery.targets] == [("srp", SRP_ID, SRP_ENDPOINT)]
            assert scenario.instruction_ref in delivery.reason and status.value in delivery.reason
        rows = store.alert_deliveries()
        assert len(rows) == 3
        assert {(r.status, r.target_kind, r.target_id, r.endpoint) for r in rows} == {("routed", "srp", SRP_ID, SRP_ENDPOINT)}
        assert all(r.recipient == FAILED_USER for r in rows)

    @pytest.mark.parametrize("status", [InstructionStatus.PROPOSED, InstructionStatus.REJECTED, None])
    def test_revoked_but_not_named_failed_in_a_live_instruction_goes_to_the_user(self, store, status):
        """Documented behaviour: revocation alone (or a proposed/rejected instruction) is no
        Supplier failure, so the alert still goes to the recipient User, not the SRP."""
        scenario = SolrScenario().install(store, now=NOW, instruction_status=status)
        builder = scenario.install_alerting(store)
        fail_supplier(scenario, store)
        delivery = AlertRouter(store).route(builder.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert delivery.status == "routed"
        assert [(t.kind, t.id) for t in delivery.targets] == [("user", FAILED_USER)]
        assert "not a failed Supplier" in delivery.reason

    def test_named_failed_but_a_certificate_still_in_use_goes_to_the_user(self, store, scenario, alerts):
        """Documented behaviour: every certificate of the recipient must be revoked."""
        fail_supplier(scenario, store)
        for record in read_certificates(scenario.pki.issue(FAILED_USER, 135).cert_pem):  # issued after revocation
            store.put_certificate(record)
        delivery = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert [(t.kind, t.id) for t in delivery.targets] == [("user", FAILED_USER)]
        assert "not revoked" in delivery.reason

    def test_no_srp_is_pending_then_retry_routes_it(self, store, scenario, alerts):
        fail_supplier(scenario, store, srp=False)
        router = AlertRouter(store)
        raw = alerts.power_outage(COMMS_HUB, FAILED_USER)
        delivery = router.route(raw, now=NOW)
        assert delivery.status == "pending" and delivery.targets == []
        assert FAILED in delivery.reason and "no SRP" in delivery.reason
        (row,) = store.alert_deliveries(status=AlertStatus.PENDING)
        assert row.id == delivery.delivery_id and row.reason == delivery.reason
        assert row.target_kind is None and row.routed_at is None
        assert store.alert_deliveries(status=AlertStatus.ROUTED) == []
        assert store.alert_raw(row.id) == raw  # the alert itself is kept, byte for byte

        # Retrying with still no SRP changes nothing.
        assert [d.status for d in router.retry_pending(now=NOW)] == ["pending"]
        assert store.alert_deliveries(status=AlertStatus.PENDING) == [row]
        assert len(audit(store, "alert.route")) == 1

        # An SRP for another Supplier does not help.
        store.put_srp("SRP-OTHER", name="Other SRP", endpoint="queue:other", serves=[STEADY])
        assert [d.status for d in router.retry_pending(now=NOW)] == ["pending"]

        later = NOW + timedelta(minutes=5)
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
        (retried,) = router.retry_pending(now=later)
        assert retried.status == "routed" and retried.delivery_id == row.id
        assert [(t.kind, t.id, t.endpoint) for t in retried.targets] == [("srp", SRP_ID, SRP_ENDPOINT)]
        assert store.alert_deliveries(status=AlertStatus.PENDING) == []
        (updated,) = store.alert_deliveries()
        assert (updated.status, updated.target_kind, updated.target_id, updated.endpoint) == ("routed", "srp", SRP_ID, SRP_ENDPOINT)
        assert updated.routed_at == later and updated.received_at == row.received_at
        assert "SRP" in updated.reason
        entries = audit(store, "alert.route")
        assert len(entries) == 2
        assert entries[0]["payload"]["status"] == "pending" and "retry" not in entries[0]["payload"]
        assert entries[1]["payload"] == {**entries[1]["payload"], "delivery": row.id, "status": "routed", "retry": True}
        assert entries[1]["device"] == COMMS_HUB
        assert router.retry_pending(now=NOW) == []  # nothing left
        assert store.verify_audit().intact

    def test_unaffected_supplier_untouched_when_another_failed(self, store, scenario, alerts):
        fail_supplier(scenario, store)
        store.put_srp("SRP-STEADY", name="Steady's SRP", endpoint="queue:steady", serves=[STEADY])  # not failed: unused
        router = AlertRouter(store)
        for raw in (
            alerts.device_alert(STEADY_METER, STEADY_USER),
            signed(dcc_alert_doc("N12", status_change(STEADY_METER), STEADY_USER), alerts),
        ):
            delivery = router.route(raw, now=NOW)
            assert delivery.status == "routed"
            assert [(t.kind, t.id, t.endpoint) for t in delivery.targets] == [("user", STEADY_USER, None)]
            assert "not a failed Supplier" in delivery.reason
        # The failed Supplier's alert, in the same run, goes to its SRP.
        failed = router.route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert [(t.kind, t.id) for t in failed.targets] == [("srp", SRP_ID)]
        assert [r.target_id for r in store.alert_deliveries()] == [STEADY_USER, STEADY_USER, SRP_ID]

    def test_unknown_recipient_is_pending(self, store, scenario, alerts):
        fail_supplier(scenario, store)
        delivery = AlertRouter(store).route(alerts.device_alert(FAILED_METER, UNKNOWN_USER), now=NOW)
        assert delivery.status == "pending" and delivery.targets == []
        assert UNKNOWN_USER in delivery.reason and "not a known User" in delivery.reason
        (row,) = store.alert_deliveries(status=AlertStatus.PENDING)
        assert row.recipient == UNKNOWN_USER
        # Still pending on retry: it is not silently dropped or sent anywhere.
        assert [d.status for d in AlertRouter(store).retry_pending(now=NOW)] == ["pending"]
        assert len(store.alert_deliveries(status=AlertStatus.PENDING)) == 1

    def test_pending_reason_is_refreshed_on_retry(self, store, scenario, alerts):
        fail_supplier(scenario, store, srp=False)
        router = AlertRouter(store)
        assert router.route(alerts.device_alert(FAILED_METER, UNKNOWN_USER), now=NOW).status == "pending"
        (row,) = store.alert_deliveries(status=AlertStatus.PENDING)
        assert "not a known User" in row.reason
        # The recipient becomes known: a User of the failed Supplier, certificates revoked; no SRP yet.
        store.put_user(User(id=UNKNOWN_USER, party=FAILED, role="IS"))
        for record in read_certificates(scenario.pki.issue(UNKNOWN_USER, 135).cert_pem):
            store.put_certificate(record.model_copy(update={"status": SmkiStatus.REVOKED}))
        (retried,) = router.retry_pending(now=NOW)
        assert retried.status == "pending" and "no SRP" in retried.reason
        (row,) = store.alert_deliveries(status=AlertStatus.PENDING)
        assert row.reason == retried.reason  # the queue says why it waits now, not why it waited
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
        assert [d.targets[0].id for d in router.retry_pending(now=NOW)] == [SRP_ID]

    def test_recipient_in_lower_case_is_the_same_user(self, store, scenario, alerts):
        fail_supplier(scenario, store)
        doc = device_alert_doc()
        doc = with_header(doc, duis_form(FAILED_USER), duis_form(FAILED_USER).lower())
        delivery = AlertRouter(store).route(signed(doc, alerts), now=NOW)
        assert delivery.alert["recipient"] == FAILED_USER
        assert [(t.kind, t.id) for t in delivery.targets] == [("srp", SRP_ID)]

    def test_plan_writes_nothing(self, store, scenario, alerts):
        fail_supplier(scenario, store)
        alert = build_alert(etree.fromstring(device_alert_doc()))
        audit_before = store.verify_audit().entries
        status, targets, _ = plan(store, alert)
        assert (status, [t.kind for t in targets]) == ("routed", ["srp"])
        assert store.alert_deliveries() == [] and store.verify_audit().entries == audit_before

    def test_srp_endpoint_change_applies_to_later_alerts_only(self, store, scenario, alerts):
        fail_supplier(scenario, store)
        router = AlertRouter(store)
        router.route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint="https://srp-north.example/v2", serves=[])
        router.route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert [r.endpoint for r in store.alert_deliveries()] == [SRP_ENDPOINT, "https://srp-north.example/v2"]


class TestSolrPartyCopy:
    def test_policy_flag_adds_the_solr_party(self, store, scenario, alerts, policies_with_copy):
        fail_supplier(scenario, store)
        delivery = AlertRouter(store, policies=policies_with_copy).route(alerts.power_outage(COMMS_HUB, FAILED_USER), now=NOW)
        assert delivery.status == "routed"
        assert [(t.kind, t.id, t.endpoint) for t in delivery.targets] == [("srp", SRP_ID, SRP_ENDPOINT), ("solr_party", SOLR, None)]
        (row,) = store.alert_deliveries()
        assert (row.target_kind, row.target_id) == ("srp,solr_party", f"{SRP_ID},{SOLR}")

    def test_policy_flag_also_on_retry(self, store, scenario, alerts, policies_with_copy):
        fail_supplier(scenario, store, srp=False)
        router = AlertRouter(store, policies=policies_with_copy)
        assert router.route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW).status == "pending"
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
        (retried,) = router.retry_pending(now=NOW)
        assert [t.kind for t in retried.targets] == ["srp", "solr_party"]

    def test_policy_flag_does_not_copy_alerts_that_go_to_the_user(self, store, scenario, alerts, policies_with_copy):
        fail_supplier(scenario, store)
        router = AlertRouter(store, policies=policies_with_copy)
        delivery = router.route(alerts.device_alert(STEADY_METER, STEADY_USER), now=NOW)
        assert [t.kind for t in delivery.targets] == ["user"]

    @pytest.mark.parametrize("with_policies", [True, False], ids=["project-policies", "no-policies"])
    def test_by_default_no_copy(self, store, scenario, alerts, with_policies):
        fail_supplier(scenario, store)
        policies = PolicySet.load_dir(POLICIES) if with_policies else None
        if policies is not None:
            assert policies.for_role("SC").alerts_to_solr_party is False
        delivery = AlertRouter(store, policies=policies).route(alerts.power_outage(COMMS_HUB, FAILED_USER), now=NOW)
        assert [(t.kind, t.id) for t in delivery.targets] == [("srp", SRP_ID)]


class TestNothingLost:
    def test_mixed_run(self, store, scenario, alerts):
        router = AlertRouter(store)
        sent: list[tuple[str, str]] = []  # (response id, phase)
        refused = 0

        def route(raw: bytes, expect: str) -> None:
            nonlocal refused
            delivery = router.route(raw, now=NOW)
            assert delivery.status == expect, delivery.reason
            if expect == "refused":
                refused += 1
            else:
                sent.append((delivery.alert["response_id"], expect))

        # Phase 1: nothing failed yet.
        for _ in range(3):
            route(alerts.device_alert(FAILED_METER, FAILED_USER), "routed")
            route(alerts.device_alert(STEADY_METER, STEADY_USER), "routed")
        route(alerts.power_outage(COMMS_HUB, UNKNOWN_USER), "pending")
        route(device_alert_doc(), "refused")  # unsigned
        # Phase 2: revoked, no SRP yet.
        fail_supplier(scenario, store, srp=False)
        for _ in range(4):
            route(alerts.device_alert(FAILED_METER, FAILED_USER), "pending")
            route(signed(dcc_alert_doc("N12", status_change()), alerts), "pending")
            route(alerts.power_outage(COMMS_HUB, STEADY_USER), "routed")
        route(signed(dcc_alert_doc("X9", power_outage()), alerts), "refused")
        route(signed(device_alert_doc(payload="!!"), alerts), "refused")
        # Phase 3: the SRP arrives; the waiting ones go to it, new ones too.
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
        retried = router.retry_pending(now=NOW)
        assert sorted(d.status for d in retried) == ["pending"] + ["routed"] * 8
        for _ in range(2):
            route(alerts.power_outage(COMMS_HUB, FAILED_USER), "routed")

        valid = len(sent)
        assert valid == 3 * 2 + 1 + 4 * 3 + 2
        rows = [r for r in store.alert_deliveries() if r.status != "refused"]
        assert len(rows) == valid  # one delivery row per valid alert, no more, no fewer
        assert sorted(r.response_id for r in rows) == sorted(rid for rid, _ in sent)
        assert {r.status for r in rows} <= {"routed", "pending"}
        pending = store.alert_deliveries(status=AlertStatus.PENDING)
        assert [r.recipient for r in pending] == [UNKNOWN_USER]
        by_target = {}
        for r in rows:
            by_target.setdefault((r.status, r.target_kind), 0)
            by_target[(r.status, r.target_kind)] += 1
        assert by_target == {("routed", "user"): 3 + 3 + 4, ("routed", "srp"): 8 + 2, ("pending", None): 1}
        for r in rows:
            if r.status == "routed":
                assert r.target_id and r.routed_at
        route_entries = audit(store, "alert.route")
        assert len(route_entries) == valid + 8  # one per alert, one per successful retry
        assert len(audit(store, "alert.refused")) == refused == 3
        check = store.verify_audit()
        assert check.intact, check.message
        assert check.entries >= valid + 8 + refused


class TestRegisterSrp:
    """``srp.register``, the signed governance act behind ``srp add`` (there is no unsigned path):
    register, audit, then route what waited for the SRP."""

    @staticmethod
    def register(store, scenario, serves, *, officer: str = "gov-alice"):
        from solr_policy.governance.acts import Governance
        from solr_policy.testing.governance import Signatories

        params = {"srp": SRP_ID, "name": "North SRP Ltd", "endpoint": SRP_ENDPOINT, "serves": list(serves)}
        statement = Signatories(keys=scenario.officer_keys).statement("srp.register", params, officer=officer, at=NOW)
        return Governance(store, router=AlertRouter(store)).submit(statement, now=NOW)

    def test_registers_audits_and_routes_the_waiting_alerts(self, store, scenario, alerts):
        fail_supplier(scenario, store, srp=False)
        waiting = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        unrelated = AlertRouter(store).route(alerts.power_outage(COMMS_HUB, UNKNOWN_USER), now=NOW)
        assert (waiting.status, unrelated.status) == ("pending", "pending")

        act = self.register(store, scenario, (FAILED,))

        assert act.result["alerts_routed_now"] == [waiting.delivery_id]
        assert store.get_alert_delivery(waiting.delivery_id).status is AlertStatus.ROUTED
        assert store.list_srps() == [SrpRecord(SRP_ID, "North SRP Ltd", SRP_ENDPOINT, (FAILED,))]
        (entry,) = audit(store, "srp.register")
        assert entry["payload"] == {"srp": SRP_ID, "name": "North SRP Ltd", "endpoint": SRP_ENDPOINT, "serves": [FAILED]}
        assert entry["actor"] == "gov-alice" and entry["at"].startswith(NOW.strftime("%Y-%m-%dT%H:%M:%S"))
        assert [r.id for r in store.alert_deliveries(status=AlertStatus.PENDING)] == [unrelated.delivery_id]

    def test_an_unknown_supplier_writes_nothing(self, store, scenario, alerts):
        fail_supplier(scenario, store, srp=False)
        waiting = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        entries = len(store.audit_entries())
        with pytest.raises(GovernanceRefused) as refused:
            self.register(store, scenario, (FAILED, "NO-SUCH-PARTY"))
        assert refused.value.rule == "governance.unknown-party" and "NO-SUCH-PARTY" in str(refused.value)
        assert store.list_srps() == []
        assert [e.kind for e in store.audit_entries()[entries:]] == ["statement.refused"]
        assert store.get_alert_delivery(waiting.delivery_id).status is AlertStatus.PENDING


class TestPersistence:
    def test_pending_queue_and_deliveries_survive_reopening(self, tmp_path):
        path = tmp_path / "alerts.db"
        first = SqliteStore(path)
        scenario = SolrScenario().install(first, now=NOW)
        builder = scenario.install_alerting(first)
        AlertRouter(first).route(builder.device_alert(STEADY_METER, STEADY_USER), now=NOW)
        fail_supplier(scenario, first, srp=False)
        raw = builder.device_alert(FAILED_METER, FAILED_USER)
        pending = AlertRouter(first).route(raw, now=NOW)
        assert pending.status == "pending"
        before = first.alert_deliveries()
        first.close()

        second = SqliteStore(path)
        try:
            assert second.alert_deliveries() == before
            (waiting,) = second.alert_deliveries(status=AlertStatus.PENDING)
            assert waiting.id == pending.delivery_id and waiting.reason == pending.reason
            assert second.alert_raw(waiting.id) == raw
            assert second.verify_audit().intact
            second.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
            (retried,) = AlertRouter(second).retry_pending(now=NOW)
            assert retried.status == "routed" and retried.delivery_id == waiting.id
        finally:
            second.close()

        third = SqliteStore(path)
        try:
            assert third.alert_deliveries(status=AlertStatus.PENDING) == []
            assert [r.status for r in third.alert_deliveries()] == ["routed", "routed"]
            assert third.list_srps() == [SrpRecord(SRP_ID, "North SRP Ltd", SRP_ENDPOINT, (FAILED,))]
        finally:
            third.close()


# -- the command line ----------------------------------------------------------------------------
def run(db: Path, *args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=input)


class TestCli:
    @pytest.fixture()
    def db(self, tmp_path) -> Path:
        return tmp_path / "cli.db"

    @pytest.fixture()
    def setup(self, db):
        store = SqliteStore(db)
        try:
            scenario = SolrScenario().install(store, now=NOW)
            builder = scenario.install_alerting(store)
        finally:
            store.close()
        return scenario, builder

    @pytest.fixture()
    def keys(self, tmp_path, setup) -> OfficerKeys:
        scenario, _ = setup
        return OfficerKeys(tmp_path, scenario.officer_keys)

    def revoke(self, db, scenario) -> None:
        store = SqliteStore(db)
        try:
            assert scenario.revoke_certificates(store, FAILED) == 1
        finally:
            store.close()

    def route(self, db, tmp_path, raw: bytes, *extra: str):
        path = tmp_path / f"alert-{next(_counter)}.xml"
        path.write_bytes(raw)
        result = run(db, "alerts", "route", str(path), "--policies", str(POLICIES), *extra)
        return result, json.loads(result.output)

    def test_a_world_load_naming_the_unknown_recipient_routes_its_waiting_alert(self, db, tmp_path, setup):
        scenario, builder = setup
        result, out = self.route(db, tmp_path, builder.device_alert(FAILED_METER, UNKNOWN_USER))
        assert result.exit_code == 3 and "not a known User" in out["reason"]
        world = tmp_path / "new-user.yaml"
        world.write_text(f"users:\n  - id: {UNKNOWN_USER}\n    party: {FAILED}\n    role: IS\n")
        loaded = run(db, "world", "load", str(world), "--policies", str(POLICIES))
        assert loaded.exit_code == 0, loaded.output
        assert json.loads(loaded.output)["alerts_routed"] == 1
        store = SqliteStore(db)
        try:
            assert store.alert_deliveries(status=AlertStatus.PENDING) == []
            (delivery,) = store.alert_deliveries()
            assert (delivery.status, delivery.target_id) == (AlertStatus.ROUTED, UNKNOWN_USER)
        finally:
            store.close()
        again = run(db, "world", "load", str(world), "--policies", str(POLICIES))
        assert json.loads(again.output)["alerts_routed"] == 0  # nothing waits any more

    def test_route_exit_codes_and_srp_add_routes_the_waiting(self, db, tmp_path, setup, keys):
        scenario, builder = setup
        result, out = self.route(db, tmp_path, builder.device_alert(FAILED_METER, FAILED_USER))
        assert result.exit_code == 0, result.output
        assert out["status"] == "routed" and out["targets"] == [{"kind": "user", "id": FAILED_USER, "endpoint": None}]
        assert out["alert"]["device"] == FAILED_METER

        self.revoke(db, scenario)
        result, out = self.route(db, tmp_path, builder.power_outage(COMMS_HUB, FAILED_USER), "--now", NOW.isoformat())
        assert result.exit_code == 3, result.output
        assert out["status"] == "pending" and "no SRP" in out["reason"]
        waiting = out["delivery_id"]
        result, out2 = self.route(db, tmp_path, builder.device_alert(FAILED_METER, FAILED_USER))
        assert result.exit_code == 3

        result = run(db, "alerts", "pending")
        assert result.exit_code == 0
        listed = json.loads(result.output)
        assert [r["id"] for r in listed] == [waiting, out2["delivery_id"]]
        assert all("no SRP" in r["reason"] and r["recipient"] == FAILED_USER for r in listed)
        assert all("raw" not in r for r in listed)

        srp_add = ["srp", "add", SRP_ID, "--name", "North SRP Ltd", "--endpoint", SRP_ENDPOINT, "--serves", FAILED,
                   "--policies", str(POLICIES), "--now", NOW.isoformat()]
        # Registering an SRP decides where a failed Supplier's alerts go: a governance officer signs it.
        by_aro = run(db, *srp_add, *keys.signs("aro-ann"))
        assert by_aro.exit_code == 1 and json.loads(by_aro.output)["reason"]["rule"] == "governance.officer-kind"
        result = run(db, *srp_add, *keys.signs("gov-alice"))
        assert result.exit_code == 0, result.output
        added = json.loads(result.output)
        assert (added["done"], added["action"], added["signed_by"], added["srp"]) == (True, "srp.register", "gov-alice", SRP_ID)
        assert added["alerts_routed_now"] == [waiting, out2["delivery_id"]]
        assert json.loads(run(db, "alerts", "pending").output) == []

        srps = json.loads(run(db, "srp", "list").output)
        assert srps == [{"id": SRP_ID, "name": "North SRP Ltd", "endpoint": SRP_ENDPOINT, "serves": [FAILED]}]

        listed = json.loads(run(db, "alerts", "list").output)
        assert [(r["status"], r["target_kind"], r["target_id"], r["endpoint"]) for r in listed] == [
            ("routed", "user", FAILED_USER, None),
            ("routed", "srp", SRP_ID, SRP_ENDPOINT),
            ("routed", "srp", SRP_ID, SRP_ENDPOINT),
        ]

        # New alerts now go straight to the SRP.
        result, out = self.route(db, tmp_path, builder.device_alert(FAILED_METER, FAILED_USER))
        assert result.exit_code == 0 and out["targets"][0]["endpoint"] == SRP_ENDPOINT

        store = SqliteStore(db)
        try:
            (registered,) = store.audit_entries(kind="srp.register")
            assert registered.actor == "gov-alice" and registered.payload_data()["endpoint"] == SRP_ENDPOINT
            assert store.verify_audit().intact
        finally:
            store.close()

    def test_route_refused_exit_1(self, db, tmp_path, setup):
        result, out = self.route(db, tmp_path, device_alert_doc())  # unsigned
        assert result.exit_code == 1
        assert out["status"] == "refused" and out["rule"] == "signature.missing"
        assert [r["status"] for r in json.loads(run(db, "alerts", "list").output)] == ["refused"]

    def test_route_not_xml_is_refused_and_missing_file_is_a_usage_error(self, db, tmp_path, setup):
        result, out = self.route(db, tmp_path, b"<sr:Response>not closed")
        assert result.exit_code == 1 and out["rule"] == "xml.malformed"
        result = run(db, "alerts", "route", str(tmp_path / "no-such.xml"), "--policies", str(POLICIES))
        assert result.exit_code == 2
        assert [r["status"] for r in json.loads(run(db, "alerts", "list").output)] == ["refused"]  # the bad XML, kept

    def test_route_with_policy_copying_the_solr_party(self, db, tmp_path, setup, policy_copy_dir):
        scenario, builder = setup
        self.revoke(db, scenario)
        store = SqliteStore(db)
        try:
            store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
        finally:
            store.close()
        path = tmp_path / "outage.xml"
        path.write_bytes(builder.power_outage(COMMS_HUB, FAILED_USER))
        result = run(db, "alerts", "route", str(path), "--policies", str(policy_copy_dir))
        assert result.exit_code == 0, result.output
        assert [t["kind"] for t in json.loads(result.output)["targets"]] == ["srp", "solr_party"]
        result = run(db, "alerts", "route", str(path), "--policies", str(POLICIES))  # the same alert again: once only
        assert json.loads(result.output)["status"] == "duplicate"
        path.write_bytes(builder.power_outage(COMMS_HUB, FAILED_USER))  # a new alert, default policy
        result = run(db, "alerts", "route", str(path), "--policies", str(POLICIES))
        assert [t["kind"] for t in json.loads(result.output)["targets"]] == ["srp"]

    def test_route_from_stdin(self, db, setup):
        _, builder = setup
        result = run(db, "alerts", "route", "-", "--policies", str(POLICIES), input=builder.device_alert(STEADY_METER, STEADY_USER))
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["targets"][0]["id"] == STEADY_USER

    def test_alerts_retry(self, db, tmp_path, setup):
        scenario, builder = setup
        self.revoke(db, scenario)
        result, _out = self.route(db, tmp_path, builder.device_alert(FAILED_METER, FAILED_USER))
        assert result.exit_code == 3
        retried = json.loads(run(db, "alerts", "retry", "--policies", str(POLICIES)).output)
        assert [d["status"] for d in retried] == ["pending"]

    def test_srp_add_refuses_an_unknown_party_or_an_endpoint_not_https(self, db, setup, keys):
        add = ["srp", "add", SRP_ID, "--name", "x", "--policies", str(POLICIES), *keys.signs("gov-alice")]
        result = run(db, *add, "--endpoint", "https://srp.example/a", "--serves", "NO-SUCH-PARTY")
        assert result.exit_code == 1
        reason = json.loads(result.output)["reason"]
        assert reason["rule"] == "governance.unknown-party" and "NO-SUCH-PARTY" in reason["message"]
        result = run(db, *add, "--endpoint", "queue:x", "--serves", FAILED)
        assert result.exit_code == 1 and json.loads(result.output)["reason"]["rule"] == "R7.srp-endpoint"
        assert json.loads(run(db, "srp", "list").output) == []

    @pytest.mark.reference
    def test_route_with_schema_dir(self, db, tmp_path, setup):
        _, builder = setup
        result, out = self.route(db, tmp_path, builder.power_outage(COMMS_HUB, STEADY_USER), "--schema-dir", str(XSD))
        assert result.exit_code == 0, result.output
        result, out = self.route(db, tmp_path, signed(dcc_alert_doc("X9", power_outage()), builder), "--schema-dir", str(XSD))
        assert result.exit_code == 1 and out["rule"] == "duis.schema"

    def test_world_load_refuses_srps(self, db, tmp_path, setup):
        # An SRP decides where a failed Supplier's alerts go: only a signed `srp add` registers one.
        scenario, builder = setup
        self.revoke(db, scenario)
        result, _out = self.route(db, tmp_path, builder.device_alert(FAILED_METER, FAILED_USER))
        assert result.exit_code == 3
        world = tmp_path / "world.yaml"
        world.write_text(
            "parties:\n"
            "  - id: SRP-PARENT\n    name: SRP Holdings\n"
            "srps:\n"
            f"  - id: {SRP_ID}\n    name: North SRP Ltd\n    endpoint: {SRP_ENDPOINT}\n    serves: [{FAILED}, {STEADY}]\n"
        )
        result = run(db, "world", "load", str(world), "--policies", str(POLICIES))
        assert result.exit_code == 1
        assert f"{world} line 4, section srps: " in result.stderr and "solr-policy srp add ... --key FILE" in result.stderr
        assert json.loads(run(db, "srp", "list").output) == []
        assert "SRP-PARENT" not in [p["id"] for p in json.loads(run(db, "world", "show").output)["parties"]]
        # The alert still waits: nothing was routed to the endpoint the file named.
        assert len(json.loads(run(db, "alerts", "pending").output)) == 1
        assert not [r for r in json.loads(run(db, "alerts", "list").output) if r["status"] == "routed"]


# -- exactly once ---------------------------------------------------------------------------------
def test_the_same_signed_alert_routed_twice_is_delivered_once(store, scenario, alerts):
    from solr_policy.alerts.routing import AlertRouter

    fail_supplier(scenario, store)
    router = AlertRouter(store)
    raw = alerts.device_alert(FAILED_METER, FAILED_USER)
    first = router.route(raw)
    again = router.route(raw)
    assert first.status == "routed" and again.status == "duplicate" and again.delivery_id == first.delivery_id
    assert len(store.alert_deliveries()) == 1
    assert [e.payload_data()["delivery"] for e in store.audit_entries(kind="alert.duplicate")] == [first.delivery_id]
    # Another alert with another ResponseID is routed as usual.
    assert router.route(alerts.device_alert(FAILED_METER, FAILED_USER)).status == "routed"


def test_a_refused_alert_keeps_a_bounded_prefix_and_logs_its_size_and_digest(store, scenario):
    import hashlib

    from solr_policy.alerts.routing import MAX_KEPT_BYTES, AlertRouter

    huge = b"<sr:Response>" + b"x" * (3 * MAX_KEPT_BYTES)
    delivery = AlertRouter(store).route(huge)
    assert delivery.status == "refused"
    assert len(store.alert_raw(delivery.delivery_id)) == MAX_KEPT_BYTES
    (entry,) = store.audit_entries(kind="alert.refused")
    payload = entry.payload_data()
    assert payload["size"] == len(huge) and payload["sha256"] == hashlib.sha256(huge).hexdigest() and payload["kept"] == MAX_KEPT_BYTES


# -- review: certificates that cannot receive, exactly once on retry, signed content -------------
class TestCertificatesThatCannotReceive:
    """A failed Supplier's certificates that are expired (by SMKI status or by date) or Not in use
    cannot receive its alerts any more than revoked ones: with the rest revoked, its alerts go to
    the SRP, not to a User nobody can reach."""

    @staticmethod
    def old_certificate(scenario, store, *, status: SmkiStatus, expired_by_date: bool) -> None:
        long_ago = NOW - timedelta(days=800)
        issued = scenario.pki.issue(FAILED_USER, 135, not_before=long_ago, not_after=NOW - timedelta(days=1) if expired_by_date else NOW + timedelta(days=365))
        for record in read_certificates(issued.cert_pem):
            store.put_certificate(record.model_copy(update={"status": status}))

    @pytest.mark.parametrize(
        ("status", "expired_by_date"),
        [(SmkiStatus.EXPIRED, True), (SmkiStatus.IN_USE, True), (SmkiStatus.NOT_IN_USE, False)],
        ids=["status-expired", "in-use-but-past-not-after", "not-in-use"],
    )
    def test_revoked_beside_certificates_that_cannot_receive_goes_to_the_srp(self, store, scenario, alerts, status, expired_by_date):
        fail_supplier(scenario, store)  # the certificate in use is revoked
        self.old_certificate(scenario, store, status=status, expired_by_date=expired_by_date)
        delivery = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert delivery.status == "routed", delivery.reason
        assert [(t.kind, t.id) for t in delivery.targets] == [("srp", SRP_ID)]

    def test_a_certificate_in_use_and_valid_still_keeps_the_alerts_with_the_user(self, store, scenario, alerts):
        fail_supplier(scenario, store)
        self.old_certificate(scenario, store, status=SmkiStatus.IN_USE, expired_by_date=False)
        delivery = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert [(t.kind, t.id) for t in delivery.targets] == [("user", FAILED_USER)]

    def test_expired_only_and_never_revoked_is_no_revocation(self, store, scenario, alerts):
        """R7's trigger is revocation: certificates that merely expired leave the alert with the User."""
        for record in store.find_certificates(eui=FAILED_USER):
            store.set_certificate_status(record.issuer, record.serial, SmkiStatus.EXPIRED)
        store.put_srp(SRP_ID, name="North SRP Ltd", endpoint=SRP_ENDPOINT, serves=[FAILED])
        delivery = AlertRouter(store).route(alerts.device_alert(FAILED_METER, FAILED_USER), now=NOW)
        assert [(t.kind, t.id) for t in delivery.targets] == [("user", FAILED_USER)]


def test_a_refused_copy_retried_after_the_same_alert_was_routed_is_not_routed_again(store, scenario):
    """The DCC sends an alert signed with its new certificate before it is imported (refused,
    kept); it sends the same alert again after the import (routed). Retrying the refused copy
    must not deliver that alert a second time."""
    from solr_policy.testing.pki import TestPki

    scenario.install_alerting(store)
    fail_supplier(scenario, store)
    new_dcc = TestPki("T8").issue(DCC_EUI, 137)
    raw = AlertBuilder(new_dcc).device_alert(FAILED_METER, FAILED_USER, when=NOW)
    router = AlertRouter(store)
    first = router.route(raw, now=NOW)
    assert first.status == "refused" and first.rule == "signature.unknown_certificate"
    for record in read_certificates(new_dcc.cert_pem):
        store.put_certificate(record)
    again = router.route(raw, now=NOW)
    assert again.status == "routed"
    (retried,) = router.retry(now=NOW, refused=True)
    assert retried.status == "duplicate" and retried.delivery_id == again.delivery_id, retried
    routed = store.alert_deliveries(status=AlertStatus.ROUTED)
    assert [r.id for r in routed] == [again.delivery_id]  # delivered once
    assert len(audit(store, "alert.route")) == 1
    # The refused copy is settled: a later retry does not look at it again.
    assert router.retry(now=NOW, refused=True) == []
    assert store.verify_audit().intact


def test_two_different_signed_alerts_with_one_response_id_are_both_routed(store, scenario, alerts):
    """Exactly once is by signed content: a second, different alert that reuses a ResponseID
    (same Device, code, time and payload length, another GBCS payload) is no duplicate."""
    fail_supplier(scenario, store)
    counter = next(_counter)

    def doc(payload: bytes) -> bytes:
        gbcs = base64.b64encode(payload).decode()
        body = f"<sr:DeviceAlertMessage><sr:AlertCode>8F84</sr:AlertCode><sr:GBCSPayload>{gbcs}</sr:GBCSPayload></sr:DeviceAlertMessage>"
        return signed(alert_document(originator=FAILED_METER, recipient=FAILED_USER, counter=counter, body=body, when=NOW), alerts)

    router = AlertRouter(store)
    first = router.route(doc(bytes.fromhex("DF0903") + bytes(8)), now=NOW)
    second = router.route(doc(bytes.fromhex("DF0903") + bytes(7) + b"\x01"), now=NOW)
    assert (first.status, second.status) == ("routed", "routed"), second.reason
    assert second.delivery_id != first.delivery_id
    # The same signed content sent again (signed afresh: ECDSA signatures differ) is the duplicate.
    third = router.route(doc(bytes.fromhex("DF0903") + bytes(8)), now=NOW)
    assert third.status == "duplicate" and third.delivery_id == first.delivery_id


def test_a_future_dated_device_alert_for_the_failed_supplier_goes_to_its_srp(store, scenario, alerts):
    """8F66/8F67 come inside a ResponseMessage, not a DeviceAlertMessage: they are Device Alerts
    for the failed Supplier's Devices all the same (its future-dated commands running after it failed)."""
    fail_supplier(scenario, store)
    delivery = AlertRouter(store).route(signed(future_dated_alert_doc(alert_code="8F67"), alerts), now=NOW)
    assert delivery.status == "routed", delivery.reason
    assert [(t.kind, t.id) for t in delivery.targets] == [("srp", SRP_ID)]
    assert (delivery.alert["alert_code"], delivery.alert["device"]) == ("8F67", FAILED_METER)


@pytest.mark.reference
def test_alerts_retry_refused_checks_again_against_the_same_schema(tmp_path):
    """An alert the DUIS schema refused (DCCAlertCode N32 is not in its list) must not be routed
    by `alerts retry --refused` just because the retry forgot the schema in force."""
    db = tmp_path / "cli.db"
    store = SqliteStore(db)
    try:
        builder = SolrScenario().install(store, now=NOW).install_alerting(store)
    finally:
        store.close()
    path = tmp_path / "n32.xml"
    path.write_bytes(signed(dcc_alert_doc("N32", status_change()), builder))
    routed = CliRunner().invoke(cli, ["--db", str(db), "--schema-dir", str(XSD), "alerts", "route", str(path), "--now", NOW.isoformat()])
    assert routed.exit_code == 1 and json.loads(routed.output)["rule"] == "duis.schema", routed.output
    retried = CliRunner().invoke(cli, ["--db", str(db), "--schema-dir", str(XSD), "alerts", "retry", "--refused", "--now", NOW.isoformat()])
    assert retried.exit_code == 0, retried.output
    assert [(d["status"], d["rule"]) for d in json.loads(retried.output)] == [("refused", "duis.schema")]
    assert json.loads(run(db, "alerts", "list").output)[0]["status"] == "refused"


class TestDccCertificates:
    """The DCC's signing certificate, as an SRP relies on it: alerts are judged by it as it
    stood when they were received."""

    def test_expired_or_wrong_usage_dcc_certificate_is_refused_and_kept(self, store, scenario):
        from solr_policy.testing.pki import TestPki

        scenario.install_alerting(store)
        router = AlertRouter(store)
        for issued, rule in (
            (TestPki("T9").issue(DCC_EUI, 137, not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1)), "signature.certificate_expired"),
            (TestPki("T10").issue(DCC_EUI, 137, usage="key_agreement"), "signature.certificate_usage"),
        ):
            for record in read_certificates(issued.cert_pem):
                store.put_certificate(record)
            delivery = router.route(AlertBuilder(issued).device_alert(FAILED_METER, FAILED_USER, when=NOW), now=NOW)
            assert (delivery.status, delivery.rule) == ("refused", rule), delivery.reason
            assert store.alert_raw(delivery.delivery_id)  # kept

    def test_a_refused_alert_is_checked_again_as_of_when_it_was_received(self, store, scenario):
        """The DCC's new certificate was not imported when the alert came; it is imported after
        that certificate's own end date. The alert was genuine when received: it is routed."""
        from solr_policy.testing.pki import TestPki

        scenario.install_alerting(store)
        fail_supplier(scenario, store)
        short = TestPki("T11").issue(DCC_EUI, 137, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(hours=1))
        router = AlertRouter(store)
        first = router.route(AlertBuilder(short).device_alert(FAILED_METER, FAILED_USER, when=NOW), now=NOW)
        assert first.rule == "signature.unknown_certificate"
        for record in read_certificates(short.cert_pem):
            store.put_certificate(record)
        (again,) = router.retry(now=NOW + timedelta(hours=2), refused=True)
        assert (again.status, again.delivery_id) == ("routed", first.delivery_id), again.reason
        assert [(t.kind, t.id) for t in again.targets] == [("srp", SRP_ID)]
