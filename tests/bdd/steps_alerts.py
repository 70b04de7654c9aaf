"""Steps for R7: alerts for a failed Supplier's meters, routed to its Shared Resource Provider.

The DCC's alerts are made by the scenario's ``AlertBuilder`` (signed as the DCC signs them)
and routed by the product's ``AlertRouter``; every alert sent is kept on the scene with its
``Delivery``, so that a Then step can account for each one against the store's queue.
"""

from __future__ import annotations

from parse import with_pattern
from pytest_bdd import given, parsers, then, when

from solr_policy.alerts.routing import AlertRouter, Delivery, Target
from solr_policy.governance.acts import Governance
from solr_policy.records import AlertStatus
from solr_policy.testing.governance import Signatories

from .conftest import TYPES, UNREGISTERED_EUI, Scene, _choice

# Who the DCC addresses an alert to -> the SolrScenario attribute with that User's id
# (None: a User the DCC does not know).
RECIPIENTS = {
    "Failed Energy's user": "failed_supplier_user",
    "Steady Power's user": "other_supplier_user",
    "a user the DCC does not know": None,
}
ALERTS = ("a device alert", "a power outage alert")
# Shared Resource Providers -> (id, endpoint).
SRPS = {"Northern Shared Services": ("SRP-NORTH", "https://srp-north.example/alerts")}


def _typed(words):
    @with_pattern(_choice(words))
    def convert(text: str) -> str:
        return text

    return convert


ATYPES = {
    **TYPES,
    "Recipient": _typed(RECIPIENTS),
    "Alert": _typed(ALERTS),
    "Srp": _typed(SRPS),
    "Supplier": _typed(["Failed Energy", "Steady Power"]),
}


def astep(text: str):
    return parsers.parse(text, extra_types=ATYPES)


def recipient_id(scene: Scene, recipient: str) -> str:
    attribute = RECIPIENTS[recipient]
    return UNREGISTERED_EUI if attribute is None else getattr(scene.solr, attribute)


def router(scene: Scene) -> AlertRouter:
    # Made afresh for each alert, so that it reads the policy file as the scenario left it.
    return AlertRouter(scene.store, policies=scene.engine.policies)


def _send(scene: Scene, alert: str, meter: str, recipient: str) -> Delivery:
    assert scene.alerts is not None, "the Background must set up the Suppliers' alert users"
    device, to = scene.meter_id(meter), recipient_id(scene, recipient)
    raw = scene.alerts.device_alert(device, to) if alert == "a device alert" else scene.alerts.power_outage(device, to)
    delivery = router(scene).route(raw, now=scene.now)
    assert delivery.status != "refused", f"the DCC's alert was not accepted: {delivery.rule}: {delivery.reason}"
    scene.sent.append({"alert": alert, "meter": meter, "to": recipient, "delivery": delivery})
    return delivery


def _last(scene: Scene) -> Delivery:
    assert scene.sent, "no alert was sent"
    return scene.sent[-1]["delivery"]


def _row(scene: Scene, delivery: Delivery) -> dict:
    (row,) = [r for r in scene.store.alert_deliveries() if r.id == delivery.delivery_id]
    return row


def _routing_audited(scene: Scene, delivery_id: int, status: str) -> None:
    entries = [e.payload_data() for e in scene.store.audit_entries(kind="alert.route")]
    assert any(p["delivery"] == delivery_id and p["status"] == status for p in entries), (
        f"no audit entry records delivery {delivery_id} as {status}"
    )


def srp_target(scene: Scene, srp: str) -> Target:
    srp_id, endpoint = SRPS[srp]
    return Target(kind="srp", id=srp_id, endpoint=endpoint)


# -- Given -----------------------------------------------------------------------------------


@given("Failed Energy and Steady Power each have a user that receives their meters' alerts")
def alert_users(scene: Scene):
    scene.alerts = scene.solr.install_alerting(scene.store)
    for party, user in ((scene.solr.failed_supplier, scene.solr.failed_supplier_user), (scene.solr.other_supplier, scene.solr.other_supplier_user)):
        registered = scene.store.get_user(user)
        assert registered is not None and registered.party == party


@given("the SMKI has revoked Failed Energy's certificates")
def revoke_failed(scene: Scene):
    assert scene.solr.revoke_certificates(scene.store, scene.solr.failed_supplier) > 0
    scene.notes["revoked after"] = len(scene.sent)  # how many alerts were sent before
    held = scene.store.find_certificates(eui=scene.solr.failed_supplier_user)
    assert held and all(c.status.value == "R" for c in held)


@given("Failed Energy's user also holds an older certificate, which expired before the failure")
def older_expired_certificate(scene: Scene):
    from datetime import timedelta

    from solr_policy.crypto.certs import read_certificates
    from solr_policy.records import SmkiStatus

    user = scene.solr.failed_supplier_user
    issued = scene.solr.pki.issue(user, 135, not_before=scene.now - timedelta(days=800), not_after=scene.now - timedelta(days=30))
    for record in read_certificates(issued.cert_pem):
        scene.store.put_certificate(record.model_copy(update={"status": SmkiStatus.EXPIRED}))
    held = {c.status.value for c in scene.store.find_certificates(eui=user)}
    assert held == {"R", "E"}, held


def _register_srp(scene: Scene, srp: str) -> None:
    # As in production: a governance officer signs the registration (the act srp.register).
    srp_id, endpoint = SRPS[srp]
    params = {"srp": srp_id, "name": srp, "endpoint": endpoint, "serves": [scene.solr.failed_supplier]}
    statement = Signatories(keys=scene.solr.officer_keys).statement("srp.register", params, officer="gov-alice", at=scene.now)
    Governance(scene.store, engine=scene.engine).submit(statement, now=scene.now)
    assert scene.store.srp_for_supplier(scene.solr.failed_supplier).id == srp_id


@given(astep("{srp:Srp} is registered as Failed Energy's Shared Resource Provider"))
def srp_registered(scene: Scene, srp: str):
    _register_srp(scene, srp)


@given("the SoLR Contingency policy file says the SoLR Party is to receive copies of a failed Supplier's alerts")
def policy_copies_alerts(scene: Scene):
    scene.changed_policy(lambda data: data.update({"alerts_to_solr_party": True}))
    assert scene.engine.policies.for_role("SC").alerts_to_solr_party


@given(astep("the DCC has sent {alert:Alert} for {meter:Meter} to {recipient:Recipient}"))
def has_sent(scene: Scene, alert: str, meter: str, recipient: str):
    _send(scene, alert, meter, recipient)


# -- When ------------------------------------------------------------------------------------


@when(astep("the DCC sends {alert:Alert} for {meter:Meter} to {recipient:Recipient}"))
def sends(scene: Scene, alert: str, meter: str, recipient: str):
    _send(scene, alert, meter, recipient)


@when("the DCC sends these alerts:")
def sends_table(scene: Scene, datatable):
    header, *rows = datatable
    assert header == ["alert", "for", "to"], header
    for alert, meter, recipient in rows:
        assert alert in ALERTS and recipient in RECIPIENTS, (alert, recipient)
        _send(scene, alert, meter, recipient)


@when(astep("{srp:Srp} is registered as Failed Energy's Shared Resource Provider and the waiting alerts are routed again"))
def srp_then_retry(scene: Scene, srp: str):
    _register_srp(scene, srp)
    scene.notes["retried"] = router(scene).retry_pending(now=scene.now)


# -- Then ------------------------------------------------------------------------------------


@then(astep("the alert is routed to {supplier:Supplier}'s own user"))
def delivered_to_user(scene: Scene, supplier: str):
    user = recipient_id(scene, f"{supplier}'s user")
    delivery = _last(scene)
    assert delivery.status == "routed", delivery
    assert delivery.targets == [Target(kind="user", id=user)], delivery.targets
    row = _row(scene, delivery)
    assert (row.status, row.target_kind, row.target_id) == ("routed", "user", user), row
    _routing_audited(scene, delivery.delivery_id, "routed")


@then(astep("the alert is routed to {srp:Srp}"))
def delivered_to_srp(scene: Scene, srp: str):
    delivery = _last(scene)
    assert delivery.status == "routed", delivery
    assert delivery.targets == [srp_target(scene, srp)], delivery.targets
    assert "certificates revoked" in delivery.reason, delivery.reason
    row = _row(scene, delivery)
    assert (row.status, row.target_kind, row.target_id) == ("routed", "srp", SRPS[srp][0]), row
    _routing_audited(scene, delivery.delivery_id, "routed")


@then(astep("the alert is routed to {srp:Srp}, with a copy to SoLR Contingency Services"))
def delivered_with_copy(scene: Scene, srp: str):
    delivery = _last(scene)
    assert delivery.status == "routed", delivery
    assert delivery.targets == [srp_target(scene, srp), Target(kind="solr_party", id=scene.solr.solr_party)], delivery.targets
    _routing_audited(scene, delivery.delivery_id, "routed")


@then("SoLR Contingency Services receives no copy of the alert")
def no_copy(scene: Scene):
    delivery = _last(scene)
    assert delivery.status == "routed", delivery
    assert all(t.kind != "solr_party" and t.id != scene.solr.solr_party for t in delivery.targets), delivery.targets
    assert scene.solr.solr_party not in (_row(scene, delivery).target_id or "")


@then("the alert waits in the queue of alerts not yet routed")
def waits(scene: Scene):
    delivery = _last(scene)
    assert delivery.status == "pending" and delivery.targets == [], delivery
    assert "no SRP is registered" in delivery.reason, delivery.reason
    assert delivery.delivery_id in [r.id for r in scene.store.alert_deliveries(status=AlertStatus.PENDING)]
    _routing_audited(scene, delivery.delivery_id, "pending")


@then(astep("the waiting alert is routed to {srp:Srp}"))
def waiting_delivered(scene: Scene, srp: str):
    delivery = _last(scene)
    retried = {d.delivery_id: d for d in scene.notes["retried"]}
    assert delivery.delivery_id in retried, f"alert {delivery.delivery_id} was not routed again"
    again = retried[delivery.delivery_id]
    assert again.status == "routed" and again.targets == [srp_target(scene, srp)], again
    row = _row(scene, delivery)
    assert (row.status, row.target_id, row.endpoint) == ("routed", *SRPS[srp]), row
    _routing_audited(scene, delivery.delivery_id, "routed")


@then("no alert is left waiting")
def none_waiting(scene: Scene):
    assert scene.store.alert_deliveries(status=AlertStatus.PENDING) == []


@then("every alert the DCC sent is accounted for, each either routed or waiting")
def accounted_for(scene: Scene):
    rows = scene.store.alert_deliveries()
    sent = [s["delivery"].alert["response_id"] for s in scene.sent]
    assert len(set(sent)) == len(sent), "the scenario sent the same alert twice"
    assert sorted(r.response_id for r in rows) == sorted(sent), "an alert received is not in the store, or one is there twice"
    assert {r.status for r in rows} <= {"routed", "pending"}, [r.status for r in rows]
    for row in rows:
        assert row.status == "pending" or row.target_id, row
        _routing_audited(scene, row.id, "pending" if row.status == "pending" else "routed")


@then(astep("the alerts for Failed Energy's meters sent after the revocation were routed to {srp:Srp}"))
def after_revocation_to_srp(scene: Scene, srp: str):
    revoked_at = scene.notes.get("revoked after", 0)
    rows = {r.id: r for r in scene.store.alert_deliveries()}
    failed = [s for s in scene.sent[revoked_at:] if s["to"] == "Failed Energy's user"]
    assert failed, "the scenario sent no alert to Failed Energy's user after the revocation"
    for s in failed:
        row = rows[s["delivery"].delivery_id]
        assert (row.status, row.target_kind, row.target_id) == ("routed", "srp", SRPS[srp][0]), row


@then(astep("only the alert addressed to {recipient:Recipient} is still waiting"))
def only_waiting(scene: Scene, recipient: str):
    waiting = scene.store.alert_deliveries(status=AlertStatus.PENDING)
    assert [r.recipient for r in waiting] == [recipient_id(scene, recipient)], waiting
    assert "not a known User" in waiting[0].reason, waiting[0].reason
