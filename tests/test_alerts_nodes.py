"""Alerts (R7) routed exactly once when several nodes share one database: the same signed
alert sent to two nodes at once, and the waiting queue retried by two nodes at once, are
each routed once; the other node answers duplicate, or leaves the routed alert alone."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from solr_policy.alerts.routing import AlertRouter
from solr_policy.records import AlertStatus
from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario


NOW = datetime.now(timezone.utc).replace(microsecond=0)
FAILED_METER = "00DB1234567890B0"  # FAILED-ENERGY's SMETS2 electricity meter
SRP_ID = "SRP-NORTH"


@pytest.fixture()
def nodes(db, pki):
    """Two stores on one database, a failed Supplier whose certificates are revoked."""
    node_a, node_b = open_store(db), open_store(db)
    scenario = SolrScenario(pki=pki).install(node_a, now=NOW)
    builder = scenario.install_alerting(node_a)
    scenario.revoke_certificates(node_a, scenario.failed_supplier)
    yield node_a, node_b, scenario, builder
    node_a.close()
    node_b.close()


def _meanwhile(store, method: str, monkeypatch, other) -> list[threading.Thread]:
    """Run ``other`` (on another node) just after ``store.method`` first returns, and give it a
    second to finish: it does unless this node holds what it must wait for."""
    read = getattr(store, method)
    started: list[threading.Thread] = []

    def wrapped(*args, **kwargs):
        result = read(*args, **kwargs)
        if not started:
            started.append(threading.Thread(target=other, daemon=True))
            started[0].start()
            started[0].join(timeout=1.0)
        return result

    monkeypatch.setattr(store, method, wrapped)
    return started


def test_one_alert_sent_to_two_nodes_at_once_is_routed_once(nodes, monkeypatch):
    node_a, node_b, scenario, builder = nodes
    node_a.put_srp(SRP_ID, name="North SRP Ltd", endpoint="https://srp-north.example/alerts", serves=[scenario.failed_supplier])
    raw = builder.device_alert(FAILED_METER, scenario.failed_supplier_user)
    answers = []
    started = _meanwhile(node_b, "alert_deliveries", monkeypatch, lambda: answers.append(AlertRouter(node_a).route(raw, now=NOW)))
    answers.append(AlertRouter(node_b).route(raw, now=NOW))
    started[0].join(timeout=60)
    assert not started[0].is_alive()
    assert sorted(a.status for a in answers) == ["duplicate", "routed"]
    assert len(node_a.alert_deliveries()) == 1
    assert len(node_a.audit_entries(kind="alert.route")) == 1 and len(node_a.audit_entries(kind="alert.duplicate")) == 1


def test_a_waiting_alert_retried_by_two_nodes_at_once_is_routed_once(nodes, monkeypatch):
    node_a, node_b, scenario, builder = nodes
    waiting = AlertRouter(node_a).route(builder.device_alert(FAILED_METER, scenario.failed_supplier_user), now=NOW)
    assert waiting.status == "pending"
    node_a.put_srp(SRP_ID, name="North SRP Ltd", endpoint="https://srp-north.example/alerts", serves=[scenario.failed_supplier])
    started = _meanwhile(node_b, "get_alert_delivery", monkeypatch, lambda: AlertRouter(node_a).retry(now=NOW))
    AlertRouter(node_b).retry(now=NOW)
    started[0].join(timeout=60)
    assert not started[0].is_alive()
    assert node_a.get_alert_delivery(waiting.delivery_id).status is AlertStatus.ROUTED
    retried = [e for e in node_a.audit_entries(kind="alert.route") if e.payload_data().get("retry")]
    assert len(retried) == 1, [e.payload_data() for e in retried]


def test_an_srp_registered_while_another_node_routes_an_alert_gets_that_alert(nodes, monkeypatch):
    """Node B routes an alert and finds no SRP; before B records it as waiting, node A registers
    the SRP and routes what waits (as ``srp.register`` does), seeing nothing yet. The alert must
    not be left waiting for an SRP that is registered."""
    node_a, node_b, scenario, builder = nodes
    raw = builder.device_alert(FAILED_METER, scenario.failed_supplier_user)

    def register_and_retry() -> None:
        node_a.put_srp(SRP_ID, name="North SRP Ltd", endpoint="https://srp-north.example/alerts", serves=[scenario.failed_supplier])
        AlertRouter(node_a).retry_pending(now=NOW)

    started = _meanwhile(node_b, "srp_for_supplier", monkeypatch, register_and_retry)
    answer = AlertRouter(node_b).route(raw, now=NOW)
    started[0].join(timeout=60)
    assert not started[0].is_alive()
    (row,) = node_a.alert_deliveries()
    assert (row.status, row.target_id) == (AlertStatus.ROUTED, SRP_ID), row.reason
    assert node_a.alert_deliveries(status=AlertStatus.PENDING) == []
    # B answers what it recorded: waiting, or routed if it saw the SRP in time; either way the same row.
    assert answer.status in ("pending", "routed") and answer.delivery_id == row.id
    assert len([e for e in node_a.audit_entries(kind="alert.route") if e.payload_data()["status"] == "routed"]) == 1
    assert node_a.verify_audit().intact
