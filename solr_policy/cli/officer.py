"""``solr-policy officer``: governance officers, and each SoLR Party's SRO and AROs. Every
change is a statement signed by the officer who makes it (``--officer``, ``--key``)."""

from __future__ import annotations

import click

from solr_policy.cli.acting import Signing, emit_act, signed
from solr_policy.cli.common import Context, emit, read_text, reason_option

public_key_option = click.option(
    "--public-key", "public_key_file", required=True, type=click.Path(dir_okay=False),
    help="The officer's P-256 public key (PEM, or a certificate carrying it).",
)


@click.group()
def officer() -> None:
    """Governance officers, and each SoLR Party's SRO and AROs."""


@officer.command("register-governance")
@click.argument("officer_id")
@click.option("--name", required=True)
@public_key_option
@signed(four_eyes=True)
@click.pass_obj
def officer_register_governance(obj: Context, officer_id: str, name: str, public_key_file: str, signing: Signing) -> None:
    """Register another governance officer: signed by one, co-signed by a second (four eyes).
    The first ones are made by ``solr-policy init``."""
    params = {"officer": officer_id, "name": name, "public_key": read_text(public_key_file, "--public-key")}
    emit_act(signing.act(obj, "officer.register-governance", params))


@officer.command("register-sro")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--party", required=True)
@public_key_option
@signed()
@click.pass_obj
def officer_register_sro(obj: Context, officer_id: str, name: str, party: str, public_key_file: str, signing: Signing) -> None:
    """Register PARTY's Senior Responsible Officer (signed by a governance officer)."""
    params = {"officer": officer_id, "name": name, "party": party, "public_key": read_text(public_key_file, "--public-key")}
    emit_act(signing.act(obj, "officer.register-sro", params))


@officer.command("appoint-aro")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--party", required=True)
@public_key_option
@signed()
@click.pass_obj
def officer_appoint_aro(obj: Context, officer_id: str, name: str, party: str, public_key_file: str, signing: Signing) -> None:
    """Appoint an Authorised Responsible Officer of PARTY (signed by its SRO)."""
    params = {"officer": officer_id, "name": name, "party": party, "public_key": read_text(public_key_file, "--public-key")}
    emit_act(signing.act(obj, "officer.appoint-aro", params))


@officer.command("remove")
@click.argument("officer_id")
@reason_option
@signed(four_eyes=True)
@click.pass_obj
def officer_remove(obj: Context, officer_id: str, reason: str, signing: Signing) -> None:
    """Remove an officer: an ARO by its SRO, an SRO by governance, a governance officer by two
    of them (four eyes). A removed ARO's ADT files stop being current."""
    emit_act(signing.act(obj, "officer.remove", {"officer": officer_id, "reason": reason}))


@officer.command("rotate-key")
@click.argument("officer_id")
@public_key_option
@reason_option
@signed()
@click.pass_obj
def officer_rotate_key(obj: Context, officer_id: str, public_key_file: str, reason: str, signing: Signing) -> None:
    """Give an officer a new key: signed with their old key, or by whoever may remove them."""
    params = {"officer": officer_id, "public_key": read_text(public_key_file, "--public-key"), "reason": reason}
    emit_act(signing.act(obj, "officer.rotate-key", params))


@officer.command("list")
@click.pass_obj
def officer_list(obj: Context) -> None:
    """List officers."""
    emit([o.public_json() for o in obj.store.list_officers()])
