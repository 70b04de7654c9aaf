"""``solr-policy officer``: governance officers, and each SoLR Party's SRO and AROs."""

from __future__ import annotations

from pathlib import Path

import click

from solr_policy.cli.common import Context, at, emit, governance_call, now_option, reason_option
from solr_policy.governance import officers


@click.group()
def officer() -> None:
    """Governance officers, and each SoLR Party's SRO and AROs."""


@officer.command("register-governance")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--by", help="An existing governance officer (needed once one exists).")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The officer's P-256 public key (PEM).")
@now_option
@click.pass_obj
def officer_register_governance(obj: Context, officer_id: str, name: str, by: str | None, key_file: str, now: str | None) -> None:
    """Register a governance officer (the first one bootstraps the store)."""
    key = Path(key_file).read_bytes()
    record = governance_call(officers.register_governance_officer, obj.store, officer_id, name=name, public_key=key, by=by, at=at(now))
    emit({"done": True, "officer": record.public_json()})


@officer.command("register-sro")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--party", required=True)
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The SRO's public key (PEM).")
@click.option("--by", required=True, help="The governance officer registering the SRO.")
@now_option
@click.pass_obj
def officer_register_sro(obj: Context, officer_id: str, name: str, party: str, key_file: str, by: str, now: str | None) -> None:
    """Register PARTY's Senior Responsible Officer."""
    record = governance_call(officers.register_sro, obj.store, officer_id, name=name, party=party, public_key=Path(key_file).read_bytes(), by=by, at=at(now))
    emit({"done": True, "officer": record.public_json()})


@officer.command("appoint-aro")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--party", required=True)
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The ARO's public key (PEM).")
@click.option("--by", required=True, help="The Party's SRO.")
@now_option
@click.pass_obj
def officer_appoint_aro(obj: Context, officer_id: str, name: str, party: str, key_file: str, by: str, now: str | None) -> None:
    """Appoint an Authorised Responsible Officer of PARTY (by its SRO)."""
    record = governance_call(officers.appoint_aro, obj.store, officer_id, name=name, party=party, public_key=Path(key_file).read_bytes(), by=by, at=at(now))
    emit({"done": True, "officer": record.public_json()})


@officer.command("remove")
@click.argument("officer_id")
@click.option("--by", required=True)
@reason_option
@now_option
@click.pass_obj
def officer_remove(obj: Context, officer_id: str, by: str, reason: str, now: str | None) -> None:
    """Remove an officer (AROs by their SRO; SROs by governance)."""
    record = governance_call(officers.remove_officer, obj.store, officer_id, by=by, reason=reason, at=at(now))
    emit({"done": True, "officer": record.public_json()})


@officer.command("list")
@click.pass_obj
def officer_list(obj: Context) -> None:
    """List officers."""
    emit([o.public_json() for o in obj.store.list_officers()])
