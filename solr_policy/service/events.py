"""An SoLR event at a glance: one instruction, what was decided under it, what is held and
waiting, and the state of the log. Served at ``/v1/events/{reference}`` and printed by
``solr-policy status``, from the same function."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

from solr_policy.records import AlertStatus
from solr_policy.store.base import Store


def event_view(store: Store, reference: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The event of instruction ``reference``, or None when there is no such instruction."""
    instruction = store.get_instruction(reference)
    if instruction is None:
        return None
    now = now or datetime.now(timezone.utc)
    outcomes: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for entry in store.audit_entries(kind="decision", instruction=reference):
        payload = entry.payload_data()
        outcomes[payload.get("outcome") or "?"] += 1
        codes[payload.get("response_code") or "none"] += 1
        if payload.get("outcome") != "allow":
            for reason in payload.get("reasons") or []:
                rules[reason.get("rule") or "?"] += 1
    failed = instruction.failed_supplier
    devices = {d.id for d in store.list_devices() if d.supplier == failed}
    held: Counter[str] = Counter(q.status.value for q in store.list_quarantine() if q.device in devices)
    users = {u.id for u in store.list_users() if u.party == failed}
    alerts: Counter[str] = Counter(
        a.status.value for a in store.alert_deliveries() if a.recipient in users or (a.device is not None and a.device in devices)
    )
    head = store.log_head()
    checkpoint = store.latest_checkpoint()
    return {
        "instruction": instruction.model_dump(mode="json"),
        "history": [e.to_json_dict() for e in store.instruction_events(reference)],
        "decisions": {
            "total": sum(outcomes.values()),
            "by_outcome": dict(sorted(outcomes.items())),
            "by_code": dict(sorted(codes.items())),
            "refusals_by_rule": dict(rules.most_common()),
        },
        "quarantine": {status: held.get(status, 0) for status in ("held", "released", "discarded")},
        "alerts": {status.value: alerts.get(status.value, 0) for status in AlertStatus},
        "log": {
            "size": head.size,
            "checkpoint": None if checkpoint is None else {
                "size": checkpoint.size, "root": checkpoint.root, "time": checkpoint.at.isoformat(),
                "age_seconds": round((now - checkpoint.at).total_seconds(), 1),
            },
        },
    }


def format_event(view: dict[str, Any]) -> str:
    """The view as a readable table (``solr-policy status``)."""
    i = view["instruction"]
    lines = [
        f"Instruction {i['reference']}  {i['status'].upper()}",
        f"  failed Supplier {i['failed_supplier']}  ->  SoLR Party {i['solr_party']}",
        f"  from {i['effective_from']}  until {i['effective_until'] or '(open)'}",
        "",
        "History",
    ]
    lines += [f"  {e['at']}  {e['action']:<8} {e['officer']:<16} {e['reason']}" for e in view["history"]] or ["  (none)"]
    d = view["decisions"]
    lines += ["", f"Decisions  {d['total']}"]
    lines += [f"  {k:<12} {v:>8}" for k, v in d["by_outcome"].items()]
    lines += ["  by DUIS code: " + (", ".join(f"{k} {v}" for k, v in d["by_code"].items()) or "-")]
    if d["refusals_by_rule"]:
        lines += ["  refused or held by: " + ", ".join(f"{k} {v}" for k, v in d["refusals_by_rule"].items())]
    q, a = view["quarantine"], view["alerts"]
    lines += ["", "Quarantine  " + "  ".join(f"{k} {v}" for k, v in q.items())]
    lines += ["Alerts      " + "  ".join(f"{k} {v}" for k, v in a.items())]
    log = view["log"]
    c = log["checkpoint"]
    lines += ["", f"Log  {log['size']} entries; " + ("no checkpoint yet" if c is None else f"checkpoint at {c['size']}, {c['time']} ({c['age_seconds']} s ago)")]
    return "\n".join(lines)
