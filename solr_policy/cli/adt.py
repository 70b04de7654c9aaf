"""``solr-policy adt``: Anomaly Detection Threshold files, signed by an ARO."""

from __future__ import annotations

from pathlib import Path

import click

from solr_policy.cli.acting import Signing, emit_act, signed
from solr_policy.cli.common import Context, emit, governance_call, read_text
from solr_policy.governance.adt import parse_adt, sign_adt


@click.group()
def adt() -> None:
    """Anomaly Detection Threshold files (signed by an ARO)."""


@adt.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The ARO's private key (PEM).")
def adt_sign(file: str, key_file: str) -> None:
    """Write FILE.sig, the ARO's signature over every byte of FILE."""
    try:
        signature = sign_adt(Path(file).read_bytes(), Path(key_file).read_bytes())
    except (ValueError, TypeError) as exc:
        raise click.UsageError(f"cannot sign: {exc}") from None
    Path(file + ".sig").write_bytes(signature)
    emit({"signed": file, "signature": file + ".sig"})


@adt.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--signature", "sig_file", type=click.Path(dir_okay=False), help="Detached signature (default FILE.sig).")
@signed(officer_flag="--aro")
@click.pass_obj
def adt_submit(obj: Context, file: str, sig_file: str | None, signing: Signing) -> None:
    """Submit a signed ADT FILE in a statement signed by the ARO; it replaces the User's current
    file for that Supplier."""
    sig_path = sig_file or file + ".sig"
    if not Path(sig_path).exists():
        raise click.UsageError(f"no signature file {sig_path}")
    text = read_text(file, "FILE")
    governance_call(parse_adt, text.encode("utf-8"), file)  # a malformed file is named with its line before anything is signed
    emit_act(signing.act(obj, "adt.submit", {"file": text, "signature": read_text(sig_path, "--signature").strip()}))


@adt.command("list")
@click.pass_obj
def adt_list(obj: Context) -> None:
    """List ADT files, current and superseded."""
    emit([r.to_json_dict() for r in obj.store.list_adt_files()])
