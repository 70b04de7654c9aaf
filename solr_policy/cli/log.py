"""``solr-policy log``: acts on the verifiable log itself."""

from __future__ import annotations

import click

from solr_policy.cli.acting import Signing, emit_act, signed
from solr_policy.cli.common import Context, reason_option


@click.group()
def log() -> None:
    """The verifiable log: recovery after a rollback."""


@log.command("recover")
@reason_option
@signed(four_eyes=True)
@click.pass_obj
def log_recover(obj: Context, reason: str, signing: Signing) -> None:
    """Accept the store's log as it is after a rollback (a lost WAL, a restored backup): two
    governance officers sign; the log records what was lost and a new checkpoint follows. Until
    then the engine decides nothing and no other act is accepted."""
    emit_act(signing.act(obj, "log.recover", {"reason": reason}))
