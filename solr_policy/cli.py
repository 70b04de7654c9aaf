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
from solr_policy.errors import Refused, StoreUnavailable
from solr_policy.settings import Settings, SettingsError

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


def parse_now(text: str | None, option: str = "--now") -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date-time", param_hint=option) from None
    if when.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-22T10:00:00Z", param_hint=option)
    return when.astimezone(timezone.utc)


class Context:
    """What every command gets: the one ``Settings`` of this run, and the store it names."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from solr_policy.store import open_store

            self._store = open_store(self.settings.db, synchronous=self.settings.synchronous)
        return self._store


def _from_settings(name: str):
    """Default of a command's own option: the value in the group's ``Settings``."""

    def fill(ctx: click.Context, _param: click.Parameter, value: object) -> object:
        if value is not None:
            return value
        context = ctx.find_object(Context)  # None only when a command is invoked without the group
        return getattr(context.settings if context is not None else Settings.load(), name)

    return fill


class StoreFault(click.ClickException):
    exit_code = EXIT_USAGE


class _Commands(click.Group):
    """Any command that meets a broken store ends with one line and exit 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreUnavailable as fault:
            raise StoreFault(fault.message) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=False), metavar="FILE|URL", help="SQLite database file or postgresql:// URL (default: SOLR_POLICY_DB or ./solr-policy.db).")
@click.option("--policies", "policy_dir", type=click.Path(file_okay=False), help="Folder of policy YAML files (default: SOLR_POLICY_POLICIES or the shipped policies).")
@click.option("--schema-dir", help="Folder with the DUIS XSD; validates against it when given (default: SOLR_POLICY_DUIS_XSD).")
@click.option("--log-format", metavar="json|console", help="Log format on stderr (default: SOLR_POLICY_LOG_FORMAT, else console at a terminal, JSON otherwise).")
@click.option("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: SOLR_POLICY_LOG_LEVEL or INFO).")
@click.option("--synchronous", metavar="FULL|NORMAL", help="SQLite durability (default: SOLR_POLICY_SYNCHRONOUS or FULL; see README).")
@click.version_option(__version__, prog_name="solr-policy")
@click.pass_context
def cli(ctx: click.Context, db: str | None, policy_dir: str | None, schema_dir: str | None, log_format: str | None, log_level: str | None, synchronous: str | None) -> None:
    """Policy engine for the SoLR Contingency User Role (SEC modification MP134B)."""
    try:
        settings = Settings.load(
            db=db, policies=policy_dir, duis_xsd=schema_dir, log_format=log_format, log_level=log_level, synchronous=synchronous
        )
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_format, settings.log_level)
    ctx.obj = Context(settings)


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
    from solr_policy.crypto.certs import read_certificate_file
    from solr_policy.records import SmkiStatus

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
    """Set the SMKI STATUS (P, I, N, E, R or a name) of certificate SERIAL (decimal, 0x1A2B or 1a:2b:...)."""
    from solr_policy.crypto.certs import issuer_key
    from solr_policy.records import SmkiStatus
    from solr_policy.serials import parse_serial, select_by_serial

    try:
        smki = SmkiStatus.parse(status)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="STATUS") from None
    try:
        number = parse_serial(serial)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SERIAL") from None
    try:
        found = select_by_serial(obj.store.list_certificates(), number, issuer_key(issuer) if issuer else None)
    except LookupError as exc:
        raise click.UsageError(exc.args[0]) from None
    obj.store.set_certificate_status(found.issuer, found.serial, smki)
    _emit({"serial": str(found.serial), "issuer": found.issuer, "status": smki.value, "status_label": smki.label})


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
    from solr_policy.governance.csr import check_csr

    verdict = check_csr(_read_input(file), party=party, role=role, store=obj.store, source=file)
    if as_json:
        _emit(verdict.to_json_dict())
    else:
        click.echo(f"{'ALLOWED' if verdict.allowed else 'REFUSED'} {verdict.rule}: {verdict.message}")
        for name, value in verdict.facts().items():
            click.echo(f"  {name}: {', '.join(value) if isinstance(value, list) else value}")
    sys.exit(EXIT_OK if verdict.allowed else EXIT_REFUSED)


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
@click.option("--schema-dir", callback=_from_settings("duis_xsd"), help="Folder with the DUIS XSD; validates against it when given.")
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
def _policies(policy_dir: str | Path | None):
    from solr_policy.policy import PolicySet, default_policy_dir
    from solr_policy.yamlio import DataFileError

    try:
        return PolicySet.load_dir(policy_dir or default_policy_dir())
    except DataFileError as exc:
        raise click.UsageError(str(exc)) from None


_policy_option = click.option(
    "--policies", "policy_dir", type=click.Path(file_okay=False), callback=_from_settings("policies"),
    help="Folder of policy YAML files (default: the top-level --policies, SOLR_POLICY_POLICIES or the shipped ones).",
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
    if counts.get("srps"):
        # A newly registered SRP may be what waiting alerts were waiting for.
        from solr_policy.alerts.routing import AlertRouter

        AlertRouter(obj.store, policies=policies).retry()
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
@click.option("--dry-run", is_flag=True, help="Say what the decision would be, changing nothing (no counter, no audit entry).")
@click.option("--schema-dir", callback=_from_settings("duis_xsd"), help="Folder with the DUIS XSD; validates against it when given.")
@_policy_option
@click.pass_obj
def decide(obj: Context, source: str, now: str | None, as_json: bool, dry_run: bool, schema_dir: str | None, policy_dir: str | None) -> None:
    """Decide a signed DUIS request (FILE or '-'). Exit 0 allow, 1 reject, 3 quarantine."""
    from solr_policy.engine import Engine

    raw = _read_input(source)
    engine = Engine(obj.store, _policies(policy_dir), schema=_schema(schema_dir))
    decision = (engine.evaluate if dry_run else engine.decide)(raw, now=parse_now(now))
    if as_json:
        _emit({**decision.record(), "decided_at": decision.to_json_dict()["decided_at"], "dry_run": dry_run})
    else:
        click.echo(format_decision(decision) + ("\n  (dry run: nothing was recorded)" if dry_run else ""))
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

# -- governance ----------------------------------------------------------------------------
def _at(now: str | None) -> datetime:
    return parse_now(now) or datetime.now(timezone.utc)


def _governance_call(fn, *args, **kwargs):
    from solr_policy.errors import GovernanceRefused

    try:
        return fn(*args, **kwargs)
    except GovernanceRefused as refusal:
        _emit({"done": False, "reason": refusal.as_dict()})
        sys.exit(EXIT_REFUSED)


_now_option = click.option("--now", help="When the step happens (ISO 8601 with zone); default: now.")
_officer_option = click.option("--officer", required=True, help="The officer taking this step (their id).")
_reason_option = click.option("--reason", required=True, help="Why (kept in the audit trail).")


@cli.group()
def instruction() -> None:
    """Authority instructions: propose, approve (another officer), suspend, resume, end."""


@instruction.command("propose")
@click.argument("reference")
@click.option("--failed-supplier", required=True, help="Party id of the failed Supplier.")
@click.option("--solr-party", required=True, help="Party id of the SoLR Party.")
@click.option("--from", "effective_from", required=True, help="Effective from (ISO 8601 with zone).")
@click.option("--until", "effective_until", help="Effective until (ISO 8601 with zone); open-ended if omitted.")
@click.option("--device", "devices", multiple=True, help="Limit to these Devices (EUI-64); repeatable.")
@_officer_option
@_reason_option
@_now_option
@click.pass_obj
def instruction_propose(obj, reference, failed_supplier, solr_party, effective_from, effective_until, devices, officer, reason, now):
    """Propose instruction REFERENCE (it needs another officer's approval)."""
    from pydantic import ValidationError

    from solr_policy.governance import instructions
    from solr_policy.world import Instruction

    try:
        proposal = Instruction(
            reference=reference,
            failed_supplier=failed_supplier,
            solr_party=solr_party,
            effective_from=parse_now(effective_from, "--from"),
            effective_until=parse_now(effective_until, "--until"),
            scope=list(devices) or None,
        )
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(str(exc).splitlines()[0]) from None
    result = _governance_call(instructions.propose, obj.store, proposal, officer=officer, reason=reason, at=_at(now))
    _emit({"done": True, "instruction": result.model_dump(mode="json")})


def _transition_command(action: str, doc: str):
    @instruction.command(action, help=doc)
    @click.argument("reference")
    @_officer_option
    @_reason_option
    @_now_option
    @click.pass_obj
    def command(obj, reference, officer, reason, now):
        from solr_policy.governance import instructions

        result = _governance_call(instructions.transition, obj.store, reference, action, officer=officer, reason=reason, at=_at(now))
        _emit({"done": True, "instruction": result.model_dump(mode="json")})

    return command


for _action, _doc in (
    ("approve", "Approve a proposed instruction (four eyes: not its proposer). It is active from its start."),
    ("suspend", "Suspend an active instruction: requests are refused until it is resumed."),
    ("resume", "Resume a suspended instruction."),
    ("end", "End an instruction for good."),
):
    _transition_command(_action, _doc)


@instruction.command("list")
@click.pass_obj
def instruction_list(obj) -> None:
    """List instructions."""
    rows = obj.store.instructions()
    if not rows:
        click.echo("no instructions")
    for i in rows:
        until = i.effective_until.isoformat() if i.effective_until else "open-ended"
        click.echo(f"{i.reference:24} {i.status.value:9} failed {i.failed_supplier:16} SoLR {i.solr_party:16} {i.effective_from.isoformat()} .. {until}"
                   f"  proposed by {i.proposed_by or '-'}, approved by {i.approved_by or '-'}")


@instruction.command("show")
@click.argument("reference")
@click.pass_obj
def instruction_show(obj, reference) -> None:
    """Show an instruction and its history."""
    found = obj.store.get_instruction(reference)
    if found is None:
        raise click.UsageError(f"no instruction {reference}")
    _emit({"instruction": found.model_dump(mode="json"), "history": [e.to_json_dict() for e in obj.store.instruction_events(reference)]})


@cli.group()
def officer() -> None:
    """Governance officers, and each SoLR Party's SRO and AROs."""


@officer.command("register-governance")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--by", help="An existing governance officer (needed once one exists).")
@_now_option
@click.pass_obj
def officer_register_governance(obj, officer_id, name, by, now):
    """Register a governance officer (the first one bootstraps the store)."""
    from solr_policy.governance import officers

    record = _governance_call(officers.register_governance_officer, obj.store, officer_id, name=name, by=by, at=_at(now))
    _emit({"done": True, "officer": record.public_json()})


@officer.command("register-sro")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--party", required=True)
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The SRO's public key (PEM).")
@click.option("--by", required=True, help="The governance officer registering the SRO.")
@_now_option
@click.pass_obj
def officer_register_sro(obj, officer_id, name, party, key_file, by, now):
    """Register PARTY's Senior Responsible Officer."""
    from solr_policy.governance import officers

    record = _governance_call(officers.register_sro, obj.store, officer_id, name=name, party=party, public_key=Path(key_file).read_bytes(), by=by, at=_at(now))
    _emit({"done": True, "officer": record.public_json()})


@officer.command("appoint-aro")
@click.argument("officer_id")
@click.option("--name", required=True)
@click.option("--party", required=True)
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The ARO's public key (PEM).")
@click.option("--by", required=True, help="The Party's SRO.")
@_now_option
@click.pass_obj
def officer_appoint_aro(obj, officer_id, name, party, key_file, by, now):
    """Appoint an Authorised Responsible Officer of PARTY (by its SRO)."""
    from solr_policy.governance import officers

    record = _governance_call(officers.appoint_aro, obj.store, officer_id, name=name, party=party, public_key=Path(key_file).read_bytes(), by=by, at=_at(now))
    _emit({"done": True, "officer": record.public_json()})


@officer.command("remove")
@click.argument("officer_id")
@click.option("--by", required=True)
@_reason_option
@_now_option
@click.pass_obj
def officer_remove(obj, officer_id, by, reason, now):
    """Remove an officer (AROs by their SRO; SROs by governance)."""
    from solr_policy.governance import officers

    record = _governance_call(officers.remove_officer, obj.store, officer_id, by=by, reason=reason, at=_at(now))
    _emit({"done": True, "officer": record.public_json()})


@officer.command("list")
@click.pass_obj
def officer_list(obj):
    """List officers."""
    _emit([o.public_json() for o in obj.store.list_officers()])


@cli.group()
def adt() -> None:
    """Anomaly Detection Threshold files (signed by an ARO)."""


@adt.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="The ARO's private key (PEM).")
def adt_sign(file, key_file):
    """Write FILE.sig, the ARO's signature over every byte of FILE."""
    from solr_policy.governance.adt import sign_adt

    try:
        signature = sign_adt(Path(file).read_bytes(), Path(key_file).read_bytes())
    except (ValueError, TypeError) as exc:
        raise click.UsageError(f"cannot sign: {exc}") from None
    Path(file + ".sig").write_bytes(signature)
    _emit({"signed": file, "signature": file + ".sig"})


@adt.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--signature", "sig_file", type=click.Path(dir_okay=False), help="Detached signature (default FILE.sig).")
@click.option("--aro", required=True, help="The submitting ARO's id.")
@_now_option
@click.pass_obj
def adt_submit(obj, file, sig_file, aro, now):
    """Submit a signed ADT FILE; it replaces the User's current file for that Supplier."""
    from solr_policy.governance.adt import submit_adt

    sig_path = Path(sig_file or file + ".sig")
    if not sig_path.exists():
        raise click.UsageError(f"no signature file {sig_path}")
    result = _governance_call(submit_adt, obj.store, Path(file).read_bytes(), sig_path.read_bytes(), aro=aro, at=_at(now), source=file)
    _emit({"done": True, "adt": result.model_dump(mode="json")})


@adt.command("list")
@click.pass_obj
def adt_list(obj):
    """List ADT files, current and superseded."""
    _emit([r.to_json_dict() for r in obj.store.list_adt_files()])


@cli.group()
def quarantine() -> None:
    """Requests held over an ADT threshold (DCC Alert AD1)."""


@quarantine.command("list")
@click.option("--status", type=click.Choice(["held", "released", "discarded"]))
@click.pass_obj
def quarantine_list(obj, status):
    """List quarantined requests."""
    from solr_policy.records import QuarantineStatus

    items = obj.store.list_quarantine(status=QuarantineStatus(status) if status else None)
    _emit([q.to_json_dict() for q in items])


@quarantine.command("release")
@click.argument("item", type=int)
@_officer_option
@_reason_option
@_now_option
@_policy_option
@click.pass_obj
def quarantine_release(obj, item, officer, reason, now, policy_dir):
    """Release a held request: it is decided again without its threshold."""
    from solr_policy.engine import Engine
    from solr_policy.governance import quarantine as q

    engine = Engine(obj.store, _policies(policy_dir))
    decision = _governance_call(q.release, engine, item, officer=officer, reason=reason, now=parse_now(now))
    data = decision.to_json_dict()
    _emit({"released": decision.allowed, **{k: data[k] for k in ("outcome", "response_code", "reasons", "request")}})
    sys.exit(EXIT_OK if decision.allowed else EXIT_REFUSED)


@quarantine.command("discard")
@click.argument("item", type=int)
@_officer_option
@_reason_option
@_now_option
@click.pass_obj
def quarantine_discard(obj, item, officer, reason, now):
    """Discard a held request."""
    from solr_policy.governance import quarantine as q

    _governance_call(q.discard, obj.store, item, officer=officer, reason=reason, now=parse_now(now))
    _emit({"done": True, "discarded": item})


@cli.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj):
    """Prove the chain intact, or name the first broken entry (exit 1)."""
    check = obj.store.verify_audit()
    _emit(check.to_json_dict())
    sys.exit(EXIT_OK if check.intact else EXIT_REFUSED)


@audit.command("show")
@click.option("--instruction")
@click.option("--officer", help="Entries by this actor (officer or User).")
@click.option("--device", help="Device EUI-64.")
@click.option("--kind", help="e.g. decision, instruction.approve, adt.submit")
@click.option("--since", help="ISO 8601 with zone.")
@click.option("--until", help="ISO 8601 with zone.")
@click.option("--limit", type=int)
@click.pass_obj
def audit_show(obj, instruction, officer, device, kind, since, until, limit):
    """Show audit entries, filtered."""
    from solr_policy.eui import parse_eui64

    if device:
        try:
            device = parse_eui64(device)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--device") from None
    rows = obj.store.audit_entries(
        kind=kind, actor=officer, device=device, instruction=instruction, since=parse_now(since, "--since"), until=parse_now(until, "--until"), limit=limit
    )
    _emit([e.to_json_dict() for e in rows])


@cli.group()
def srp() -> None:
    """Shared Resource Providers and the Suppliers they serve (R7)."""


@srp.command("add")
@click.argument("srp_id")
@click.option("--name", required=True)
@click.option("--endpoint", required=True, help="Where its alerts are delivered (URL or queue name).")
@click.option("--serves", multiple=True, required=True, help="Supplier Party id; repeatable.")
@_now_option
@_policy_option
@click.pass_obj
def srp_add(obj, srp_id, name, endpoint, serves, now, policy_dir):
    """Register an SRP; alerts waiting for it are routed at once."""
    from solr_policy.alerts.routing import AlertRouter

    unknown = [s for s in serves if obj.store.get_party(s) is None]
    if unknown:
        raise click.UsageError(f"unknown Party: {', '.join(unknown)}")
    at = _at(now)
    with obj.store.transaction():
        obj.store.put_srp(srp_id, name=name, endpoint=endpoint, serves=list(serves))
        obj.store.append_audit("srp.add", {"srp": srp_id, "name": name, "endpoint": endpoint, "serves": list(serves)}, at=at)
    retried = AlertRouter(obj.store, policies=_policies(policy_dir)).retry_pending(now=at)
    _emit({"done": True, "srp": srp_id, "alerts_routed_now": [d.delivery_id for d in retried if d.status == "routed"]})


@srp.command("list")
@click.pass_obj
def srp_list(obj):
    """List SRPs."""
    _emit([r.to_json_dict() for r in obj.store.list_srps()])


@cli.group()
def alerts() -> None:
    """DCC and Device Alerts: routing, the pending queue."""


@alerts.command("route")
@click.argument("source")
@_now_option
@click.option("--schema-dir", callback=_from_settings("duis_xsd"), help="Folder with the DUIS XSD; validates against it when given.")
@_policy_option
@click.pass_obj
def alerts_route(obj, source, now, schema_dir, policy_dir):
    """Route a signed alert (FILE or '-'); prints the delivery as JSON. Exit 0 routed, 1 refused, 3 pending."""
    from solr_policy.alerts.routing import AlertRouter

    router = AlertRouter(obj.store, policies=_policies(policy_dir), schema=_schema(schema_dir))
    delivery = router.route(_read_input(source), now=parse_now(now))
    _emit(delivery.model_dump(mode="json"))
    sys.exit({"routed": EXIT_OK, "refused": EXIT_REFUSED, "pending": EXIT_QUARANTINE}[delivery.status])


@alerts.command("pending")
@click.pass_obj
def alerts_pending(obj):
    """Alerts waiting to be routed, with the reason."""
    from solr_policy.records import AlertStatus

    _emit([d.to_json_dict() for d in obj.store.alert_deliveries(status=AlertStatus.PENDING)])


@alerts.command("retry")
@click.option("--refused", is_flag=True, help="Also check again the alerts refused earlier (e.g. after importing a DCC certificate).")
@_now_option
@_policy_option
@click.pass_obj
def alerts_retry(obj, refused, now, policy_dir):
    """Route the pending alerts again."""
    from solr_policy.alerts.routing import AlertRouter

    results = AlertRouter(obj.store, policies=_policies(policy_dir)).retry(now=parse_now(now), refused=refused)
    _emit([d.model_dump(mode="json") for d in results])


@alerts.command("list")
@click.pass_obj
def alerts_list(obj):
    """Every alert received, with where it went."""
    _emit([d.to_json_dict() for d in obj.store.alert_deliveries()])


@cli.group()
def spec() -> None:
    """The living specification (Gherkin features) for SECAS."""


@spec.command("report")
@click.option("--out", "out_dir", default="out/spec", show_default=True, type=click.Path(file_okay=False), help="Folder for spec-report.html and spec-report.md.")
@click.option("--from-json", "cucumber_json", type=click.Path(exists=True, dir_okay=False), help="Use this cucumber JSON instead of running the features.")
def spec_report(out_dir, cucumber_json):
    """Run the features and write the requirements report (HTML + Markdown). Exit 1 if a requirement is not proven."""
    from solr_policy.spec_report import write_report

    page, statuses = write_report(Path(out_dir), cucumber_json=Path(cucumber_json) if cucumber_json else None)
    for status in statuses.values():
        click.echo(f"{status.code}  {status.state:5}  {status.passing}/{len(status.scenarios)} scenarios passing")
    click.echo(f"report: {page}")
    sys.exit(EXIT_OK if all(s.state == "green" for s in statuses.values()) else EXIT_REFUSED)


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


@cli.command("rules")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.option("--markdown", is_flag=True, help="The Markdown table the README shows.")
def rules_command(as_json: bool, markdown: bool) -> None:
    """List the decision rules in pipeline order: id, requirement, DUIS code, what each refuses."""
    from solr_policy.rules import RULES, markdown_table

    if markdown:
        click.echo(markdown_table(), nl=False)
    elif as_json:
        _emit([{"rule": r.id, "requirement": r.requirement, "code": r.code, "refuses": r.summary} for r in RULES])
    else:
        for r in RULES:
            click.echo(f"{r.id:36} {r.requirement}  {r.code or '-':4} {r.summary}")
