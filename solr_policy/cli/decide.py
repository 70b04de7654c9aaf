"""``solr-policy decide``, ``verify`` and ``sign``: signed DUIS messages."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from cryptography import x509

from solr_policy.cli.acting import checkpoint_if_current
from solr_policy.cli.batch import run_batch
from solr_policy.cli.common import (
    EXIT_OK,
    EXIT_QUARANTINE,
    EXIT_REFUSED,
    Context,
    emit,
    load_policies,
    load_schema,
    parse_now,
    policy_option,
    read_input,
    refuse,
    schema_option,
)
from solr_policy.crypto.sign import load_private_key, sign_duis
from solr_policy.crypto.verify import Verifier
from solr_policy.decision import Decision
from solr_policy.engine import Engine
from solr_policy.errors import Refused
from solr_policy.service.config import MAX_REQUEST_BYTES


def decision_engine(obj: Context, policy_dir: str | Path, schema_dir: str | Path | None = None) -> Engine:
    """The engine on the command's store and its log: it decides nothing while the store is
    behind its newest checkpoint."""
    return Engine(obj.store, load_policies(policy_dir), schema=load_schema(schema_dir), audit_log=obj.log_keeper())


DECISION_EXIT = {"allow": EXIT_OK, "reject": EXIT_REFUSED, "delete": EXIT_REFUSED, "quarantine": EXIT_QUARANTINE}


@click.command()
@click.argument("source", required=False)
@click.option("--now", help="Decision time (ISO 8601 with zone); default: the current time.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option("--dry-run", is_flag=True, help="Say what the decision would be, changing nothing (no counter, no audit entry).")
@click.option("--batch", "batch", metavar="PATH", help="Decide many: a folder, a file of base64 requests one per line, or '-'. Prints a JSON summary.")
@click.option("--group", default=256, show_default=True, type=click.IntRange(1, 10_000), help="With --batch: decisions per transaction.")
@click.option("--workers", default=min(64, os.cpu_count() or 1), show_default="the number of CPUs", type=click.IntRange(1, 64),
              help="With --batch: processes (or threads) verifying signatures.")
@click.option("--admission", type=click.Choice(["auto", "processes", "threads"]), default="auto", show_default=True,
              help="With --batch: where signatures are verified. processes: worker processes (all cores); threads: "
                   "threads of this process (one core); auto: processes for a batch of 2,048 requests or more.")
@click.option("--decisions", "decisions_file", metavar="FILE", help="With --batch: write each decision as a JSON line here.")
@schema_option
@policy_option
@click.pass_obj
def decide(obj: Context, source: str | None, now: str | None, as_json: bool, dry_run: bool, batch: str | None, group: int,
           workers: int, admission: str, decisions_file: str | None, schema_dir: str | None, policy_dir: str) -> None:
    """Decide a signed DUIS request (FILE or '-'). Exit 0 allow, 1 reject, 3 quarantine.
    With --batch PATH: many requests, group-committed; exit 0 when all were read and decided, 2 if
    the batch stopped early (the summary says why and how many were decided)."""
    if batch is not None:
        if source is not None or dry_run:
            raise click.UsageError("--batch takes no SOURCE and no --dry-run")
        engine = decision_engine(obj, policy_dir, schema_dir)
        try:
            run_batch(engine, batch, now=parse_now(now), group=group, workers=workers, decisions_file=decisions_file,
                      processes={"auto": None, "processes": True, "threads": False}[admission])
        finally:
            # The batch is covered by one signed checkpoint, kept outside the store.
            checkpoint_if_current(obj.log_keeper(), parse_now(now) or datetime.now(timezone.utc))
    if source is None:
        raise click.UsageError("give a SOURCE (FILE or '-') or --batch PATH")
    raw = read_input(source, limit=MAX_REQUEST_BYTES)  # as the service: larger is no DUIS message
    engine = decision_engine(obj, policy_dir, schema_dir)
    decision = (engine.evaluate if dry_run else engine.decide)(raw, now=parse_now(now))
    if as_json:
        emit({**decision.record(), "decided_at": decision.to_json_dict()["decided_at"], "dry_run": dry_run,
              "log_position": None if dry_run else decision.log_position})
    else:
        click.echo(format_decision(decision) + ("\n  (dry run: nothing was recorded)" if dry_run else ""))
    if not dry_run and not _unrecorded(decision):
        # Each decision is covered by a signed checkpoint kept outside the store at once.
        checkpoint_if_current(obj.log_keeper(), parse_now(now) or datetime.now(timezone.utc))
    sys.exit(DECISION_EXIT[decision.outcome])


def _unrecorded(decision: Decision) -> bool:
    """Refused because the log is behind its checkpoint: nothing was recorded, so there is
    nothing to cover, and signing now would accept what only ``log recover`` may."""
    return any(reason.rule == "log.behind-checkpoint" for reason in decision.reasons)


def format_decision(decision: Decision) -> str:
    request = decision.request or {}
    head = f"{decision.outcome.upper()} ({decision.response_code or 'no DUIS code'})"
    if request:
        head += f"  SRV {request.get('srv')} CV {request.get('command_variant')} from {request.get('originator')} to {request.get('target')}"
    lines = [head]
    for reason in decision.reasons:
        code = f" [{reason.code}]" if reason.code else ""
        lines.append(f"  - {reason.rule}{code}: {reason.message}")
    return "\n".join(lines)


@click.command()
@click.argument("source")
@click.option("--now", help="Decision time (ISO 8601 with zone); default: the current time.")
@schema_option
@click.pass_obj
def verify(obj: Context, source: str, now: str | None, schema_dir: str | None) -> None:
    """Verify the XML signature of a DUIS request or response (FILE or '-')."""
    raw = read_input(source, limit=MAX_REQUEST_BYTES)
    when = parse_now(now)
    verifier = Verifier(obj.store, schema=load_schema(schema_dir))
    try:
        message = verifier.verify(raw, now=when)
        out: dict[str, object] = {"valid": True, "kind": message.kind, "signer": message.signer.summary()}
        if message.kind == "Request":
            out["request"] = verifier.verify_request(raw, now=when).request.summary()
        if message.notes:
            out["notes"] = list(message.notes)
    except Refused as refusal:
        refuse({"valid": False, "reason": refusal.as_dict()})
    emit(out)


@click.command()
@click.argument("source")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False), help="PEM certificate of that key.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
def sign(source: str, key_file: str, cert_file: str, output: str | None) -> None:
    """Sign a DUIS document (FILE or '-') as a DUIS User does (test and tooling aid)."""
    try:
        key_pem, cert_pem = Path(key_file).read_bytes(), Path(cert_file).read_bytes()
        cert = x509.load_pem_x509_certificate(cert_pem)
        if load_private_key(key_pem).public_key() != cert.public_key():
            # sign_duis would sign (tests make such requests on purpose), and every verifier refuse it.
            raise ValueError(f"{key_file} is not the private key of the certificate in {cert_file} (serial {cert.serial_number})")
        signed = sign_duis(read_input(source), key_pem, cert_pem)
    except Exception as exc:  # noqa: BLE001 - bad input files: say so, no traceback
        raise click.UsageError(f"cannot sign: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if output:
        Path(output).write_bytes(signed)
    else:
        sys.stdout.buffer.write(signed)
