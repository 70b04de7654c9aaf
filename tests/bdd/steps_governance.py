"""Steps for governance: R2 certificate subscriptions, R4 officers, ADT files and quarantine,
R6 the instruction's lifecycle and the audit trail.

The feature files name people and Parties in the SEC's words ("Alice (governance)", "Sam
(SRO)", "Steady Power"); the tables below turn them into the product's ids. A governance
step that the product refuses raises ``GovernanceRefused``: a *When* step keeps the refusal
on the scene for a *Then* to check against ``REASONS`` (conftest.py); a *Given* step treats
it as a broken precondition and fails at once.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from parse import with_pattern
from pytest_bdd import given, parsers, then, when

from solr_policy.crypto.certs import read_certificates
from solr_policy.errors import GovernanceRefused
from solr_policy.eui import parse_eui64
from solr_policy.governance import instructions, officers
from solr_policy.governance import quarantine as held_requests
from solr_policy.governance.adt import sign_adt, submit_adt
from solr_policy.governance.csr import ALLOWED, check_csr
from solr_policy.records import QuarantineStatus, SmkiStatus
from solr_policy.testing.csr import make_csr
from solr_policy.testing.pki import new_key_pem, public_pem
from solr_policy.world import Instruction, InstructionStatus

from .conftest import (
    FAILED_SUPPLIER_METERS,
    HELD,
    OUTCOMES,
    PUBLISHED_POLICIES,
    REASONS,
    SOLR_USER,
    TYPES,
    Scene,
    _choice,
    _switch,
    allowed,
    explain,
    refused,
)

# -- vocabulary ----------------------------------------------------------------------------

# Parties by their business names -> the SolrScenario attribute holding the Party id.
PARTIES = {
    "Failed Energy": "failed_supplier",
    "Steady Power": "other_supplier",
    "SoLR Contingency Services": "solr_party",
}

# Officers once they hold their office -> officer id. Alice and Bob (the DCC's governance
# officers) come with the scenario; the others are registered by the scenarios themselves.
OFFICERS = {
    "Alice (governance)": "gov-alice",
    "Bob (governance)": "gov-bob",
    "Sam (SRO)": "sro-sam",
    "Ann (ARO)": "aro-ann",
    "Steady Power's SRO": "sro-steady",
    "Steady Power's ARO": "aro-steady",
}
# People named when they are given an office -> the officer id they will have.
PEOPLE = {"Sam": "sro-sam", "Sid": "sro-sid", "Ann": "aro-ann", "Owen": "aro-owen"}

# Certificates a Party may ask the SMKI for -> (Remote Party Role, Key Usage).
CERTIFICATES = {
    "an XML Signing certificate": (135, "digital_signature"),
    "a Supplier Digital Signing certificate": (2, "digital_signature"),
    "a Supplier Key Agreement certificate": (2, "key_agreement"),
    "a Network Operator signing certificate": (3, "digital_signature"),
    "an Access Control Broker certificate": (4, "digital_signature"),
    "a DCC XML Signing certificate": (137, "digital_signature"),
}

# Instruction steps: present tense (When), past participle (Given), noun (audit trail).
ACTIONS = {"approves": "approve", "suspends": "suspend", "resumes": "resume", "ends": "end"}
DONE = {"approved": "approve", "suspended": "suspend", "resumed": "resume", "ended": "end"}
ENTRIES = {
    "proposal": "propose",
    "approval": "approve",
    "suspension": "suspend",
    "resumption": "resume",
    "ending": "end",
}
# Every governance step needs a reason; these are used where a scenario gives none.
DEFAULT_REASONS = {
    "propose": "Ofgem's letter: Failed Energy has failed",
    "approve": "checked against Ofgem's letter",
    "suspend": "Ofgem asked for a pause",
    "resume": "Ofgem lifted the pause",
    "end": "the Supplier of Last Resort has taken over",
}
STATUSES = {s.value: s for s in InstructionStatus}

# What a governance refusal is written as, after "the ... is refused because".
REFUSABLE = ("registration", "appointment", "ADT file", "Exit Quarantine file", "proposal", "approval", "resumption", "release")


def _typed(words):
    @with_pattern(_choice(words))
    def convert(text: str) -> str:
        return text

    return convert


GTYPES = {
    **TYPES,
    "Party": _typed(PARTIES),
    "Officer": _typed(OFFICERS),
    "Person": _typed(PEOPLE),
    "Certificate": _typed(CERTIFICATES),
    "Action": _typed(ACTIONS),
    "Done": _typed(DONE),
    "Entry": _typed(ENTRIES),
    "Status": _typed(STATUSES),
    "Refusable": _typed(REFUSABLE),
    "Held": _typed(["released", "discarded"]),
    "Tamper": _typed(["alters", "deletes"]),
    "Finding": _typed(["altered", "missing"]),
}


def gstep(text: str):
    """``parsers.parse`` with the business types of conftest.py and of governance."""
    return parsers.parse(text, extra_types=GTYPES)


def party_id(scene: Scene, name: str) -> str:
    return getattr(scene.solr, PARTIES[name])


# -- helpers -------------------------------------------------------------------------------


def attempt(scene: Scene, action):
    """A When step: run ``action``; keep a governance refusal for the Then steps."""
    scene.refusal = None
    try:
        return action()
    except GovernanceRefused as refusal:
        scene.refusal = refusal
        return None


def done(action):
    """A Given step: run ``action``; a refusal means the scenario's setup is wrong."""
    try:
        return action()
    except GovernanceRefused as refusal:
        raise AssertionError(f"the setup step was refused: {refusal.rule}: {refusal.message}") from None


def _new_key(scene: Scene, officer_id: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    scene.solr.officer_keys[officer_id] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ready(scene: Scene) -> None:
    scene.users[SOLR_USER] = scene.solr.requests()
    scene.use_policies(PUBLISHED_POLICIES)


def _audited(scene: Scene, kind: str, actor: str, **payload) -> dict:
    """The one audit entry of ``kind`` by ``actor`` whose payload holds ``payload``."""
    entries = [
        e
        for e in scene.store.audit_entries(kind=kind, actor=actor)
        if all(e.payload_data().get(k) == v for k, v in payload.items())
    ]
    assert len(entries) == 1, f"expected one audit entry {kind} by {actor} with {payload}; found {len(entries)}"
    return entries[0]


def _refusal_matches(refusal: GovernanceRefused | None, reason: str) -> None:
    assert reason in REASONS, f"unknown reason {reason!r}; known reasons: {sorted(REASONS)}"
    expected = REASONS[reason]
    assert refusal is not None, f"the step was not refused (expected a refusal by {expected.rule})"
    assert refusal.rule == expected.rule, f"expected a refusal by {expected.rule}; got {refusal.rule}: {refusal.message}"
    assert refusal.code == expected.code, f"expected code {expected.code}; got {refusal.code}"
    if expected.says is not None:
        assert expected.says in refusal.message, f"expected {expected.says!r} in {refusal.message!r}"


# -- Given: the SoLR event, with governance still to do --------------------------------------


@given("Failed Energy has failed and SoLR Contingency Services is its SoLR Party, with no SRO or ARO registered yet")
def failure_without_party_officers(scene: Scene):
    # SolrScenario.install registers the officers (and submits the ARO's ADT file) only in a
    # store that has none: registering the DCC's governance officers first leaves the SoLR
    # Party's SRO and ARO, and their ADT file, to the scenario.
    for officer_id in ("gov-alice", "gov-bob"):
        scene.solr.officer_keys[officer_id] = new_key_pem()
    officers.register_governance_officer(scene.store, "gov-alice", name="Alice (DCC governance)", public_key=public_pem(scene.solr.officer_keys["gov-alice"]), at=scene.now)
    officers.register_governance_officer(scene.store, "gov-bob", name="Bob (DCC governance)", public_key=public_pem(scene.solr.officer_keys["gov-bob"]), at=scene.now, by="gov-alice")
    scene.solr.install(scene.store, now=scene.now, adt=False)
    _ready(scene)
    assert [o.id for o in scene.store.list_officers()] == ["gov-alice", "gov-bob"]
    assert scene.store.list_adt_files() == []


@given("Failed Energy has failed and SoLR Contingency Services is its SoLR Party, and no instruction from Ofgem is recorded yet")
def failure_without_instruction(scene: Scene):
    scene.solr.install(scene.store, now=scene.now, instruction_status=None)
    _ready(scene)
    assert scene.store.instructions() == []


# -- R2: certificate subscriptions -------------------------------------------------------------


@when(gstep("SoLR Contingency Services asks the SMKI for {certificate:Certificate} for the {who:Who}"))
def ask_for_certificate(scene: Scene, certificate: str, who: str):
    role, usage = CERTIFICATES[certificate]
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()), role=role, eui=scene.builder(who).user.eui, usage=usage)
    scene.verdict = check_csr(csr, party=scene.solr.solr_party, role="SC", store=scene.store)


@then("the subscription is allowed")
def subscription_allowed(scene: Scene):
    verdict = scene.verdict
    assert verdict is not None, "no certificate was asked for"
    assert verdict.allowed and verdict.rule == ALLOWED, f"{verdict.rule}: {verdict.message}"
    assert verdict.requested_role == 135 and verdict.key_usage == ["digital_signature"], verdict.facts()
    assert parse_eui64(verdict.subject_eui) == scene.solr.user_eui, verdict.facts()


@then(gstep("the subscription is refused because {reason}"))
def subscription_refused(scene: Scene, reason: str):
    assert reason in REASONS, f"unknown reason {reason!r}; known reasons: {sorted(REASONS)}"
    expected = REASONS[reason]
    verdict = scene.verdict
    assert verdict is not None, "no certificate was asked for"
    assert not verdict.allowed, f"the subscription was allowed: {verdict.message}"
    assert verdict.rule == expected.rule, f"expected a refusal by {expected.rule}; got {verdict.rule}: {verdict.message}"


@given("the DCC's records show a Supplier Digital Signing certificate for the SoLR Contingency user")
def holds_digital_signing(scene: Scene):
    issued = scene.solr.pki.issue(scene.solr.user_eui, 2, usage="digital_signature")
    for record in read_certificates(issued.cert_pem):
        assert scene.store.put_certificate(record)
    scene.notes["digital signing certificate"] = issued
    held = scene.store.find_certificates(eui=scene.solr.user_eui, role=2)
    assert [c.serial for c in held] == [issued.serial]


@given("that Digital Signing certificate has been revoked")
def digital_signing_revoked(scene: Scene):
    issued = scene.notes["digital signing certificate"]
    (record,) = read_certificates(issued.cert_pem)
    assert scene.store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    assert scene.store.get_certificate(record.issuer, record.serial).status is SmkiStatus.REVOKED


# -- R4: officers ------------------------------------------------------------------------------


def _register_sro(scene: Scene, officer: str, person: str, party: str):
    officer_id = PEOPLE[person]
    return officers.register_sro(
        scene.store, officer_id, name=f"{person} (SRO)", party=party_id(scene, party),
        public_key=_new_key(scene, officer_id), by=OFFICERS[officer], at=scene.now,
    )


def _appoint_aro(scene: Scene, officer: str, person: str, party: str):
    officer_id = PEOPLE[person]
    return officers.appoint_aro(
        scene.store, officer_id, name=f"{person} (ARO)", party=party_id(scene, party),
        public_key=_new_key(scene, officer_id), by=OFFICERS[officer], at=scene.now,
    )


@given(gstep("{officer:Officer} has registered {person:Person} as the SRO of {party:Party}"))
def has_registered_sro(scene: Scene, officer: str, person: str, party: str):
    done(lambda: _register_sro(scene, officer, person, party))


@when(gstep("{officer:Officer} registers {person:Person} as the SRO of {party:Party}"))
def registers_sro(scene: Scene, officer: str, person: str, party: str):
    attempt(scene, lambda: _register_sro(scene, officer, person, party))


@given(gstep("{officer:Officer} has appointed {person:Person} as an ARO of {party:Party}"))
def has_appointed_aro(scene: Scene, officer: str, person: str, party: str):
    done(lambda: _appoint_aro(scene, officer, person, party))


@when(gstep("{officer:Officer} appoints {person:Person} as an ARO of {party:Party}"))
def appoints_aro(scene: Scene, officer: str, person: str, party: str):
    attempt(scene, lambda: _appoint_aro(scene, officer, person, party))


@given("Steady Power has its own SRO and ARO")
def steady_power_officers(scene: Scene):
    party = scene.solr.other_supplier
    sro_key, aro_key = _new_key(scene, "sro-steady"), _new_key(scene, "aro-steady")
    done(lambda: officers.register_sro(scene.store, "sro-steady", name="Steady Power's SRO", party=party, public_key=sro_key, by="gov-alice", at=scene.now))
    done(lambda: officers.appoint_aro(scene.store, "aro-steady", name="Steady Power's ARO", party=party, public_key=aro_key, by="sro-steady", at=scene.now))


@given(gstep("{officer:Officer} has removed {other:Officer} from office"))
def has_removed(scene: Scene, officer: str, other: str):
    done(lambda: officers.remove_officer(scene.store, OFFICERS[other], by=OFFICERS[officer], reason="has left the company", at=scene.now))
    assert scene.store.get_officer(OFFICERS[other]).status == "removed"


def _recorded(scene: Scene, person: str, kind: str, party: str, officer: str, audit_kind: str) -> None:
    assert scene.refusal is None, f"the step was refused: {scene.refusal}"
    record = scene.store.get_officer(PEOPLE[person])
    assert record is not None, f"{person} is not a registered officer"
    assert (record.kind, record.party, record.status) == (kind, party_id(scene, party), "active"), record
    assert record.appointed_by == OFFICERS[officer], record
    assert record.public_key and "BEGIN PUBLIC KEY" in record.public_key, "no key recorded"
    _audited(scene, audit_kind, OFFICERS[officer], officer=PEOPLE[person], party=party_id(scene, party))


@then(gstep("{person:Person} is recorded as the SRO of {party:Party}, registered by {officer:Officer}"))
def recorded_sro(scene: Scene, person: str, party: str, officer: str):
    _recorded(scene, person, "sro", party, officer, "officer.register-sro")


@then(gstep("{person:Person} is recorded as an ARO of {party:Party}, appointed by {officer:Officer}"))
def recorded_aro(scene: Scene, person: str, party: str, officer: str):
    _recorded(scene, person, "aro", party, officer, "officer.appoint-aro")


@then(gstep("{person:Person} holds no office"))
def holds_no_office(scene: Scene, person: str):
    assert scene.store.get_officer(PEOPLE[person]) is None


@then(gstep("the {what:Refusable} is refused because {reason}"))
def governance_refused(scene: Scene, what: str, reason: str):
    _refusal_matches(scene.refusal, reason)


# -- R4: ADT files -----------------------------------------------------------------------------


def _adt(scene: Scene, *, party: str, supplier: str, hour: int, day: int) -> bytes:
    reference = f"ADT-SPEC-{len(scene.store.list_adt_files()) + 1:03d}"
    scene.notes["adt reference"] = reference
    return scene.solr.adt_file(
        reference=reference, party=party_id(scene, party), supplier=party_id(scene, supplier),
        thresholds={"1.6": {"per_hour": hour, "per_day": day}},
    )


def _submit(scene: Scene, officer: str, data: bytes, signed: bytes | None = None):
    aro = OFFICERS[officer]
    signature = sign_adt(signed if signed is not None else data, scene.solr.officer_keys[aro])
    return submit_adt(scene.store, data, signature, aro=aro, at=scene.now)


@given(gstep("{officer:Officer} has submitted a signed ADT file naming {supplier:Party}, with at most {hour:d} switches to credit an hour and {day:d} a day"))
def has_submitted_adt(scene: Scene, officer: str, supplier: str, hour: int, day: int):
    data = _adt(scene, party="SoLR Contingency Services", supplier=supplier, hour=hour, day=day)
    done(lambda: _submit(scene, officer, data))


@when(gstep("{officer:Officer} submits a signed ADT file naming {supplier:Party}, with at most {hour:d} switches to credit an hour and {day:d} a day"))
def submits_adt(scene: Scene, officer: str, supplier: str, hour: int, day: int):
    data = _adt(scene, party="SoLR Contingency Services", supplier=supplier, hour=hour, day=day)
    attempt(scene, lambda: _submit(scene, officer, data))


@when(gstep("{officer:Officer} submits a signed ADT file on behalf of {party:Party}, naming {supplier:Party}, with at most {hour:d} switches to credit an hour and {day:d} a day"))
def submits_adt_for(scene: Scene, officer: str, party: str, supplier: str, hour: int, day: int):
    data = _adt(scene, party=party, supplier=supplier, hour=hour, day=day)
    attempt(scene, lambda: _submit(scene, officer, data))


@when(gstep("{officer:Officer} signs an ADT file naming {supplier:Party}, with at most {hour:d} switches to credit an hour and {day:d} a day, and it is changed to {changed:d} an hour before it is submitted"))
def submits_changed_adt(scene: Scene, officer: str, supplier: str, hour: int, day: int, changed: int):
    signed = _adt(scene, party="SoLR Contingency Services", supplier=supplier, hour=hour, day=day)
    data = signed.replace(f"per_hour: {hour},".encode(), f"per_hour: {changed},".encode())
    assert data != signed
    attempt(scene, lambda: _submit(scene, officer, data, signed=signed))


@then(gstep("the ADT file is recorded, naming {supplier:Party} with at most {hour:d} switches to credit an hour and {day:d} a day, submitted by {officer:Officer}"))
def adt_recorded(scene: Scene, supplier: str, hour: int, day: int, officer: str):
    assert scene.refusal is None, f"the ADT file was refused: {scene.refusal}"
    (current,) = scene.store.current_adt_files(scene.solr.user_eui)
    assert current.reference == scene.notes["adt reference"], current
    assert (current.supplier, current.aro, current.party) == (party_id(scene, supplier), OFFICERS[officer], scene.solr.solr_party)
    assert current.thresholds == {"1.6": {"per_hour": hour, "per_day": day}}
    _audited(scene, "adt.submit", OFFICERS[officer], reference=current.reference, supplier=party_id(scene, supplier))


@then("no ADT file is recorded for the SoLR Contingency user")
def no_adt_recorded(scene: Scene):
    assert scene.store.current_adt_files(scene.solr.user_eui) == []
    assert scene.store.list_adt_files() == []


@then(gstep("a request from the SoLR Contingency user to switch {meter:Meter} to credit is allowed"))
def request_then_allowed(scene: Scene, meter: str):
    scene.decide(SOLR_USER, _switch(scene, SOLR_USER, meter, "credit"))
    allowed(scene)


@then(gstep("a request from the SoLR Contingency user to switch {meter:Meter} to credit is refused because {reason}"))
def request_then_refused(scene: Scene, meter: str, reason: str):
    scene.decide(SOLR_USER, _switch(scene, SOLR_USER, meter, "credit"))
    refused(scene, reason)


# -- R4: thresholds and quarantine -------------------------------------------------------------


@given(gstep("the SoLR Contingency user has already switched {count:d} meters to credit this hour"))
def burst_so_far(scene: Scene, count: int):
    for n in range(count):
        meter = FAILED_SUPPLIER_METERS[n % len(FAILED_SUPPLIER_METERS)]
        decision = scene.decide(SOLR_USER, _switch(scene, SOLR_USER, meter, "credit"))
        assert decision.allowed, explain(decision)


@then("it is held for the daily threshold")
def held_for_the_day(scene: Scene):
    assert scene.decision is not None and "per day" in scene.decision.reasons[0].message, explain(scene.decision)


def _check_held(scene: Scene) -> None:
    decision = scene.decision
    assert decision is not None and decision.outcome == "quarantine", explain(decision)
    expected = OUTCOMES[HELD]
    assert decision.response_code == expected.code, explain(decision)
    assert [r.rule for r in decision.reasons] == [expected.rule], explain(decision)
    assert decision.quarantine_id is not None, "no quarantine item was made"
    item = scene.store.get_quarantine(decision.quarantine_id)
    assert item is not None and item.status == "held", item
    assert scene.store.quarantined_request(item.id).raw == scene.last_request, "the held item is not the request sent"
    assert item.originator == scene.solr.user_eui
    scene.held = decision.quarantine_id


@given(gstep("the SoLR Contingency user's next request, to switch {meter:Meter} to credit, is held in quarantine"))
def next_request_held(scene: Scene, meter: str):
    scene.decide(SOLR_USER, _switch(scene, SOLR_USER, meter, "credit"))
    _check_held(scene)


@then(HELD)
def request_held(scene: Scene):
    _check_held(scene)
    assert scene.held in [q.id for q in scene.store.list_quarantine(status=QuarantineStatus.HELD)]


def _release(scene: Scene, officer: str):
    return held_requests.release(scene.engine, scene.held, officer=OFFICERS[officer], reason="checked with the SoLR Party: a genuine batch", now=scene.now)


@when(gstep("{officer:Officer} releases the held request"))
def release_held(scene: Scene, officer: str):
    assert scene.held is not None, "no request is held"
    decision = attempt(scene, lambda: _release(scene, officer))
    if decision is not None:
        scene.decision = decision


@when(gstep("{officer:Officer} discards the held request"))
def discard_held(scene: Scene, officer: str):
    assert scene.held is not None, "no request is held"
    attempt(scene, lambda: held_requests.discard(scene.store, scene.held, officer=OFFICERS[officer], reason="not a genuine request", now=scene.now))


@then(gstep("the held request is recorded as {status:Held} by {officer:Officer}"))
def held_resolved(scene: Scene, status: str, officer: str):
    assert scene.refusal is None, f"the step was refused: {scene.refusal}"
    item = scene.store.get_quarantine(scene.held)
    assert (item.status, item.resolved_by) == (status, OFFICERS[officer]), item
    kind = {"released": "quarantine.release", "discarded": "quarantine.discard"}[status]
    _audited(scene, kind, OFFICERS[officer], item=scene.held)


@then("the request is still held")
def still_held(scene: Scene):
    item = scene.store.get_quarantine(scene.held)
    assert item.status == "held" and item.resolved_by is None, item


@then(gstep("a later release of it by {officer:Officer} is refused because {reason}"))
def later_release_refused(scene: Scene, officer: str, reason: str):
    before = scene.store.get_quarantine(scene.held).status
    attempt(scene, lambda: _release(scene, officer))
    _refusal_matches(scene.refusal, reason)
    assert scene.store.get_quarantine(scene.held).status == before


@given("an hour has passed")
def an_hour_passes(scene: Scene):
    scene.now += timedelta(hours=1)


# -- R6: the instruction's lifecycle -----------------------------------------------------------

SECOND_INSTRUCTION = "OFGEM-SOLR-2026-002"


def _propose(scene: Scene, officer: str, *, reference: str, start_days: int, days: int, scope=None, reason: str | None = None):
    start = scene.now + timedelta(days=start_days)
    instruction = Instruction(
        reference=reference,
        failed_supplier=scene.solr.failed_supplier,
        solr_party=scene.solr.solr_party,
        effective_from=start,
        effective_until=start + timedelta(days=days),
        scope=scope,
    )
    return instructions.propose(scene.store, instruction, officer=OFFICERS[officer], reason=reason or DEFAULT_REASONS["propose"], at=scene.now)


def _transition(scene: Scene, officer: str, action: str, reason: str | None = None):
    return instructions.transition(
        scene.store, scene.solr.instruction_ref, action, officer=OFFICERS[officer], reason=reason or DEFAULT_REASONS[action], at=scene.now
    )


@given(gstep("{officer:Officer} has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for {days:d} days"))
def has_proposed(scene: Scene, officer: str, days: int):
    done(lambda: _propose(scene, officer, reference=scene.solr.instruction_ref, start_days=-1, days=days))


@when(gstep("{officer:Officer} proposes Ofgem's instruction to act for Failed Energy's customers, from yesterday for {days:d} days"))
def proposes(scene: Scene, officer: str, days: int):
    attempt(scene, lambda: _propose(scene, officer, reference=scene.solr.instruction_ref, start_days=-1, days=days))


@given(gstep("{officer:Officer} has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for {days:d} days, limited to {meter:Meter}"))
def has_proposed_limited(scene: Scene, officer: str, days: int, meter: str):
    scope = [scene.meter_id(meter)]
    done(lambda: _propose(scene, officer, reference=scene.solr.instruction_ref, start_days=-1, days=days, scope=scope))
    assert scene.instruction().scope == tuple(scope)


@when(gstep("{officer:Officer} proposes a second instruction for Failed Energy's customers, starting in {start:d} days' time for {days:d} days"))
def proposes_second(scene: Scene, officer: str, start: int, days: int):
    attempt(scene, lambda: _propose(scene, officer, reference=SECOND_INSTRUCTION, start_days=start, days=days))


@given(gstep("{officer:Officer} has {done_:Done} the instruction"))
def has_transitioned(scene: Scene, officer: str, done_: str):
    done(lambda: _transition(scene, officer, DONE[done_]))


@when(gstep("{officer:Officer} {action:Action} the instruction"))
def transitions(scene: Scene, officer: str, action: str):
    attempt(scene, lambda: _transition(scene, officer, ACTIONS[action]))


@when("governance takes these steps on Ofgem's instruction to act for Failed Energy's customers:")
def steps_in_table(scene: Scene, datatable):
    header, *rows = datatable
    assert header == ["officer", "step", "reason"], header
    for officer, step_, reason in rows:
        if step_ == "proposes":
            take = partial(_propose, scene, officer, reference=scene.solr.instruction_ref, start_days=-1, days=30, reason=reason)
        else:
            take = partial(_transition, scene, officer, ACTIONS[step_], reason)
        attempt(scene, take)


@then(gstep("the instruction is proposed by {officer:Officer}, awaiting a second officer's approval"))
def awaiting_approval(scene: Scene, officer: str):
    assert scene.refusal is None, f"the step was refused: {scene.refusal}"
    instruction = scene.instruction()
    assert instruction.status is InstructionStatus.PROPOSED, instruction.status
    assert (instruction.proposed_by, instruction.approved_by) == (OFFICERS[officer], None)
    assert not instruction.in_force_at(scene.now)


@then("the instruction is still only proposed")
def still_proposed(scene: Scene):
    instruction = scene.instruction()
    assert instruction.status is InstructionStatus.PROPOSED and instruction.approved_by is None, instruction


@then(gstep("the instruction is in force, proposed by {proposer:Officer} and approved by {approver:Officer}"))
def in_force(scene: Scene, proposer: str, approver: str):
    assert scene.refusal is None, f"the step was refused: {scene.refusal}"
    instruction = scene.instruction()
    assert instruction.status is InstructionStatus.ACTIVE and instruction.in_force_at(scene.now), instruction
    assert (instruction.proposed_by, instruction.approved_by) == (OFFICERS[proposer], OFFICERS[approver])


@then(gstep("the instruction is {status:Status}"))
def instruction_status(scene: Scene, status: str):
    assert scene.instruction().status is STATUSES[status], scene.instruction()


@then("the second instruction is recorded as proposed")
def second_proposed(scene: Scene):
    assert scene.refusal is None, f"the proposal was refused: {scene.refusal}"
    second = scene.store.get_instruction(SECOND_INSTRUCTION)
    assert second is not None and second.status is InstructionStatus.PROPOSED


@then("no second instruction is recorded")
def no_second(scene: Scene):
    assert scene.store.get_instruction(SECOND_INSTRUCTION) is None


@then("the instruction's history shows each step with its officer and reason:")
def history(scene: Scene, datatable):
    header, *rows = datatable
    assert header == ["step", "officer", "reason"], header
    events = scene.store.instruction_events(scene.solr.instruction_ref)
    expected = [(ENTRIES[step_], OFFICERS[officer], reason) for step_, officer, reason in rows]
    assert [(e.action, e.officer, e.reason) for e in events] == expected


@then("the audit trail holds each attempt on the instruction, in order, with its officer:")
def audit_of_instruction(scene: Scene, datatable):
    header, *rows = datatable
    assert header == ["entry", "officer", "reason"], header
    entries = [e for e in scene.store.audit_entries(instruction=scene.solr.instruction_ref) if e.kind.startswith("instruction.")]
    expected = []
    for entry, officer, reason in rows:
        refused_attempt = entry.startswith("refused ")
        kind = f"instruction.{ENTRIES[entry.removeprefix('refused ')]}" + (".refused" if refused_attempt else "")
        expected.append((kind, OFFICERS[officer], reason))
    actual = []
    for e in entries:
        payload = e.payload_data()
        # A refused attempt records the refusal (rule and message) in place of a reason.
        actual.append((e.kind, e.actor, payload.get("reason") or payload.get("rule")))
    expected = [(k, o, REASONS[r].rule if k.endswith(".refused") else r) for k, o, r in expected]
    assert actual == expected


# -- R6 / R4: the audit trail ------------------------------------------------------------------


@given("the audit trail is intact")
def audit_intact(scene: Scene):
    check = scene.store.verify_audit()
    assert check.intact and check.entries > 0, check.message


@when(gstep("someone {change:Tamper} the audit trail's record of the {entry:Entry} by {officer:Officer}"))
def tamper(scene: Scene, change: str, entry: str, officer: str):
    (record,) = scene.store.audit_entries(kind=f"instruction.{ENTRIES[entry]}", actor=OFFICERS[officer])
    assert record.seq < len(scene.store.audit_entries()), "the scenario needs an entry after the one changed"
    scene.notes["tampered"] = record.seq
    if change == "alters":
        payload = record.payload_data()
        payload["reason"] = "approved without any check"
        scene.write_sql("UPDATE audit SET payload = ? WHERE seq = ?", json.dumps(payload, sort_keys=True, separators=(",", ":")), record.seq)
    else:
        scene.write_sql("DELETE FROM audit WHERE seq = ?", record.seq)


@then(gstep("the audit trail check reports the record of the {entry:Entry} by {officer:Officer} as {finding:Finding}"))
def audit_reports(scene: Scene, entry: str, officer: str, finding: str):
    seq = scene.notes["tampered"]
    check = scene.store.verify_audit()
    assert not check.intact, f"the check found nothing wrong: {check.message}"
    expected = {
        "altered": f"entry {seq} was altered (its hash does not match its content)",
        "missing": f"entry {seq} is missing (next is {seq + 1})",
    }[finding]
    assert check.message == expected, f"expected {expected!r}; the check said {check.message!r}"


@when("someone deletes the newest entry of the audit trail")
def delete_newest(scene: Scene):
    newest = scene.store.audit_entries()[-1].seq
    scene.notes["tampered"] = newest
    scene.write_sql("DELETE FROM audit WHERE seq = ?", newest)


@then("the audit trail check reports that its newest entries are missing")
def newest_missing(scene: Scene):
    newest = scene.notes["tampered"]
    check = scene.store.verify_audit()
    assert not check.intact, f"the check found nothing wrong: {check.message}"
    assert check.entries == newest - 1, check
    assert check.message.startswith(f"the chain ends at entry {newest - 1}, but entry {newest} was written"), check.message
