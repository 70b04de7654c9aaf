"""The ``solr-policy`` command: a thin front on the library.

Exit status everywhere: 0 success/valid/allow, 1 refused/invalid/reject, 2 usage error or
unreadable input, 3 quarantine. Machine output is JSON on stdout; logs go to stderr.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from solr_policy import __version__, logs
from solr_policy.errors import Refused

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_QUARANTINE = 0, 1, 2, 3


def _emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _read_input(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read {source}: {exc.strerror}") from None


def parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date-time", param_hint="--now") from None
    if when.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-22T10:00:00Z", param_hint="--now")
    return when.astimezone(timezone.utc)


class Context:
    def __init__(self, db: str | None) -> None:
        self.db = db
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from solr_policy.store import open_store

            self._store = open_store(self.db)
        return self._store


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="SOLR_POLICY_DB", type=click.Path(dir_okay=False), help="SQLite database file (default: SOLR_POLICY_DB or ./solr-policy.db).")
@click.option("--log-format", type=click.Choice(["json", "console"]), default=None, help="Log format on stderr.")
@click.version_option(__version__, prog_name="solr-policy")
@click.pass_context
def cli(ctx: click.Context, db: str | None, log_format: str | None) -> None:
    """Policy engine for the SoLR Contingency User Role (SEC modification MP134B)."""
    logs.configure(log_format)
    ctx.obj = Context(db)


# -- certificates ---------------------------------------------------------------------------
@cli.group()
def certs() -> None:
    """SMKI Organisation Certificates in the store."""


@certs.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--status", default="I", show_default=True, help="SMKI status for newly imported certificates (P, I, N, E, R).")
@click.pass_obj
def certs_import(obj: Context, files: tuple[str, ...], status: str) -> None:
    """Import PEM or DER certificate FILES."""
    from solr_policy.crypto.certs import SmkiStatus, read_certificate_file

    try:
        smki = SmkiStatus.parse(status)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--status") from None
    results, failed = [], False
    for name in files:
        try:
            records = read_certificate_file(name)
        except Refused as refusal:
            failed = True
            results.append({"file": name, "imported": False, "reason": refusal.as_dict()})
            continue
        for record in records:
            record = record.model_copy(update={"status": smki})
            added = obj.store.put_certificate(record)
            results.append({"file": name, "imported": added, "already_known": not added, **record.summary()})
    _emit(results)
    sys.exit(EXIT_REFUSED if failed else EXIT_OK)


@certs.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_obj
def certs_list(obj: Context, as_json: bool) -> None:
    """List stored certificates."""
    rows = [r.summary() for r in obj.store.list_certificates()]
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("no certificates")
        return
    header = f"{'EUI-64':16}  {'role':>4} {'role name':14} {'status':11} {'usage':18} {'not after':20}  serial"
    click.echo(header)
    for r in rows:
        click.echo(
            f"{r['subject_eui'] or '-':16}  {r['role'] if r['role'] is not None else '-':>4} {r['role_name']:14} "
            f"{r['status_label']:11} {','.join(r['key_usage']):18} {r['not_after']:20}  {r['serial']} ({r['issuer']})"
        )


@certs.command("set-status")
@click.argument("serial")
@click.argument("status")
@click.option("--issuer", help="Issuer DN when the serial alone is ambiguous.")
@click.pass_obj
def certs_set_status(obj: Context, serial: str, status: str, issuer: str | None) -> None:
    """Set the SMKI STATUS (P, I, N, E, R or a name) of certificate SERIAL."""
    from solr_policy.crypto.certs import SmkiStatus, issuer_key

    try:
        smki = SmkiStatus.parse(status)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="STATUS") from None
    if not serial.isdigit():
        raise click.BadParameter("serial must be decimal", param_hint="SERIAL")
    matches = [c for c in obj.store.list_certificates() if c.serial == int(serial)]
    if issuer:
        matches = [c for c in matches if c.issuer == issuer_key(issuer)]
    if not matches:
        raise click.UsageError(f"no certificate with serial {serial}")
    if len(matches) > 1:
        raise click.UsageError("several issuers use that serial; name one with --issuer")
    obj.store.set_certificate_status(matches[0].issuer, matches[0].serial, smki)
    _emit({"serial": serial, "issuer": matches[0].issuer, "status": smki.value, "status_label": smki.label})


# -- GBCS ----------------------------------------------------------------------------------
@cli.group()
def gbcs() -> None:
    """GBCS payloads."""


@gbcs.command("inspect")
@click.argument("payload")
def gbcs_inspect(payload: str) -> None:
    """Decode the General-Signing header of PAYLOAD (hex or base64; '-' reads stdin)."""
    from solr_policy.gbcs import decode_general_signing, parse_payload_text

    text = sys.stdin.read() if payload == "-" else payload
    try:
        header = decode_general_signing(parse_payload_text(text))
    except Refused as refusal:
        _emit({"valid": False, "reason": refusal.as_dict()})
        sys.exit(EXIT_REFUSED)
    _emit({"valid": True, "header": header.to_json_dict()})


# -- signatures ----------------------------------------------------------------------------
def _schema(schema_dir: str | None):
    if not schema_dir:
        return None
    from solr_policy.duis.xsd import DuisSchema

    try:
        return DuisSchema.from_folder(schema_dir)
    except Exception as exc:  # noqa: BLE001 - any schema loading problem is a usage error here
        raise click.UsageError(f"cannot load the DUIS schema from {schema_dir}: {exc}") from None


@cli.command()
@click.argument("source")
@click.option("--now", help="Decision time (ISO 8601 with zone); default: the current time.")
@click.option("--schema-dir", envvar="SOLR_POLICY_DUIS_XSD", help="Folder with the DUIS XSD; validates against it when given.")
@click.pass_obj
def verify(obj: Context, source: str, now: str | None, schema_dir: str | None) -> None:
    """Verify the XML signature of a DUIS request or response (FILE or '-')."""
    from solr_policy.crypto.verify import Verifier

    raw = _read_input(source)
    when = parse_now(now)
    verifier = Verifier(obj.store, schema=_schema(schema_dir))
    try:
        message = verifier.verify(raw, now=when)
        out: dict[str, object] = {"valid": True, "kind": message.kind, "signer": message.signer.summary()}
        if message.kind == "Request":
            out["request"] = verifier.verify_request(raw, now=when).request.summary()
        if message.notes:
            out["notes"] = list(message.notes)
    except Refused as refusal:
        _emit({"valid": False, "reason": refusal.as_dict()})
        sys.exit(EXIT_REFUSED)
    _emit(out)


@cli.command()
@click.argument("source")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False), help="PEM certificate of that key.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
def sign(source: str, key_file: str, cert_file: str, output: str | None) -> None:
    """Sign a DUIS document (FILE or '-') as a DUIS User does (test and tooling aid)."""
    from solr_policy.crypto.sign import sign_duis

    try:
        signed = sign_duis(_read_input(source), Path(key_file).read_bytes(), Path(cert_file).read_bytes())
    except Exception as exc:  # noqa: BLE001 - bad input files: say so, no traceback
        raise click.UsageError(f"cannot sign: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if output:
        Path(output).write_bytes(signed)
    else:
        sys.stdout.buffer.write(signed)


# -- the world and decisions ------------------------------------------------------------
def _policies(policy_dir: str | None):
    from solr_policy.policy import PolicySet, default_policy_dir
    from solr_policy.yamlio import DataFileError

    try:
        return PolicySet.load_dir(policy_dir or default_policy_dir())
    except DataFileError as exc:
        raise click.UsageError(str(exc)) from None


_policy_option = click.option(
    "--policies", "policy_dir", envvar="SOLR_POLICY_POLICIES", type=click.Path(file_okay=False),
    help="Folder of policy YAML files (default: ./policies or the project's policies/).",
)


@cli.group()
def world() -> None:
    """Parties, Users, Devices, certificates and Authority instructions."""


@world.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@_policy_option
@click.pass_obj
def world_load(obj: Context, file: str, policy_dir: str | None) -> None:
    """Load a scenario FILE (YAML) into the store; loading twice changes nothing."""
    from solr_policy.world_file import load_world
    from solr_policy.yamlio import DataFileError

    policies = _policies(policy_dir)
    try:
        counts = load_world(file, obj.store, role_codes=policies.role_codes)
    except DataFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    _emit({"loaded": file, **counts})


@world.command("show")
@click.pass_obj
def world_show(obj: Context) -> None:
    """Print the world as JSON."""
    store = obj.store
    _emit(
        {
            "parties": [p.model_dump(mode="json") for p in store.list_parties()],
            "users": [u.model_dump(mode="json") for u in store.list_users()],
            "devices": [d.model_dump(mode="json") for d in store.list_devices()],
            "instructions": [i.model_dump(mode="json") for i in store.instructions()],
        }
    )


@cli.command()
@click.argument("source")
@click.option("--now", help="Decision time (ISO 8601 with zone); default: the current time.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option("--schema-dir", envvar="SOLR_POLICY_DUIS_XSD", help="Folder with the DUIS XSD; validates against it when given.")
@_policy_option
@click.pass_obj
def decide(obj: Context, source: str, now: str | None, as_json: bool, schema_dir: str | None, policy_dir: str | None) -> None:
    """Decide a signed DUIS request (FILE or '-'). Exit 0 allow, 1 reject, 3 quarantine."""
    from solr_policy.engine import Engine

    raw = _read_input(source)
    engine = Engine(obj.store, _policies(policy_dir), schema=_schema(schema_dir))
    decision = engine.decide(raw, now=parse_now(now))
    if as_json:
        data = decision.to_json_dict()
        _emit({k: data[k] for k in ("outcome", "response_code", "reasons", "request", "policy", "decided_at")})
    else:
        click.echo(format_decision(decision))
    sys.exit({"allow": EXIT_OK, "reject": EXIT_REFUSED, "quarantine": EXIT_QUARANTINE}[decision.outcome])


def format_decision(decision) -> str:
    request = decision.request or {}
    head = f"{decision.outcome.upper()} ({decision.response_code or 'no DUIS code'})"
    if request:
        head += f"  SRV {request.get('srv')} CV {request.get('command_variant')} from {request.get('originator')} to {request.get('target')}"
    lines = [head]
    for reason in decision.reasons:
        code = f" [{reason.code}]" if reason.code else ""
        lines.append(f"  - {reason.rule}{code}: {reason.message}")
    return "\n".join(lines)


@cli.command()
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Where the demo keeps its database and files (default: a fresh temporary folder).")
def demo(workdir: str | None) -> None:
    """Run the demo SoLR event on the embedded default store."""
    from solr_policy.demo import run_demo

    sys.exit(run_demo(workdir))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
