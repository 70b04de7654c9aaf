"""``solr-policy alerts``: DCC and Device Alerts, their routing and the pending queue."""

from __future__ import annotations

import sys

import click

from solr_policy.alerts.routing import AlertRouter
from solr_policy.cli.common import (
    EXIT_OK,
    EXIT_QUARANTINE,
    EXIT_REFUSED,
    Context,
    emit,
    load_policies,
    load_schema,
    now_option,
    parse_now,
    policy_option,
    read_input,
    schema_option,
)
from solr_policy.records import AlertStatus

# A pending alert waits (exit 3), like a quarantined request; a duplicate was recorded before (0).
ROUTE_EXIT = {"routed": EXIT_OK, "duplicate": EXIT_OK, "refused": EXIT_REFUSED, "pending": EXIT_QUARANTINE}


@click.group()
def alerts() -> None:
    """DCC and Device Alerts: routing, the pending queue."""


@alerts.command("route")
@click.argument("source")
@now_option
@schema_option
@policy_option
@click.pass_obj
def alerts_route(obj: Context, source: str, now: str | None, schema_dir: str | None, policy_dir: str) -> None:
    """Route a signed alert (FILE or '-'); prints the delivery as JSON. Exit 0 routed (or already recorded), 1 refused, 3 pending."""
    router = AlertRouter(obj.store, policies=load_policies(policy_dir), schema=load_schema(schema_dir))
    delivery = router.route(read_input(source), now=parse_now(now))
    emit(delivery.model_dump(mode="json"))
    sys.exit(ROUTE_EXIT[delivery.status])


@alerts.command("pending")
@click.pass_obj
def alerts_pending(obj: Context) -> None:
    """Alerts waiting to be routed, with the reason."""
    emit([d.to_json_dict() for d in obj.store.alert_deliveries(status=AlertStatus.PENDING)])


@alerts.command("retry")
@click.option("--refused", is_flag=True, help="Also check again the alerts refused earlier (e.g. after importing a DCC certificate).")
@now_option
@schema_option
@policy_option
@click.pass_obj
def alerts_retry(obj: Context, refused: bool, now: str | None, schema_dir: str | None, policy_dir: str) -> None:
    """Route the pending alerts again."""
    # The schema in force for `route` holds here too: a refused alert checked again is checked alike.
    router = AlertRouter(obj.store, policies=load_policies(policy_dir), schema=load_schema(schema_dir))
    results = router.retry(now=parse_now(now), refused=refused)
    emit([d.model_dump(mode="json") for d in results])


@alerts.command("list")
@click.pass_obj
def alerts_list(obj: Context) -> None:
    """Every alert received, with where it went."""
    emit([d.to_json_dict() for d in obj.store.alert_deliveries()])
