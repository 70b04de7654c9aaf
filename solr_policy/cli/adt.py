"""``solr-policy adt``: Anomaly Detection Threshold files, signed by an ARO."""

from __future__ import annotations

from pathlib import Path

import click

from solr_policy.cli.common import Context, at, emit, governance_call, now_option
from solr_policy.governance.adt import sign_adt, submit_adt


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
@click.option("--aro", required=True, help="The submitting ARO's id.")
@now_option
@click.pass_obj
def adt_submit(obj: Context, file: str, sig_file: str | None, aro: str, now: str | None) -> None:
    """Submit a signed ADT FILE; it replaces the User's current file for that Supplier."""
    sig_path = Path(sig_file or file + ".sig")
    if not sig_path.exists():
        raise click.UsageError(f"no signature file {sig_path}")
    result = governance_call(submit_adt, obj.store, Path(file).read_bytes(), sig_path.read_bytes(), aro=aro, at=at(now), source=file)
    emit({"done": True, "adt": result.model_dump(mode="json")})


@adt.command("list")
@click.pass_obj
def adt_list(obj: Context) -> None:
    """List ADT files, current and superseded."""
    emit([r.to_json_dict() for r in obj.store.list_adt_files()])
