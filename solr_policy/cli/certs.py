"""``solr-policy certs``: SMKI Organisation Certificates in the store.

A certificate is imported on the authority of a trust anchor that issued it (``import``), or
by a governance officer's signed pin (``pin``); anchors are added and removed by two officers;
a status changes by a CRL an anchor signed (``crl import``) or by a signed ``set-status``.
"""

from __future__ import annotations

import base64
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from solr_policy.cli.acting import Signing, checkpoint_if_current, emit_act, signed
from solr_policy.cli.certsync import certs_sync
from solr_policy.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    Context,
    emit,
    governance_call,
    read_input,
    reason_option,
)
from solr_policy.crypto.certs import issuer_key
from solr_policy.governance.certificates import import_certificates, import_crl
from solr_policy.governance.csr import check_csr
from solr_policy.records import SmkiStatus
from solr_policy.serials import parse_serial, select_by_serial


def _status(text: str, param_hint: str) -> SmkiStatus:
    try:
        return SmkiStatus.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def _certificate_pem(path: str) -> str:
    """A certificate file as the PEM text a statement carries (DER files are wrapped, not parsed:
    the act reads the certificate, leniently where a real SMKI one needs it)."""
    data = read_input(path)
    if b"-----BEGIN" in data:
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            raise click.BadParameter(f"{path} is not a PEM file", param_hint="FILE") from None
    lines = base64.encodebytes(data).decode("ascii").replace("\n", "")
    body = "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


@click.group()
def certs() -> None:
    """SMKI Organisation Certificates in the store."""


certs.add_command(certs_sync)


@certs.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--status", default="I", show_default=True, help="SMKI status for newly imported certificates (P, I, N, E, R).")
@click.pass_obj
def certs_import(obj: Context, files: tuple[str, ...], status: str) -> None:
    """Import PEM or DER certificate FILES that a trust anchor issued (logged; no officer needed).
    Others are refused with the reason. Exit 1 if any certificate was refused."""
    smki = _status(status, "--status")
    now = datetime.now(timezone.utc)
    rows = []
    for name in files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            rows.append({"file": name, "imported": False, "reason": {"rule": "cert.file", "code": None, "message": f"{name}: cannot read ({exc.strerror})"}})
            continue
        rows += [r.to_json_dict() for r in import_certificates(obj.store, data, source=name, at=now, status=smki)]
    emit(rows)
    checkpoint_if_current(obj.log_keeper(), now)  # a rollback past an import is then detected
    refused = any(not r["imported"] and not r.get("already_known") for r in rows)
    sys.exit(EXIT_REFUSED if refused else EXIT_OK)


@certs.group("crl")
def certs_crl() -> None:
    """X.509 CRLs signed by a trust anchor."""


@certs_crl.command("import")
@click.argument("file")
@click.pass_obj
def certs_crl_import(obj: Context, file: str) -> None:
    """Revoke what a CRL FILE (PEM or DER) lists, if a trust anchor signed it (logged)."""
    now = datetime.now(timezone.utc)
    result = governance_call(import_crl, obj.store, read_input(file), source=file, at=now)
    emit({"done": True, **result})
    checkpoint_if_current(obj.log_keeper(), now)  # restoring a backup would otherwise un-revoke unnoticed


@certs.command("pin")
@click.argument("file")
@click.option("--status", default="I", show_default=True, help="SMKI status of the pinned certificate.")
@reason_option
@signed()
@click.pass_obj
def certs_pin(obj: Context, file: str, status: str, reason: str, signing: Signing) -> None:
    """Pin one certificate that chains to no trust anchor (a test PKI such as ZAZ1 whose CA is
    not published): a governance officer's signed act; it shows as pinned wherever it appears."""
    params = {"certificate": _certificate_pem(file), "status": _status(status, "--status").value, "reason": reason}
    emit_act(signing.act(obj, "certificate.pin", params))


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
            + ("  pinned" if r.get("pinned") else "")
        )


@certs.command("set-status")
@click.argument("serial")
@click.argument("status")
@click.option("--issuer", help="Issuer DN when the serial alone is ambiguous.")
@reason_option
@signed()
@click.pass_obj
def certs_set_status(obj: Context, serial: str, status: str, issuer: str | None, reason: str, signing: Signing) -> None:
    """Set the SMKI STATUS (P, I, N, E, R or a name) of certificate SERIAL (decimal, 0x1A2B or
    1a:2b:...) by a governance officer's signed act."""
    smki = _status(status, "STATUS")
    try:
        number = parse_serial(serial)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SERIAL") from None
    try:
        wanted = issuer_key(issuer) if issuer else None
    except ValueError as exc:  # the issuer is not a distinguished name
        raise click.BadParameter(str(exc), param_hint="--issuer") from None
    try:
        found = select_by_serial(obj.store.list_certificates(), number, wanted)
    except LookupError as exc:
        raise click.UsageError(exc.args[0]) from None
    params = {"issuer": found.issuer, "serial": found.serial, "status": smki.value, "reason": reason}
    emit_act(signing.act(obj, "certificate.set-status", params))


@certs.group("anchor")
def certs_anchor() -> None:
    """Trust anchors: the SMKI Root and Organisation CA certificates imports must chain to."""


@certs_anchor.command("add")
@click.argument("file")
@signed(four_eyes=True)
@click.pass_obj
def certs_anchor_add(obj: Context, file: str, signing: Signing) -> None:
    """Add the CA certificate FILE as a trust anchor (two governance officers sign)."""
    emit_act(signing.act(obj, "anchor.add", {"certificate": _certificate_pem(file)}))


@certs_anchor.command("remove")
@click.argument("fingerprint")
@reason_option
@signed(four_eyes=True)
@click.pass_obj
def certs_anchor_remove(obj: Context, fingerprint: str, reason: str, signing: Signing) -> None:
    """Remove the trust anchor with SHA-256 FINGERPRINT (two governance officers sign)."""
    emit_act(signing.act(obj, "anchor.remove", {"fingerprint": fingerprint, "reason": reason}))


@certs_anchor.command("list")
@click.pass_obj
def certs_anchor_list(obj: Context) -> None:
    """List the trust anchors."""
    emit([{"fingerprint": a.fingerprint, "subject": a.subject, "added_at": a.added_at.isoformat(), "added_by": a.added_by}
          for a in obj.store.trust_anchors()])


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
