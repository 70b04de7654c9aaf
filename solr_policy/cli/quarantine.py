"""``solr-policy quarantine``: requests held over an ADT threshold (DCC Alert AD1)."""

from __future__ import annotations

from pathlib import Path

import click

from solr_policy.cli.acting import Signing, emit_act, signed
from solr_policy.cli.common import Context, emit, governance_call, policy_option, read_text, reason_option
from solr_policy.cli.decide import decision_engine
from solr_policy.governance.exit_quarantine import parse_exit_file
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
@reason_option
@signed()
@policy_option
@click.pass_obj
def quarantine_release(obj: Context, item: int, reason: str, signing: Signing, policy_dir: str) -> None:
    """Release a held request (an ARO of its User's Party, or governance): it is decided again
    without its threshold. Exit 0 released, 1 refused (it stays held)."""
    emit_act(signing.act(obj, "quarantine.release", {"item": item, "reason": reason}, engine=decision_engine(obj, policy_dir)))


@quarantine.command("discard")
@click.argument("item", type=int)
@reason_option
@signed()
@click.pass_obj
def quarantine_discard(obj: Context, item: int, reason: str, signing: Signing) -> None:
    """Discard a held request."""
    emit_act(signing.act(obj, "quarantine.discard", {"item": item, "reason": reason}))


@quarantine.command("exit-file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--signature", "sig_file", type=click.Path(dir_okay=False), help="Detached signature (default FILE.sig, made by `adt sign`).")
@signed(officer_flag="--aro")
@policy_option
@click.pass_obj
def quarantine_exit_file(obj: Context, file: str, sig_file: str | None, signing: Signing, policy_dir: str) -> None:
    """Apply an Exit Quarantine FILE (release or delete held requests in bulk), signed by an ARO
    of the Party: all or nothing. Exit 0 applied, 1 refused (nothing changed)."""
    sig_path = sig_file or file + ".sig"
    if not Path(sig_path).exists():
        raise click.UsageError(f"no signature file {sig_path}")
    text = read_text(file, "FILE")
    governance_call(parse_exit_file, text.encode("utf-8"), file)  # a malformed file is named before anything is signed
    params = {"file": text, "signature": read_text(sig_path, "--signature").strip()}
    emit_act(signing.act(obj, "quarantine.exit-file", params, engine=decision_engine(obj, policy_dir)))
