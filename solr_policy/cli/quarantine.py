"""``solr-policy quarantine``: requests held over an ADT threshold (DCC Alert AD1)."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    Context,
    emit,
    governance_call,
    load_policies,
    now_option,
    officer_option,
    parse_now,
    policy_option,
    reason_option,
)
from solr_policy.engine import Engine
from solr_policy.governance import quarantine as held
from solr_policy.records import QuarantineStatus


@click.group()
def quarantine() -> None:
    """Requests held over an ADT threshold (DCC Alert AD1)."""


@quarantine.command("list")
@click.option("--status", type=click.Choice(["held", "released", "discarded"]))
@click.pass_obj
def quarantine_list(obj: Context, status: str | None) -> None:
    """List quarantined requests."""
    items = obj.store.list_quarantine(status=QuarantineStatus(status) if status else None)
    emit([q.to_json_dict() for q in items])


@quarantine.command("release")
@click.argument("item", type=int)
@officer_option
@reason_option
@now_option
@policy_option
@click.pass_obj
def quarantine_release(obj: Context, item: int, officer: str, reason: str, now: str | None, policy_dir: str) -> None:
    """Release a held request: it is decided again without its threshold."""
    engine = Engine(obj.store, load_policies(policy_dir))
    decision = governance_call(held.release, engine, item, officer=officer, reason=reason, now=parse_now(now))
    data = decision.to_json_dict()
    emit({"released": decision.allowed, **{k: data[k] for k in ("outcome", "response_code", "reasons", "request")}})
    sys.exit(EXIT_OK if decision.allowed else EXIT_REFUSED)


@quarantine.command("discard")
@click.argument("item", type=int)
@officer_option
@reason_option
@now_option
@click.pass_obj
def quarantine_discard(obj: Context, item: int, officer: str, reason: str, now: str | None) -> None:
    """Discard a held request."""
    governance_call(held.discard, obj.store, item, officer=officer, reason=reason, now=parse_now(now))
    emit({"done": True, "discarded": item})
