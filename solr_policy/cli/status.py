"""``solr-policy status``: an SoLR event at a glance (the view of ``GET /v1/events/{reference}``)."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.common import EXIT_USAGE, Context, emit
from solr_policy.service.events import event_view, format_event


@click.command()
@click.argument("reference", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the view as JSON.")
@click.pass_obj
def status(obj: Context, reference: str | None, as_json: bool) -> None:
    """The instruction REFERENCE (default: the only or newest one), its decisions, held requests, alerts and log."""
    store = obj.store
    if reference is None:
        known = store.instructions()
        if not known:
            click.echo("no instruction in this store", err=True)
            sys.exit(EXIT_USAGE)
        reference = max(known, key=lambda i: i.effective_from).reference
    view = event_view(store, reference)
    if view is None:
        click.echo(f"there is no instruction {reference!r}", err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        emit(view)
    else:
        click.echo(format_event(view))
