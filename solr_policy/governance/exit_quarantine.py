"""Exit Quarantine files: an ARO of the Party releases or deletes held requests in bulk (R4).

The DCC's process (SEC, modification MP109): a User releases or deletes its quarantined
requests by sending an Exit Quarantine file. No public layout of that file was found, so this
format is the project's. Like an ADT file, it is a small YAML file with a detached signature
``FILE.sig`` made with the ARO's key over every byte (``solr-policy adt sign`` makes one):

    exit_quarantine_version: 1
    reference: EQ-SOLR-2026-001          # unique: a file is applied once
    party: SOLR-PARTY                    # the ARO's Party; every item must be a request of its Users
    reason: checked with the SoLR Party's operations team
    items:                               # each by quarantine id or by DUIS RequestID, with what to do
      - {id: 12, action: release}
      - {request_id: "90-B3-D5-1F-30-0F-00-01:00-DB-12-34-56-78-90-A0:1001", action: delete}

It is applied all or nothing: every item must be held and named once; a released item is
decided again without its threshold and must then be allowed; if any item cannot be done,
nothing is (the refusal names the item). Every item is logged (``quarantine.release`` or
``quarantine.discard``, with the file's reference), then the file (``quarantine.exit-file``).
``delete`` is the DCC's word; the store records the item as discarded, as the single-item
``quarantine discard`` does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from solr_policy.duis.models import RequestId
from solr_policy.errors import GovernanceRefused
from solr_policy.governance.adt import verify_detached
from solr_policy.governance.officers import ARO, require_officer
from solr_policy.records import QuarantineItem, QuarantineStatus
from solr_policy.yamlio import DataFileError, load_yaml, validate

if TYPE_CHECKING:
    from solr_policy.engine import Engine

MAX_EXIT_FILE_BYTES = 128 * 1024
MAX_ITEMS = 1000
RULE = "R4.exit-quarantine"


class ExitItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: int | None = Field(default=None, ge=1)
    request_id: str | None = None
    action: Literal["release", "delete"]

    @model_validator(mode="after")
    def _one_name(self) -> "ExitItem":
        if (self.id is None) == (self.request_id is None):
            raise ValueError("name the held request by id or by request_id (one of them)")
        if self.request_id is not None:
            RequestId.parse(self.request_id)  # a ValueError names what is wrong with it
        return self

    @property
    def named(self) -> str:
        return f"item {self.id}" if self.id is not None else f"request {self.request_id}"


class ExitQuarantineFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    exit_quarantine_version: int = Field(ge=1, le=1)
    reference: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    party: str
    reason: str = Field(min_length=1, max_length=1000)
    items: tuple[ExitItem, ...] = Field(min_length=1, max_length=MAX_ITEMS)


def parse_exit_file(data: bytes, source: str = "<exit-quarantine>") -> ExitQuarantineFile:
    if len(data) > MAX_EXIT_FILE_BYTES:
        raise GovernanceRefused(RULE, f"{source}: larger than {MAX_EXIT_FILE_BYTES} bytes")
    try:
        raw, lines = load_yaml(data.decode("utf-8"), source)
        if not isinstance(raw, dict):
            raise DataFileError(f"{source}: an Exit Quarantine file is a YAML mapping")
        return validate(ExitQuarantineFile, raw, lines, source)
    except UnicodeDecodeError:
        raise GovernanceRefused(RULE, f"{source}: not UTF-8 text") from None
    except DataFileError as exc:
        raise GovernanceRefused(RULE, str(exc)) from None


def exit_file_text(*, reference: str, party: str, reason: str, items: list[tuple[int | str, str]]) -> bytes:
    """Write an Exit Quarantine file (tooling, demo, tests): items as (id or RequestID, action)."""
    lines = ["exit_quarantine_version: 1", f"reference: {reference}", f"party: {party}", f"reason: {reason}", "items:"]
    for name, action in items:
        key = f"id: {name}" if isinstance(name, int) else f'request_id: "{name}"'
        lines.append(f"  - {{{key}, action: {action}}}")
    return ("\n".join(lines) + "\n").encode()


def _find(engine: Engine, item: ExitItem, held: list[QuarantineItem]) -> QuarantineItem:
    if item.id is not None:
        found = engine.store.get_quarantine(item.id)
    else:
        assert item.request_id is not None
        rid = RequestId.parse(item.request_id)
        found = next((q for q in held if (q.originator, q.device, q.counter) == (rid.originator, rid.target, rid.counter)), None)
    if found is None:
        raise GovernanceRefused(RULE, f"{item.named}: no such quarantined request; nothing in the file was applied")
    if not found.held:
        raise GovernanceRefused(RULE, f"{item.named}: quarantined request {found.id} was already {found.status.value}; nothing in the file was applied")
    return found


def apply_exit_file(engine: Engine, data: bytes, signature: bytes, *, aro: str, at: datetime) -> dict[str, object]:
    """Verify and apply an Exit Quarantine file, all or nothing, in one transaction."""
    store = engine.store
    with store.transaction():
        officer = require_officer(store, aro, ARO)
        if officer.public_key is None:
            raise GovernanceRefused(RULE, f"ARO {aro} has no registered key to verify the file with")
        verify_detached(data, signature, officer.public_key, aro, rule=RULE, what="Exit Quarantine file")
        eq = parse_exit_file(data)
        if eq.party != officer.party:
            raise GovernanceRefused(RULE, f"the Exit Quarantine file is for Party {eq.party}, but ARO {aro} is an officer of {officer.party}")
        if any(e.payload_data().get("reference") == eq.reference for e in store.audit_entries(kind="quarantine.exit-file")):
            raise GovernanceRefused(RULE, f"an Exit Quarantine file {eq.reference} was already applied; give a new file a new reference")
        held = store.list_quarantine(status=QuarantineStatus.HELD)
        chosen: list[tuple[ExitItem, QuarantineItem]] = []
        for item in eq.items:
            found = _find(engine, item, held)
            if any(q.id == found.id for _, q in chosen):
                raise GovernanceRefused(RULE, f"{item.named}: quarantined request {found.id} is named twice; nothing in the file was applied")
            user = store.get_user(found.originator)
            if user is None or user.party != eq.party:
                raise GovernanceRefused(RULE, f"{item.named}: quarantined request {found.id} is not a request of Party {eq.party}'s Users; nothing in the file was applied")
            chosen.append((item, found))
        done = []
        for item, found in chosen:
            about = {"item": found.id, "reason": eq.reason, "exit_file": eq.reference}
            if item.action == "release":
                decision = engine.release(found.id, officer=aro, now=at)
                if not decision.allowed:
                    why = "; ".join(r.message for r in decision.reasons)
                    raise GovernanceRefused(RULE, f"{item.named}: quarantined request {found.id} is refused when decided again ({why}); nothing in the file was applied")
                store.append_audit("quarantine.release", {**about, "outcome": decision.outcome}, at=at, actor=aro,
                                   originator=found.originator, device=found.device)
                done.append({"item": found.id, "action": "release", "decision_id": decision.decision_id})
            else:
                store.resolve_quarantine(found.id, status=QuarantineStatus.DISCARDED, by=aro, at=at, reason=eq.reason)
                store.append_audit("quarantine.discard", about, at=at, actor=aro, originator=found.originator, device=found.device)
                done.append({"item": found.id, "action": "delete"})
        store.append_audit(
            "quarantine.exit-file",
            {"reference": eq.reference, "party": eq.party, "sha256": hashlib.sha256(data).hexdigest(), "items": done},
            at=at, actor=aro,
        )
    return {"exit_file": eq.reference, "items": done}
