"""``solr-policy srp``: Shared Resource Providers and the Suppliers they serve (R7)."""

from __future__ import annotations

import click

from solr_policy.alerts.routing import AlertRouter
from solr_policy.cli.acting import Signing, emit_act, signed
from solr_policy.cli.common import Context, emit, load_policies, policy_option


@click.group()
def srp() -> None:
    """Shared Resource Providers and the Suppliers they serve (R7)."""


@srp.command("add")
@click.argument("srp_id")
@click.option("--name", required=True)
@click.option("--endpoint", required=True, help="Where its alerts are delivered (an https:// URL).")
@click.option("--serves", multiple=True, required=True, help="Supplier Party id; repeatable.")
@signed()
@policy_option
@click.pass_obj
def srp_add(obj: Context, srp_id: str, name: str, endpoint: str, serves: tuple[str, ...], signing: Signing, policy_dir: str) -> None:
    """Register (or update) an SRP, signed by a governance officer; alerts waiting for it are
    routed at once."""
    params = {"srp": srp_id, "name": name, "endpoint": endpoint, "serves": list(serves)}
    router = AlertRouter(obj.store, policies=load_policies(policy_dir))  # routes the alerts waiting for this SRP
    emit_act(signing.act(obj, "srp.register", params, router=router))


@srp.command("list")
@click.pass_obj
def srp_list(obj: Context) -> None:
    """List SRPs."""
    emit([r.to_json_dict() for r in obj.store.list_srps()])
