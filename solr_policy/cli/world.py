"""``solr-policy world``: reference data (Parties, Users, Devices)."""

from __future__ import annotations

import sys

import click

from solr_policy.alerts.routing import AlertRouter
from solr_policy.cli.common import EXIT_REFUSED, Context, emit, load_policies, policy_option
from solr_policy.cli.inventory import import_devices
from solr_policy.world_file import load_world
from solr_policy.yamlio import DataFileError


@click.group()
def world() -> None:
    """Reference data: Parties, Users and Devices (governance state comes by signed act)."""


@world.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@policy_option
@click.pass_obj
def world_load(obj: Context, file: str, policy_dir: str) -> None:
    """Load a scenario FILE (YAML) into the store; loading twice changes nothing."""
    policies = load_policies(policy_dir)
    try:
        counts = load_world(file, obj.store, role_codes=policies.role_codes)
    except DataFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    # Alerts waiting for a recipient nobody knew may be for a User this file names: routed now,
    # not left until someone thinks of `alerts retry` (as an SRP's registration routes its own).
    retried = AlertRouter(obj.store, policies=policies).retry_pending()
    emit({"loaded": file, **counts, "alerts_routed": sum(1 for d in retried if d.status == "routed")})


world.add_command(import_devices)


@world.command("show")
@click.pass_obj
def world_show(obj: Context) -> None:
    """Print the world as JSON."""
    store = obj.store
    emit(
        {
            "parties": [p.model_dump(mode="json") for p in store.list_parties()],
            "users": [u.model_dump(mode="json") for u in store.list_users()],
            "devices": [d.model_dump(mode="json") for d in store.list_devices()],
            "instructions": [i.model_dump(mode="json") for i in store.instructions()],
        }
    )
