"""``solr-policy audit``: the audit trail, a verifiable log.

On the store: ``verify``, ``show``, ``checkpoint``, ``prove`` and ``consistency``. Offline,
with no store opened at all, what an auditor runs on the proofs: ``check-proof`` and
``check-consistency`` (the proof file, the log's public key, a checkpoint they kept).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import click

from solr_policy.cli.common import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Context, emit, parse_now, refuse
from solr_policy.eui import parse_eui64
from solr_policy.store.audit_chain import leaf_of
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.merkle import LogRefused
from solr_policy.transparency.proofs import Verdict, check_consistency_files, check_inclusion_files


@click.group()
def audit() -> None:
    """The audit trail: a hash chain and a Merkle tree with signed checkpoints."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Context) -> None:
    """Check the log: the chain, the tree, the newest checkpoint, and that counters, ADT usage
    and quarantine match the logged decisions (every problem named, exit 1). A store that was
    never init-ed has a chain only: the first broken entry is named."""
    keeper = obj.log_keeper()
    check = keeper.verify() if keeper is not None else obj.store.verify_audit()
    emit(check.to_json_dict())
    sys.exit(EXIT_OK if check.intact else EXIT_REFUSED)


def _keeper(obj: Context) -> LogKeeper:
    keeper = obj.log_keeper()
    if keeper is None:
        raise click.UsageError(f"no log key at {obj.settings.log_key}: this store was never set up by solr-policy init (see --log-key)")
    return keeper


@audit.command("checkpoint")
@click.pass_obj
def audit_checkpoint(obj: Context) -> None:
    """Sign a checkpoint of the log as it is now and write it to the checkpoint file. Refused
    while the store is behind its newest checkpoint (only a signed log recover accepts that)."""
    keeper = _keeper(obj)
    try:
        behind = keeper.behind()
        if behind is not None:
            refuse({"done": False, "reason": {"rule": "log.behind-checkpoint", "code": None,
                                              "message": f"{behind}; two governance officers must sign: solr-policy log recover"}})
        checkpoint, _ = keeper.checkpoint(datetime.now(timezone.utc))
    except LogRefused as exc:  # the newest checkpoint cannot be read or trusted, or not written
        refuse({"done": False, "reason": exc.as_dict()})
    emit({"done": True, "size": checkpoint.size, "root": checkpoint.root_hash.hex(), "time": checkpoint.time.isoformat(),
          "file": str(keeper.checkpoint_file)})


proof_output_option = click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the proof here instead of stdout.")


def _prove(obj: Context, make: Callable[[LogKeeper], str], output: str | None, shown: tuple[str, ...]) -> None:
    """Make a proof document on the store's log: to stdout, or to ``output`` with its ``shown`` fields."""
    try:
        document = make(_keeper(obj))
    except LogRefused as exc:
        refuse({"done": False, "reason": exc.as_dict()})
    if output is None:
        click.echo(document, nl=False)
        return
    try:
        Path(output).write_text(document)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="--output") from None
    fields = json.loads(document)
    emit({"proof": output, **{name: fields[name] for name in shown}})


@audit.command("prove")
@click.argument("seq", type=int)
@proof_output_option
@click.pass_obj
def audit_prove(obj: Context, seq: int, output: str | None) -> None:
    """An inclusion proof of audit entry SEQ against the newest checkpoint, for audit check-proof."""
    _prove(obj, lambda keeper: keeper.prove_inclusion(seq), output, ("leaf_index", "tree_size"))


@audit.command("consistency")
@click.argument("first_size", type=int)
@proof_output_option
@click.pass_obj
def audit_consistency(obj: Context, first_size: int, output: str | None) -> None:
    """Proof that the newest checkpoint extends the log of FIRST_SIZE entries (append only)."""
    _prove(obj, lambda keeper: keeper.prove_consistency(first_size), output, ("first_size", "second_size"))


def _verdict(verdict: Verdict) -> NoReturn:
    emit(verdict.as_dict())
    # An unreadable file is input that could not be read (2); any other refusal is a bad proof (1).
    sys.exit(EXIT_OK if verdict.valid else EXIT_USAGE if verdict.rule == "log.file" else EXIT_REFUSED)


@audit.command("check-proof")
@click.argument("proof")
@click.option("--key", "public_key", required=True, help="The log's public key (PEM), as init wrote it.")
@click.option("--checkpoint", help="A checkpoint you kept; the proof must be made against that same tree head.")
@click.option("--entry-hash", help="The hash of the audit entry you expect (as audit show lists it).")
def audit_check_proof(proof: str, public_key: str, checkpoint: str | None, entry_hash: str | None) -> None:
    """Offline: is the entry in the log? Opens no store. Exit 0 valid, 1 not, 2 unreadable."""
    wanted = None
    if entry_hash is not None:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", entry_hash):
            raise click.BadParameter("an entry hash is 64 hex digits", param_hint="--entry-hash")
        wanted = leaf_of(entry_hash).hex()  # each entry's hash is the data of its leaf in the tree
    _verdict(check_inclusion_files(proof, public_key, checkpoint=checkpoint, leaf_hash_hex=wanted))


@audit.command("check-consistency")
@click.argument("proof")
@click.option("--key", "public_key", required=True, help="The log's public key (PEM), as init wrote it.")
@click.option("--first", "first", required=True, help="The older checkpoint you kept.")
@click.option("--checkpoint", help="The newer checkpoint, if you kept it too; the proof must be made against it.")
def audit_check_consistency(proof: str, public_key: str, first: str, checkpoint: str | None) -> None:
    """Offline: does the log at the proof's checkpoint extend the --first one? Opens no store."""
    _verdict(check_consistency_files(proof, public_key, first, second_checkpoint=checkpoint))


@audit.command("show")
@click.option("--instruction")
@click.option("--officer", help="Entries by this actor (officer or User).")
@click.option("--device", help="Device EUI-64.")
@click.option("--kind", help="e.g. decision, instruction.approve, adt.submit")
@click.option("--since", help="ISO 8601 with zone.")
@click.option("--until", help="ISO 8601 with zone.")
@click.option("--limit", type=int)
@click.pass_obj
def audit_show(
    obj: Context,
    instruction: str | None,
    officer: str | None,
    device: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
) -> None:
    """Show audit entries, filtered."""
    if device:
        try:
            device = parse_eui64(device)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--device") from None
    rows = obj.store.audit_entries(
        kind=kind, actor=officer, device=device, instruction=instruction, since=parse_now(since, "--since"), until=parse_now(until, "--until"), limit=limit
    )
    emit([e.to_json_dict() for e in rows])
