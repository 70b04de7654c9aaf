"""What the commands that act on the store share: signed governance statements (the options
every governance command takes, signing, submitting, the JSON of an applied act) and a
checkpoint after each change. Loaded only by those commands: it brings in the acts library."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.cli.common import EXIT_REFUSED, Context, emit, governance_call, now_option, parse_now, refuse
from solr_policy.errors import GovernanceRefused
from solr_policy.governance.acts import Act, Governance, behind_checkpoint
from solr_policy.governance.statements import cosign, key_id, make_statement, sign
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.merkle import LogRefused

if TYPE_CHECKING:
    from solr_policy.alerts.routing import AlertRouter
    from solr_policy.engine import Engine

T = TypeVar("T")


def checkpoint_if_current(keeper: LogKeeper | None, now: datetime) -> None:
    """Sign a checkpoint of the log as it is, unless the store is behind its newest checkpoint:
    signing then would accept a rollback that only an officers' ``log recover`` may accept."""
    if keeper is not None and keeper.key is not None and behind_checkpoint(keeper) is None:
        try:
            keeper.checkpoint(now)
        except LogRefused as exc:  # what was done stands (it is in the log); say what is missing
            raise click.UsageError(f"done, but no checkpoint covers it: {exc.message}") from None


def read_officer_key(path: str, option: str) -> ec.EllipticCurvePrivateKey:
    """An officer's P-256 private key from PEM; anything else is a usage error naming ``option``."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    except (ValueError, TypeError):
        raise click.BadParameter(f"{path} is not an unencrypted PEM private key", param_hint=option) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise click.BadParameter(f"{path} is not an EC P-256 private key", param_hint=option)
    return key


def statement_time(now: str | None) -> tuple[datetime, bool]:
    """The time of an act and whether the caller chose it (``--now``: tests and the demo; the
    log records that the clock was overridden)."""
    chosen = parse_now(now)
    return (chosen, True) if chosen is not None else (datetime.now(timezone.utc), False)


def submit(obj: Context, envelope: Any, now: str | None, *, engine: Engine | None = None, router: AlertRouter | None = None) -> Act:
    """Apply a signed statement (an ``Envelope`` or its JSON text) on the store's log; a refusal
    is JSON and exit 1. ``engine`` decides released requests, ``router`` routes alerts to a new SRP."""
    at, overridden = statement_time(now)
    governance = Governance(obj.store, engine=engine, router=router, log=obj.log_keeper())
    try:
        return governance.submit(envelope, now=at, clock_override=overridden)
    except GovernanceRefused as refusal:
        refuse({"done": False, "reason": refusal.as_dict()})
    except LogRefused as exc:  # the act stands; its checkpoint could not be written
        raise click.UsageError(f"the act was applied but its checkpoint was not written: {exc.message}") from None


def emit_act(act: Act) -> None:
    """Print an applied act; exit 1 when it was a release whose new decision refused the request."""
    # Not Act.to_json_dict(): its "officer" (the signer) is overwritten by a result's "officer"
    # (the one registered or removed); "signed_by" keeps both.
    emit({"done": True, "action": act.action, "signed_by": act.officer, "cosigners": list(act.cosigners), "statement": act.digest, **act.result})
    decision = act.result.get("decision")
    if decision is not None and decision.get("outcome") != "allow":
        sys.exit(EXIT_REFUSED)


@dataclass(frozen=True)
class Signing:
    """Who signs a governance command's statement, with which key files, and when."""

    officer: str
    key_file: str
    now: str | None
    cosigner: str | None = None
    cosigner_key_file: str | None = None

    def act(self, obj: Context, action: str, params: dict[str, Any], *, engine: Engine | None = None, router: AlertRouter | None = None) -> Act:
        """Sign ``params`` as the officer (and co-sign), then apply the statement to the store."""
        key = read_officer_key(self.key_file, "--key")
        second = read_officer_key(self.cosigner_key_file, "--cosigner-key") if self.cosigner_key_file else None
        self._check_cosigner(obj, second)
        at, _ = statement_time(self.now)
        envelope = governance_call(lambda: sign(make_statement(action, params, officer=self.officer, at=at), key))
        if second is not None:
            envelope = governance_call(cosign, envelope, second)
        return submit(obj, envelope, self.now, engine=engine, router=router)

    def _check_cosigner(self, obj: Context, key: ec.EllipticCurvePrivateKey | None) -> None:
        """``--cosigner`` must name the officer whose registered key ``--cosigner-key`` is: the
        act records its cosigners from their keys, so a wrong name would go unnoticed."""
        if (self.cosigner is None) != (key is None):
            raise click.UsageError("--cosigner and --cosigner-key go together")
        if self.cosigner is None or key is None:
            return
        record = obj.store.get_officer(self.cosigner)
        if record is None or not record.active or not record.public_key or _key_id_of_pem(record.public_key) != key_id(key.public_key()):
            refuse({"done": False, "reason": {
                "rule": "statement.not-the-cosigner", "code": None,
                "message": f"--cosigner-key is not the registered key of an active officer {self.cosigner}",
            }})


def _key_id_of_pem(pem: str) -> str:
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)  # officers.load_public_key stores only these
    return key_id(public)


def signed(*, four_eyes: bool = False, officer_flag: str = "--officer") -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A governance command: adds ``--officer`` (or ``officer_flag``), ``--key``, with
    ``four_eyes`` ``--cosigner`` and ``--cosigner-key``, and ``--now``, and hands the command
    one ``signing`` argument holding them."""

    def decorate(command: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(command)
        def run(*args: Any, officer: str, key_file: str, now: str | None,
                cosigner: str | None = None, cosigner_key: str | None = None, **kwargs: Any) -> T:
            signing = Signing(officer, key_file, now, cosigner, cosigner_key)
            return command(*args, signing=signing, **kwargs)

        options = [
            click.option(officer_flag, "officer", required=True, help="Who signs: the officer's id (the signature, not the name, proves it)."),
            click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
                         help="That officer's P-256 private key (PEM); it is used here and never stored or logged."),
        ]
        if four_eyes:
            options += [
                click.option("--cosigner", help="The second officer who co-signs (four eyes)."),
                click.option("--cosigner-key", type=click.Path(dir_okay=False), help="The co-signing officer's P-256 private key (PEM)."),
            ]
        for option in reversed([*options, now_option]):
            run = option(run)
        return run

    return decorate
