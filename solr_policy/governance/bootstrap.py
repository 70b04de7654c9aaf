"""``init``: the first governance officers of an empty store, the log's first entry.

Nothing can make the first officers by a signed act (there is nobody yet to sign it), so the
operator who creates the store names them with their public keys; at least two, with two
different keys, so that every act needing four eyes can have them. After this, every change
of who may act is a signed statement (``acts.py``). ``init`` refuses a store that is not empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from solr_policy.errors import GovernanceRefused
from solr_policy.governance import officers
from solr_policy.store.base import Store

if TYPE_CHECKING:
    from solr_policy.transparency.log import LogKeeper


def init_store(
    store: Store, founders: Sequence[tuple[str, str, bytes | str]], *, at: datetime, log: LogKeeper | None = None
) -> None:
    """Register ``founders`` (officer id, name, public key PEM) as governance officers."""
    with store.transaction():
        # Looked at in the transaction that starts the store, after any act or init in progress
        # on another node: of two nodes running init as they start, one starts it.
        store.serialise_acts()
        if store.log_head().size or store.list_officers() or store.list_parties() or store.list_certificates():
            raise GovernanceRefused("init.not-empty", "init runs once, on an empty store; this one already holds data")
        ids = [f[0] for f in founders]
        if len(founders) < 2 or len(set(ids)) != len(ids):
            raise GovernanceRefused("init.officers", "init needs at least two governance officers, with different ids (four eyes)")
        store.append_audit(
            "init", {"governance_officers": [{"officer": i, "name": n} for i, n, _ in founders]}, at=at, actor=None
        )
        for officer_id, name, key in founders:
            officers.register_governance_officer(store, officer_id, name=name, public_key=key, at=at, founding=True)
    if log is not None:
        log.checkpoint(at)
