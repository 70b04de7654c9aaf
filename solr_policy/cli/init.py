"""``solr-policy init``: the first governance officers of an empty store, and the log's key."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from solr_policy.cli.common import Context, emit, public_key_file, read_text, refuse
from solr_policy.errors import GovernanceRefused
from solr_policy.governance.bootstrap import init_store
from solr_policy.transparency.checkpoint import generate_log_key, public_key_pem, save_private_key, write_file_atomically
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.merkle import LogRefused


def _refusal(rule: str, message: str) -> dict[str, object]:
    return {"done": False, "reason": {"rule": rule, "code": None, "message": message}}


@click.command()
@click.option("--officer", "officer_ids", multiple=True, required=True, help="A first governance officer's id; repeatable (at least two).")
@click.option("--name", "names", multiple=True, required=True, help="That officer's name; once per --officer, in the same order.")
@click.option("--key", "key_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="That officer's P-256 public key (PEM); once per --officer, in the same order.")
@click.pass_obj
def init(obj: Context, officer_ids: tuple[str, ...], names: tuple[str, ...], key_files: tuple[str, ...]) -> None:
    """Start an empty store: make the log's key, register the first governance officers (the
    log's first entry) and write the first checkpoint. Refuses a store that is not empty."""
    if not len(officer_ids) == len(names) == len(key_files):
        raise click.UsageError("give --officer, --name and --key once for each officer, in the same order")
    founders = [(officer, name, read_text(key, "--key")) for officer, name, key in zip(officer_ids, names, key_files)]
    settings, store = obj.settings, obj.store
    if store.log_head().size:  # checked again by init_store; here so that no key is made for nothing
        refuse(_refusal("init.not-empty", "init runs once, on an empty store; this one already holds data"))
    if settings.log_key.exists():
        refuse(_refusal("init.log-key-exists", f"a log key already exists at {settings.log_key}; init never replaces one"))
    key = generate_log_key()
    try:
        save_private_key(settings.log_key, key)  # refuses to replace a key made meanwhile
    except LogRefused as exc:
        refuse(_refusal("init.log-key", exc.message))
    now = datetime.now(timezone.utc)
    try:
        init_store(store, founders, at=now)
    except GovernanceRefused as refusal:
        settings.log_key.unlink()  # nothing was initialised: leave no key behind
        refuse({"done": False, "reason": refusal.as_dict()})
    public = public_key_file(settings.log_key)
    try:
        LogKeeper(store, key.public_key(), key=key, checkpoint_file=settings.checkpoint).checkpoint(now)
        write_file_atomically(public, public_key_pem(key))
    except LogRefused as exc:
        raise click.UsageError(f"the store was initialised, but {exc.message}; fix that and run: solr-policy audit checkpoint") from None
    emit({
        "done": True,
        "officers": [{"id": officer, "name": name} for officer, name, _ in founders],
        "log_public_key": str(public),
        "log_key": str(settings.log_key),
        "checkpoint": str(settings.checkpoint),
        "entries": store.log_head().size,
    })
