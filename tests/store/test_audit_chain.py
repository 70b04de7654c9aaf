"""The audit hash chain on its own (no database): what every store relies on."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solr_policy.records import AuditCheck, AuditEntry, AuditHead
from solr_policy.store.audit_chain import (
    GENESIS,
    audit_hash,
    canonical_payload,
    canonical_around,
    canonical_time,
    entry_hash,
    json_string_inner,
    verify_chain,
)

from .samples import NOW


def chain(n: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        draft = AuditEntry(
            seq=seq,
            at=canonical_time(NOW + timedelta(minutes=seq)),
            kind="decision",
            actor="90B3D51F300F0001",
            originator="90B3D51F300F0001",
            device=None,
            instruction="OFGEM-1" if seq % 2 else None,
            payload=canonical_payload({"seq": seq, "outcome": "allow"}),
            prev_hash=prev,
            hash="",
        )
        entry = dataclasses.replace(draft, hash=entry_hash(draft, prev))
        entries.append(entry)
        prev = entry.hash
    return entries


def head_of(entries: list[AuditEntry]) -> AuditHead:
    return AuditHead(entries[-1].seq, entries[-1].hash)


def test_the_hash_covers_the_previous_hash_and_every_field():
    entry = chain(1)[0]
    fields = {"actor": entry.actor, "originator": entry.originator, "device": None, "instruction": "OFGEM-1"}
    assert entry.hash == audit_hash(GENESIS, 1, entry.at, "decision", fields, entry.payload)
    variants = [
        audit_hash("1" * 64, 1, entry.at, "decision", fields, entry.payload),
        audit_hash(GENESIS, 2, entry.at, "decision", fields, entry.payload),
        audit_hash(GENESIS, 1, canonical_time(NOW), "decision", fields, entry.payload),
        audit_hash(GENESIS, 1, entry.at, "decision.refused", fields, entry.payload),
        audit_hash(GENESIS, 1, entry.at, "decision", {**fields, "device": "00DB1234567890A0"}, entry.payload),
        audit_hash(GENESIS, 1, entry.at, "decision", fields, entry.payload + " "),
    ]
    assert len({entry.hash, *variants}) == 7


def test_canonical_forms_do_not_depend_on_how_the_caller_wrote_them():
    assert canonical_time(NOW.astimezone(timezone(timedelta(hours=5)))) == canonical_time(NOW)
    assert canonical_time(NOW).endswith("+00:00")
    assert canonical_payload({"b": 1, "a": [1, 2]}) == canonical_payload({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'


def test_the_canonical_forms_and_the_hash_are_those_of_the_logs_already_written():
    """Pinned: logs written before must still verify, so neither form may change."""
    payload = canonical_payload({
        "outcome": "allow", "reasons": [{"rule": "R1.x", "code": None, "message": 'é "q" \\ \n'}], "n": 2**64 - 1,
        "at": datetime(2026, 11, 22, 10, 30, tzinfo=timezone.utc),
    })
    assert payload == (
        '{"at":"2026-11-22 10:30:00+00:00","n":18446744073709551615,"outcome":"allow",'
        '"reasons":[{"code":null,"message":"\\u00e9 \\"q\\" \\\\ \\n","rule":"R1.x"}]}'
    )
    fields = {"actor": "A", "originator": "B", "device": None, "instruction": None}
    at = "2026-11-22T10:30:00+00:00"
    assert audit_hash(GENESIS, 7, at, "decision", {**fields, "counter": 42}, payload) == (
        "2fc7aafa403128553bd46a809a5a11141367b30eae3958f44296fca05cedc390"
    )
    assert audit_hash(GENESIS, 7, at, "decision", {**fields, "counter": None}, payload) == (
        "962db2c4fb5831b2e2c74fd0362565ed5b4cd10da1b3ada3cd5a759fba6e9412"
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=8), _json, max_size=6), key=st.text(max_size=8), value=_json)
def test_a_payload_made_of_a_kept_members_text_is_the_canonical_one(payload, key, value):
    prefix, suffix = canonical_around(payload, key)
    assert prefix + canonical_payload(value) + suffix == canonical_payload({**payload, key: value})


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.text(max_size=20), max_size=5))
def test_a_json_string_is_made_of_its_parts(parts):
    text = "".join(parts)
    assert '"' + "".join(json_string_inner(part) for part in parts) + '"' == json.dumps(text)


@settings(max_examples=300, deadline=None)
@given(
    payload=_json, seq=st.integers(min_value=1, max_value=2**63 - 1), kind=st.text(max_size=10), at=st.text(max_size=30),
    fields=st.fixed_dictionaries({
        "actor": st.none() | st.text(max_size=12), "originator": st.none() | st.text(max_size=12),
        "device": st.none() | st.text(max_size=12), "instruction": st.none() | st.text(max_size=12),
        "counter": st.none() | st.integers(min_value=0, max_value=2**64 - 1),
    }),
    extra=st.booleans(),
)
def test_a_hash_given_the_payloads_json_string_is_the_same(payload, seq, kind, at, fields, extra):
    """Given the payload's JSON string, the body is written out (or, with other fields, put
    together around it): the same hash as json.dumps of the whole body."""
    if extra:
        fields = {**fields, "note": "x"}
    text = canonical_payload({"value": payload})
    expected = audit_hash(GENESIS, seq, at, kind, fields, text)
    assert audit_hash(GENESIS, seq, at, kind, fields, text, json.dumps(text)) == expected


def test_an_intact_chain_and_its_head_verify():
    entries = chain(5)
    assert verify_chain(entries, head_of(entries)) == AuditCheck(True, 5, "5 entries, chain intact")
    assert verify_chain([], None) == AuditCheck(True, 0, "0 entries, chain intact")


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda e: e[:2] + [dataclasses.replace(e[2], payload='{"outcome":"reject"}')] + e[3:], AuditCheck(False, 3, "entry 3 was altered (its hash does not match its content)")),
        (lambda e: e[:2] + e[3:], AuditCheck(False, 3, "entry 3 is missing (next is 4)")),
        (lambda e: [e[1], e[0], *e[2:]], AuditCheck(False, 1, "entry 1 is missing (next is 2)")),
        (lambda e: e[:3] + [dataclasses.replace(e[3], prev_hash=GENESIS)] + e[4:], AuditCheck(False, 4, "entry 4 does not link to entry 3")),
    ],
    ids=["altered", "deleted", "reordered", "relinked"],
)
def test_the_first_broken_entry_is_named(break_it, expected):
    entries = chain(5)
    assert verify_chain(break_it(entries), head_of(entries)) == expected


def test_cutting_off_the_newest_entries_is_found_by_the_head():
    entries = chain(5)
    assert verify_chain(entries[:3], head_of(entries)) == AuditCheck(
        False, 3, "the chain ends at entry 3, but entry 5 was written: newest entries are missing or altered"
    )
    assert verify_chain(entries, None) == AuditCheck(False, 5, "the chain's head record is missing")
