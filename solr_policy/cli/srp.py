"""``solr-policy srp``: Shared Resource Providers and the Suppliers they serve (R7)."""

from __future__ import annotations

import click

from solr_policy.alerts.routing import UnknownParty, register_srp
from solr_policy.cli.common import Context, at, emit, load_policies, now_option, policy_option


@click.group()
def srp() -> None:
    """Shared Resource Providers and the Suppliers they serve (R7)."""


@srp.command("add")
@click.argument("srp_id")
@click.option("--name", required=True)
@click.option("--endpoint", required=True, help="Where its alerts are delivered (URL or queue name).")
@click.option("--serves", multiple=True, required=True, help="Supplier Party id; repeatable.")
@now_option
@policy_option
@click.pass_obj
def srp_add(obj: Context, srp_id: str, name: str, endpoint: str, serves: tuple[str, ...], now: str | None, policy_dir: str) -> None:
    """Register an SRP; alerts waiting for it are routed at once."""
    try:
        retried = register_srp(obj.store, srp_id, name=name, endpoint=endpoint, serves=serves, at=at(now), policies=load_policies(policy_dir))
    except UnknownParty as exc:
        raise click.UsageError(str(exc)) from None
    emit({"done": True, "srp": srp_id, "alerts_routed_now": [d.delivery_id for d in retried if d.status == "routed"]})


@srp.command("list")
@click.pass_obj
def srp_list(obj: Context) -> None:
    """List SRPs."""
    emit([r.to_json_dict() for r in obj.store.list_srps()])
