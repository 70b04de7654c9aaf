"""``solr-policy audit``: the hash-chained audit trail."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.common import EXIT_OK, EXIT_REFUSED, Context, emit, parse_now
from solr_policy.eui import parse_eui64


@click.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Context) -> None:
    """Prove the chain intact, or name the first broken entry (exit 1)."""
    check = obj.store.verify_audit()
    emit(check.to_json_dict())
    sys.exit(EXIT_OK if check.intact else EXIT_REFUSED)


@audit.command("show")
@click.option("--instruction")
@click.option("--officer", help="Entries by this actor (officer or User).")
@click.option("--device", help="Device EUI-64.")
@click.option("--kind", help="e.g. decision, instruction.approve, adt.submit")
@click.option("--since", help="ISO 8601 with zone.")
@click.option("--until", help="ISO 8601 with zone.")
@click.option("--limit", type=int)
@click.pass_obj
def audit_show(
    obj: Context,
    instruction: str | None,
    officer: str | None,
    device: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
) -> None:
    """Show audit entries, filtered."""
    if device:
        try:
            device = parse_eui64(device)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--device") from None
    rows = obj.store.audit_entries(
        kind=kind, actor=officer, device=device, instruction=instruction, since=parse_now(since, "--since"), until=parse_now(until, "--until"), limit=limit
    )
    emit([e.to_json_dict() for e in rows])
