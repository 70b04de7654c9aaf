"""``solr-policy certs``: SMKI Organisation Certificates in the store."""

from __future__ import annotations

import sys

import click

from solr_policy.cli.certsync import certs_sync
from solr_policy.cli.common import EXIT_OK, EXIT_REFUSED, Context, emit, read_input
from solr_policy.governance.csr import check_csr
from solr_policy.records import SmkiStatus
from solr_policy.serials import parse_serial
from solr_policy.smki import RefusedFile, import_certificate_files, set_status_by_serial


def _status(text: str, param_hint: str) -> SmkiStatus:
    try:
        return SmkiStatus.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


@click.group()
def certs() -> None:
    """SMKI Organisation Certificates in the store."""


certs.add_command(certs_sync)


@certs.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--status", default="I", show_default=True, help="SMKI status for newly imported certificates (P, I, N, E, R).")
@click.pass_obj
def certs_import(obj: Context, files: tuple[str, ...], status: str) -> None:
    """Import PEM or DER certificate FILES."""
    results = import_certificate_files(obj.store, files, _status(status, "--status"))
    emit([
        {"file": r.file, "imported": False, "reason": r.refusal.as_dict()} if isinstance(r, RefusedFile)
        else {"file": r.file, "imported": r.added, "already_known": not r.added, **r.record.summary()}
        for r in results
    ])
    sys.exit(EXIT_REFUSED if any(isinstance(r, RefusedFile) for r in results) else EXIT_OK)


@certs.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_obj
def certs_list(obj: Context, as_json: bool) -> None:
    """List stored certificates."""
    records = obj.store.list_certificates()
    if as_json:
        emit([record.summary() for record in records])
        return
    if not records:
        click.echo("no certificates")
        return
    header = f"{'EUI-64':16}  {'role':>4} {'role name':14} {'status':11} {'usage':18} {'not after':20}  serial"
    click.echo(header)
    for record in records:
        r = record.summary()
        click.echo(
            f"{r['subject_eui'] or '-':16}  {r['role'] if r['role'] is not None else '-':>4} {r['role_name']:14} "
            f"{r['status_label']:11} {','.join(record.key_usage):18} {r['not_after']:20}  {r['serial']} ({r['issuer']})"
        )


@certs.command("set-status")
@click.argument("serial")
@click.argument("status")
@click.option("--issuer", help="Issuer DN when the serial alone is ambiguous.")
@click.pass_obj
def certs_set_status(obj: Context, serial: str, status: str, issuer: str | None) -> None:
    """Set the SMKI STATUS (P, I, N, E, R or a name) of certificate SERIAL (decimal, 0x1A2B or 1a:2b:...)."""
    smki = _status(status, "STATUS")
    try:
        number = parse_serial(serial)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SERIAL") from None
    try:
        found = set_status_by_serial(obj.store, number, smki, issuer)
    except LookupError as exc:
        raise click.UsageError(exc.args[0]) from None
    except ValueError as exc:  # the issuer is not a distinguished name
        raise click.BadParameter(str(exc), param_hint="--issuer") from None
    emit({"serial": str(found.serial), "issuer": found.issuer, "status": smki.value, "status_label": smki.label})


@certs.command("check-csr")
@click.argument("file")
@click.option("--party", required=True, help="The Party asking for the certificate.")
@click.option("--role", required=True, help="That Party's User Role code (the gate decides for SC).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.pass_obj
def certs_check_csr(obj: Context, file: str, party: str, role: str, as_json: bool) -> None:
    """MP134B R2: may PARTY subscribe for the certificate a CSR FILE (PEM/DER, '-') asks for?

    Exit 0 allowed, 1 refused, 2 when FILE cannot be read.
    """
    verdict = check_csr(read_input(file), party=party, role=role, store=obj.store, source=file)
    if as_json:
        emit(verdict.to_json_dict())
    else:
        click.echo(f"{'ALLOWED' if verdict.allowed else 'REFUSED'} {verdict.rule}: {verdict.message}")
        for name, value in verdict.facts().items():
            click.echo(f"  {name}: {', '.join(value) if isinstance(value, list) else value}")
    sys.exit(EXIT_OK if verdict.allowed else EXIT_REFUSED)
