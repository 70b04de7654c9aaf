"""Prometheus metrics (the official client). Counters and the histogram are counted by the
process that decided; with several workers they share ``PROMETHEUS_MULTIPROC_DIR`` (set by
``solr-policy serve``) so a scrape of any worker sees all. The gauges read the store at
scrape time, so they are the same whichever node or worker is scraped."""

from __future__ import annotations

import os

from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from solr_policy.decision import Decision
from solr_policy.records import AlertStatus, QuarantineStatus
from solr_policy.store.base import Store

DECISIONS = Counter(
    "solr_policy_decisions", "Decisions made, by outcome, DUIS response code and deciding rule", ["outcome", "code", "rule"]
)
LATENCY = Histogram(
    "solr_policy_decision_seconds", "Time to decide one request, from its body read to its answer", ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
)
BOUNDARY = Counter(
    "solr_policy_boundary_refusals", "Requests refused before the rules ran (HTTP, XML, signature, store), by rule", ["rule"]
)


def count_decision(decision: Decision, endpoint: str, seconds: float) -> None:
    LATENCY.labels(endpoint).observe(seconds)
    if endpoint == "evaluation":
        return  # a dry run is not a decision
    rule = "-" if decision.outcome == "allow" or not decision.reasons else decision.reasons[0].rule
    DECISIONS.labels(decision.outcome, decision.response_code or "none", rule).inc()
    if decision.outcome == "reject" and not decision.checks:
        BOUNDARY.labels(rule).inc()


def count_boundary(rule: str) -> None:
    BOUNDARY.labels(rule).inc()


class StoreGauges(Collector):
    """Read at each scrape: quarantine depth, alerts waiting, log size, checkpoint age."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self.store()
        if store is None:
            return
        held = len(store.list_quarantine(status=QuarantineStatus.HELD))
        pending = store.alert_deliveries(status=AlertStatus.PENDING)
        refused_kept = len(store.alert_deliveries(status=AlertStatus.REFUSED))
        size = store.log_head().size
        checkpoint = store.latest_checkpoint()
        yield GaugeMetricFamily("solr_policy_quarantine_depth", "Requests held over an ADT threshold, waiting for an officer", value=held)
        yield GaugeMetricFamily(
            "solr_policy_alerts_waiting", "Alerts waiting in the queue: no SRP registered for their failed Supplier yet, or an unknown recipient",
            value=len(pending),
        )
        # A count alone hides an alert stuck for days behind a steady trickle: its age shows it.
        oldest = GaugeMetricFamily("solr_policy_alerts_oldest_waiting_seconds", "Seconds the oldest waiting alert has waited (absent: none waits)")
        if pending:
            oldest.add_metric([], (datetime.now(timezone.utc) - min(d.received_at for d in pending)).total_seconds())
        yield oldest
        yield GaugeMetricFamily(
            "solr_policy_alerts_refused_kept", "Refused alerts kept with their bytes, which `alerts retry --refused` checks again",
            value=refused_kept,
        )
        yield GaugeMetricFamily("solr_policy_log_entries", "Entries in the audit log (its Merkle tree size)", value=size)
        age = GaugeMetricFamily("solr_policy_checkpoint_age_seconds", "Seconds since the newest signed checkpoint (absent: none yet)")
        if checkpoint is not None:
            age.add_metric([], (datetime.now(timezone.utc) - checkpoint.at).total_seconds())
        yield age
        yield GaugeMetricFamily(
            "solr_policy_log_unsigned_entries", "Entries appended since the newest checkpoint",
            value=size - (checkpoint.size if checkpoint else 0),
        )


def render(store: Callable[[], Store | None]) -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    text = generate_latest(registry)
    own = CollectorRegistry()
    own.register(StoreGauges(store))
    return text + generate_latest(own)


