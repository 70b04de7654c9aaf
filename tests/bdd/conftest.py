"""Step definitions shared by the MP134B feature files (features/R*.feature).

The feature files speak the language of the SEC: Suppliers, SoLR Parties, Ofgem's
instruction, meters by their business names. This module turns those words into the
product's objects (a ``SolrScenario`` in a fresh SQLite store, signed DUIS requests from a
``RequestBuilder``, an ``Engine`` with the published policies) and checks the ``Decision``.

Two tables keep the vocabulary in one place:

* ``METERS``: a business label ("SMETS1 electricity meter") -> the scenario's Device.
* ``REASONS``: a business reason ("the role may not send that service request") -> the rule
  that must have refused the request and the DUIS response code the User would get.

A step text that uses a word not in these tables fails with the list of known words.

The steps for governance (R2 certificate subscriptions, R4 officers and ADT files, R6 the
instruction's lifecycle) are in ``steps_governance.py`` and those for alerts (R7) in
``steps_alerts.py``; both are imported at the end of this module so that pytest sees them.
They share the ``Scene`` and the ``REASONS`` table defined here.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from parse import with_pattern
from pytest_bdd import given, parsers, then, when

from solr_policy.crypto.certs import read_certificates
from solr_policy.decision import Decision
from solr_policy.engine import Engine
from solr_policy.errors import Refused
from solr_policy.testing.gbcs import build_general_signing
from solr_policy.governance.csr import CsrVerdict
from solr_policy.policy import PolicySet
from solr_policy.rules.r6_authority import DUIS_CANCELLATION
from solr_policy.crypto.sign import sign_duis
from solr_policy.testing.scenario import (
    ECS02_CREDIT,
    ECS03_PREPAYMENT,
    GCS02_CREDIT,
    GCS03_PREPAYMENT,
    AlertBuilder,
    RequestBuilder,
    SolrScenario,
    request_document,
)
from solr_policy.store import SqliteStore
from solr_policy.world import Device, DeviceType, InstructionStatus, Smets, User, UserStatus

PUBLISHED_POLICIES = Path(__file__).resolve().parents[2] / "policies"
SOLR_POLICY_FILE = "solr-contingency.yaml"

# -- vocabulary ----------------------------------------------------------------------------

# Business label of a meter -> the label SolrScenario gives it (None: a meter the DCC does
# not know, addressed by an identifier that is in no inventory).
METERS: dict[str, str | None] = {
    "the SMETS1 electricity meter": "electricity meter (SMETS1)",
    "the SMETS1 gas meter": "gas meter (SMETS1)",
    "the SMETS2 electricity meter": "electricity meter (SMETS2)",
    "the SMETS2 gas meter": "gas meter (SMETS2)",
    "another Supplier's meter": "other Supplier's electricity meter",
    "a meter the DCC does not know": None,
    # not a meter: brought in by its own Given step (SolrScenario installs meters only)
    "the in-home display": "in-home display",
}
IN_HOME_DISPLAY_ID = "00DB1234567890D0"
# The failed Supplier's four meters, which a burst of switches goes round.
FAILED_SUPPLIER_METERS = ("the SMETS1 electricity meter", "the SMETS1 gas meter", "the SMETS2 electricity meter", "the SMETS2 gas meter")
UNKNOWN_METER_ID = "00DB1234567890FF"

# The GBCS command a Signed Pre-Command carries, by fuel and target Payment Mode.
GBCS_COMMANDS = {
    (DeviceType.ESME, "credit"): ECS02_CREDIT,
    (DeviceType.ESME, "prepayment"): ECS03_PREPAYMENT,
    (DeviceType.GSME, "credit"): GCS02_CREDIT,
    (DeviceType.GSME, "prepayment"): GCS03_PREPAYMENT,
}
GBCS_CRA = {"command": 0x01, "response": 0x02, "alert": 0x03}

# Users other than the SoLR Contingency user that a scenario may bring in.
IMPORT_SUPPLIER_EUI = "90B3D51F300F0002"
UNREGISTERED_EUI = "90B3D51F300F0003"
SOLR_USER = "SoLR Contingency user"


class Expected(NamedTuple):
    rule: str
    code: str | None  # DUIS response code; None where the DUIS defines none
    says: str | None = None  # words the reason must contain, where two reasons share a rule


# Business reason (as written after "refused because") -> what the decision must show.
REASONS: dict[str, Expected] = {
    # R1 who is asking
    "the user is not known to the DCC": Expected("R1.known-user", "E1"),
    "the user does not hold the SoLR Contingency role": Expected("R1.user-role", "E1"),
    "the user is not active": Expected("R1.user-status", "E3"),
    "the user who signed the request is not the user it names as its sender": Expected("R1.originator-is-signer", "E1"),
    # R3 what they may ask for
    "the role may not send that service request": Expected("R3.srv-allowed", "E2"),
    "the service request may not be sent in that form": Expected("R3.command-variant", "E12"),
    "the content does not belong to that service request": Expected("R3.body-matches-srv", "E12"),
    "its service reference and service reference variant disagree": Expected("R3.srv-consistent", "E12"),
    # R5 what the command says
    "the request may only switch the meter to credit": Expected("R5.payment-mode", "E12"),
    "the signed command may only switch the meter to credit": Expected("R5.gbcs-message-code", "E12", "only"),
    "the signed command cannot be read": Expected("R5.gbcs-message-code", "E12", "cannot be read"),
    "the signed command is addressed to a different meter": Expected("R5.gbcs-recipient", "E12"),
    "the signed message is not a command": Expected("R5.gbcs-command", "E12"),
    "SMETS1 meters take only service requests": Expected("R5.smets1-service-request", "E12"),
    "nobody the policy trusts signed the command": Expected("R5.gbcs-signed", "E12"),
    "the signature on the command is not genuine": Expected("R5.gbcs-signed", "E12", "does not verify"),
    "the command is for the other kind of meter": Expected("R5.gbcs-fits-device", "E11"),
    "only electricity and gas meters have a payment mode to switch": Expected("R5.device-type", "E11"),
    "the signed command was made for another user": Expected("R5.gbcs-originator", "E12"),
    "the signed command repeats one already accepted": Expected("R5.gbcs-counter-fresh", "E12"),
    # R6 when and for whom
    "no Authority instruction is in force": Expected("R6.instruction-active", "E3"),
    "the meter does not belong to the failed Supplier": Expected("R6.device-of-failed-supplier", "E4", "not to the failed Supplier"),
    "the meter's Supplier is now another Supplier": Expected("R6.device-of-failed-supplier", "E4", "Supplier is now"),
    "the meter moves to another Supplier before the switch takes effect": Expected("R6.device-of-failed-supplier", "E4", "moves to Supplier"),
    "the meter is not one of those Ofgem's instruction names": Expected("R6.device-of-failed-supplier", "E4", "not in the scope"),
    "the DCC does not know that meter": Expected("R6.device-known", "E19"),
    "the switch would take effect after Ofgem's instruction ends": Expected("R6.execution-window", "E4"),
    "the role may not cancel future-dated commands": Expected("R6.no-cancellation", "E4"),
    "it repeats a request already accepted": Expected("R6.counter-fresh", None),
    # R2 what the user may hold, in operation
    "the user holds a Digital Signing certificate": Expected("R2.no-digital-signing-certificate", "E1"),
    # R4 the AROs' limits, in operation
    "no ADT file lets the role act for that Supplier's meters": Expected("R4.adt-covers-supplier", "E4"),
    # -- refusals outside a DUIS request: no DUIS response code (code None) -----------------
    # R2 certificate subscriptions (the SMKI gate)
    "the role may never hold a Digital Signing certificate": Expected("R2.digital-signing-forbidden", None),
    "the role may not hold Key Agreement certificates": Expected("R2.key-agreement-refused", None),
    "the role may hold XML Signing certificates only": Expected("R2.role-refused", None),
    "the certificate would be for a user of another Party": Expected("R2.eui-not-a-user-of-party", None),
    # R4 officers and ADT files
    "the Party already has an SRO": Expected("R4.one-sro", None),
    "only an SRO may appoint an ARO": Expected("governance.officer-kind", None, "this needs SRO"),
    "the officer is an officer of another Party": Expected("governance.officer-party", None),
    "the ARO has been removed": Expected("governance.officer-removed", None),
    "the file was changed after it was signed": Expected("R4.adt-signature", None),
    "the file counts in a window that does not divide an hour or a day evenly": Expected("R4.adt-format", None, "per_N_minutes"),
    "it names a request that is not held": Expected("R4.exit-quarantine", None, "no such quarantined request"),
    "it names requests of another Party's Users": Expected("R4.exit-quarantine", None, "is not a request of Party"),
    "the file is for a Party other than the ARO's": Expected("R4.adt-party", None),
    "the request is no longer held": Expected("R4.quarantine-not-held", None),
    # R6 the instruction's lifecycle
    "the officer who proposed it may not also approve it": Expected("R6.four-eyes", None),
    "another instruction already covers Failed Energy at that time": Expected("R6.instruction-overlap", None),
    "an ended instruction cannot be resumed": Expected("R6.instruction-state", None, "is ended"),
}

# Outcomes that are neither allowed nor refused, as the Then steps write them -> the one rule
# that must have decided it and the code the User gets (tests/bdd/test_rule_coverage.py reads
# this table and REASONS to find the scenarios that exercise each rule).
HELD = "the request is held in quarantine until an officer decides"
DELETED = "the request is deleted, not quarantined, and nothing of it is kept to release"
OUTCOMES: dict[str, Expected] = {
    HELD: Expected("R4.adt-threshold", "AD1"),
    DELETED: Expected("R4.smets1-data-values", "AD1"),
}


def _choice(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@with_pattern(_choice(METERS))
def _meter(text: str) -> str:
    return text


@with_pattern("credit|prepayment")
def _mode(text: str) -> str:
    return text


@with_pattern(_choice([SOLR_USER, "Import Supplier user", "unknown user"]))
def _who(text: str) -> str:
    return text


TYPES = {"Meter": _meter, "Mode": _mode, "Who": _who}


def step(text: str):
    """``parsers.parse`` with the business types {meter:Meter}, {mode:Mode}, {who:Who}."""
    return parsers.parse(text, extra_types=TYPES)


# -- the world of one scenario -------------------------------------------------------------


@dataclass
class Scene:
    """Everything one scenario sets up and decides; a fresh store each time."""

    store: SqliteStore
    folder: Path
    now: datetime
    solr: SolrScenario = field(default_factory=SolrScenario)
    engine: Engine | None = None
    users: dict[str, RequestBuilder] = field(default_factory=dict)
    decision: Decision | None = None
    last_request: bytes | None = None
    last_who: str | None = None
    counter_before: int | None = None
    # governance (steps_governance.py): the last step refused, the last SMKI gate verdict,
    # the request held in quarantine, and what a Given leaves for later steps, by name
    refusal: Refused | None = None
    policy_changes: list = field(default_factory=list)
    # governance you can prove (steps_proof.py): the signed log, and the last act's refusal
    keeper: Any = None
    verdict: CsrVerdict | None = None
    held: int | None = None
    notes: dict[str, object] = field(default_factory=dict)
    # alerts (steps_alerts.py): the DCC's alert signer and every alert sent, with its delivery
    alerts: AlertBuilder | None = None
    sent: list = field(default_factory=list)

    def write_sql(self, sql: str, *params: object) -> None:
        """Change the SQLite file behind the store's back (tampering, a missing instruction)."""
        with closing(sqlite3.connect(self.store.path)) as conn, conn:
            conn.execute(sql, params)

    # the meters
    def meter_id(self, label: str) -> str:
        scenario_label = METERS[label]
        return UNKNOWN_METER_ID if scenario_label is None else self.solr.device(scenario_label)

    def meter_type(self, label: str) -> DeviceType:
        scenario_label = METERS[label]
        return DeviceType.ESME if scenario_label is None else self.solr.devices[scenario_label].type

    # the users
    def builder(self, who: str) -> RequestBuilder:
        if who not in self.users:
            raise AssertionError(f"the scenario has not introduced the {who} (known: {', '.join(self.users)})")
        return self.users[who]

    def add_user(self, label: str, eui: str, *, role: str | None, party: str) -> None:
        issued = self.solr.pki.issue(eui, 135)  # an XML Sign certificate, as DUIS Users sign with
        for record in read_certificates(issued.cert_pem):
            self.store.put_certificate(record)
        if role is not None:
            self.store.put_user(User(id=eui, party=party, role=role))
        self.users[label] = RequestBuilder(issued)

    # the policies
    def use_policies(self, folder: Path) -> None:
        self.engine = Engine(self.store, PolicySet.load_dir(folder), audit_log=self.keeper)

    def changed_policy(self, change) -> None:
        """Copy the published policy folder, apply this and the scenario's earlier changes to
        the SoLR policy, use the copy."""
        self.policy_changes.append(change)
        folder = self.folder / "policies"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(PUBLISHED_POLICIES, folder)
        path = folder / SOLR_POLICY_FILE
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for each in self.policy_changes:
            each(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        self.use_policies(folder)

    # the decisions
    def decide(self, who: str, raw: bytes) -> Decision:
        assert self.engine is not None, "the Background must set up the SoLR event first"
        self.last_request, self.last_who = raw, who
        self.decision = self.engine.decide(raw, now=self.now)
        return self.decision

    def instruction(self):
        instruction = self.store.get_instruction(self.solr.instruction_ref)
        assert instruction is not None, "no instruction from Ofgem in the store"
        return instruction

    def change_instruction(self, **updates) -> None:
        self.store.put_instruction(self.instruction().model_copy(update=updates))


@pytest.fixture()
def scene(tmp_path) -> Scene:
    store = SqliteStore(tmp_path / "spec.db")
    yield Scene(store=store, folder=tmp_path, now=datetime.now(timezone.utc).replace(microsecond=0))
    store.close()


def explain(decision: Decision | None) -> str:
    if decision is None:
        return "no decision was made"
    reasons = "; ".join(f"{r.rule} [{r.code or '-'}] {r.message}" for r in decision.reasons)
    return f"outcome {decision.outcome}, code {decision.response_code}: {reasons}"


# -- Given: the SoLR event -----------------------------------------------------------------


@given("Failed Energy has failed and SoLR Contingency Services is its SoLR Party")
def supplier_failure(scene: Scene):
    scene.solr.install(scene.store, now=scene.now)
    assert scene.store.get_party(scene.solr.failed_supplier) is not None
    scene.users[SOLR_USER] = scene.solr.requests()
    scene.use_policies(PUBLISHED_POLICIES)


@given("SoLR Contingency Services has a registered SoLR Contingency user")
def solr_user_registered(scene: Scene):
    user = scene.store.get_user(scene.solr.user_eui)
    assert user is not None and user.party == scene.solr.solr_party
    assert user.role == "SC" and user.status is UserStatus.ACTIVE


@given(parsers.parse("Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for {days:d} days"))
def instruction_in_force(scene: Scene, days: int):
    start = scene.now - timedelta(days=1)
    scene.change_instruction(
        failed_supplier=scene.solr.failed_supplier,
        solr_party=scene.solr.solr_party,
        effective_from=start,
        effective_until=start + timedelta(days=days),
        status=InstructionStatus.ACTIVE,
    )
    assert scene.instruction().in_force_at(scene.now)


@given("Ofgem's instruction takes effect only from tomorrow")
def instruction_starts_tomorrow(scene: Scene):
    scene.change_instruction(effective_from=scene.now + timedelta(days=1))
    assert not scene.instruction().in_force_at(scene.now)


@given("Ofgem has given no instruction")
def no_instruction(scene: Scene):
    # The store has no "remove instruction" operation; an instruction never given is simply
    # absent, so the one the scenario installed is deleted outright.
    scene.write_sql("DELETE FROM instructions")
    assert scene.store.instructions() == []


@given(parsers.parse("{days:d} days have passed"))
def time_passes(scene: Scene, days: int):
    scene.now += timedelta(days=days)


# -- Given: users ----------------------------------------------------------------------------


@given(parsers.parse("the SoLR Contingency user has been {status} by the DCC"))
def solr_user_status(scene: Scene, status: str):
    user = scene.store.get_user(scene.solr.user_eui)
    scene.store.put_user(user.model_copy(update={"status": UserStatus(status)}))
    assert scene.store.get_user(scene.solr.user_eui).status.value == status


@given("an Import Supplier user of Steady Power is registered with the DCC")
def import_supplier_user(scene: Scene):
    scene.add_user("Import Supplier user", IMPORT_SUPPLIER_EUI, role="IS", party=scene.solr.other_supplier)


@given("a Failed Energy customer's in-home display is registered with the DCC")
def in_home_display(scene: Scene):
    device = Device(id=IN_HOME_DISPLAY_ID, type=DeviceType.IHD, smets=Smets.SMETS2, supplier=scene.solr.failed_supplier)
    scene.store.put_device(device)
    scene.solr.devices[METERS["the in-home display"]] = device


@given("a user unknown to the DCC holds a valid signing certificate")
def unknown_user(scene: Scene):
    scene.add_user("unknown user", UNREGISTERED_EUI, role=None, party="")
    assert scene.store.get_user(UNREGISTERED_EUI) is None


# -- Given: the policy file ------------------------------------------------------------------


@given("the SoLR Contingency policy file gains these lines in its list of allowed service requests:")
def policy_gains_srvs(scene: Scene, docstring: str):
    added = yaml.safe_load(docstring)
    assert isinstance(added, dict) and added, "the lines must describe at least one SRV"
    scene.changed_policy(lambda data: data["srvs"].update({str(k): v for k, v in added.items()}))
    policy = scene.engine.policies.for_role("SC")
    assert set(added) <= set(policy.srvs)


@given("the SoLR Contingency policy file is changed to say:")
def policy_changed(scene: Scene, docstring: str):
    changes = yaml.safe_load(docstring)
    assert isinstance(changes, dict) and changes and "srvs" not in changes
    scene.changed_policy(lambda data: data.update(changes))
    policy = scene.engine.policies.for_role("SC")
    for key, value in changes.items():
        assert getattr(policy, key) == value


@given("the DCC's Pre-Command signing service is trusted to sign the SoLR Contingency role's commands")
def pre_command_signer_trusted(scene: Scene):
    signer = {"eui": scene.solr.pre_command_signer_eui, "role": 2, "note": "the DCC's Pre-Command signing service"}
    scene.changed_policy(lambda data: data.update(pre_command_signers=[signer]))
    assert scene.engine.policies.for_role("SC").pre_command_signers


@given("the SoLR Contingency policy file is as published")
def policy_as_published(scene: Scene):
    scene.policy_changes.clear()
    scene.use_policies(PUBLISHED_POLICIES)
    assert scene.engine.policies.for_role("SC").pre_command_signers == ()


# -- Given/When: requests --------------------------------------------------------------------


def _switch(scene: Scene, who: str, meter: str, mode: str, **kw) -> bytes:
    ask = scene.builder(who)
    device = scene.meter_id(meter)
    if mode == "credit":
        return ask.switch_to_credit(device, **kw)
    assert not kw, "a future-dated switch to prepayment is not modelled"
    return ask.switch_to_prepayment(device)


def _signed(scene: Scene, who: str, meter: str, mode: str, **kw) -> bytes:
    code = GBCS_COMMANDS[(scene.meter_type(meter), mode)]
    return scene.builder(who).signed_pre_command(scene.meter_id(meter), code, **kw)


@given(step("the {who:Who} has switched {meter:Meter} to {mode:Mode}"))
def has_switched(scene: Scene, who: str, meter: str, mode: str):
    decision = scene.decide(who, _switch(scene, who, meter, mode))
    assert decision.allowed, explain(decision)


@given(step("the {who:Who} has arranged for {meter:Meter} to switch to credit in {days:d} days' time"))
def has_arranged(scene: Scene, who: str, meter: str, days: int):
    decision = scene.decide(who, _switch(scene, who, meter, "credit", execution=scene.now + timedelta(days=days)))
    assert decision.allowed, explain(decision)


@when(step("the {who:Who} asks to switch {meter:Meter} to {mode:Mode}"))
def ask_switch(scene: Scene, who: str, meter: str, mode: str):
    scene.decide(who, _switch(scene, who, meter, mode))


@when(step("the {who:Who} asks to switch {meter:Meter} to credit in {days:d} days' time"))
def ask_switch_later(scene: Scene, who: str, meter: str, days: int):
    scene.decide(who, _switch(scene, who, meter, "credit", execution=scene.now + timedelta(days=days)))


@when(step("the {who:Who} asks to cancel the future-dated switch of {meter:Meter}"))
def ask_cancel(scene: Scene, who: str, meter: str):
    # DUIS cancels a future-dated command by sending it again to execute on 3000-12-31.
    scene.decide(who, _switch(scene, who, meter, "credit", execution=DUIS_CANCELLATION))


@when(step("the {who:Who} asks to switch {meter:Meter} to {mode:Mode} using command variant {cv:d}"))
def ask_switch_cv(scene: Scene, who: str, meter: str, mode: str, cv: int):
    assert mode == "credit"
    body = "<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>"
    scene.decide(who, scene.builder(who).other(scene.meter_id(meter), srv="1.6", cv=cv, body=body))


UPDATE_PAYMENT_MODE_TO_CREDIT = "<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>"


@when(step("the {who:Who} signs a request to switch {meter:Meter} to credit that names the {named:Who} as its sender"))
def ask_in_anothers_name(scene: Scene, who: str, meter: str, named: str):
    signer, sender = scene.builder(who).user, scene.builder(named)
    assert signer.eui != sender.user.eui
    document = request_document(originator=sender.user.eui, target=scene.meter_id(meter), counter=sender.counter + 1,
                                srv="1.6", cv=4, body=UPDATE_PAYMENT_MODE_TO_CREDIT)
    scene.decide(who, sign_duis(document, signer.key_pem, signer.cert_pem))


@when(step("the {who:Who} asks to switch {meter:Meter} to credit in a request whose service reference is 1.5 Update Meter Balance"))
def ask_switch_under_other_reference(scene: Scene, who: str, meter: str):
    ask = scene.builder(who)
    # ServiceReference 1.5 with ServiceReferenceVariant 1.6: the header names two services.
    document = request_document(originator=ask.user.eui, target=scene.meter_id(meter), counter=ask.counter + 1,
                                srv="1.5", srv_variant="1.6", cv=4, body=UPDATE_PAYMENT_MODE_TO_CREDIT)
    scene.decide(who, sign_duis(document, ask.user.key_pem, ask.user.cert_pem))


@when(step("the {who:Who} asks to update the meter balance of {meter:Meter}"))
def ask_update_balance(scene: Scene, who: str, meter: str):
    scene.decide(who, scene.builder(who).update_meter_balance(scene.meter_id(meter)))


@when(step("the {who:Who} asks to read the prepay values of {meter:Meter}"))
def ask_read_prepay(scene: Scene, who: str, meter: str):
    body = "<sr:ReadInstantaneousPrepayValues/>"
    scene.decide(who, scene.builder(who).other(scene.meter_id(meter), srv="4.3", cv=1, body=body))


@when(step("the {who:Who} sends an Update Payment Mode request for {meter:Meter} that carries a meter balance update"))
def ask_mismatched_body(scene: Scene, who: str, meter: str):
    body = (
        "<sr:UpdateMeterBalance><sr:PrepaymentMode><sr:AdjustMeterBalance>1200000</sr:AdjustMeterBalance>"
        "</sr:PrepaymentMode></sr:UpdateMeterBalance>"
    )
    scene.decide(who, scene.builder(who).other(scene.meter_id(meter), srv="1.6", cv=4, body=body))


@when(step("the {who:Who} sends a signed command to switch {meter:Meter} to {mode:Mode}"))
def send_signed(scene: Scene, who: str, meter: str, mode: str):
    scene.decide(who, _signed(scene, who, meter, mode))


@when(step("the {who:Who} sends a signed command to switch {meter:Meter} to {mode:Mode}, addressed inside to {other:Meter}"))
def send_signed_readdressed(scene: Scene, who: str, meter: str, mode: str, other: str):
    assert other != meter
    scene.decide(who, _signed(scene, who, meter, mode, recipient=scene.meter_id(other)))


@when(step("the {who:Who} sends a signed command to switch {meter:Meter} to credit that was made for the {other:Who}"))
def send_signed_for_another(scene: Scene, who: str, meter: str, other: str):
    ask = scene.builder(who)
    assert ask.gbcs_signer is not None, "the Background must trust a Pre-Command signer"
    counter = ask.counter + 1
    # Signed by the trusted signer, so only the GBCS originator (another User) is wrong.
    command = build_general_signing(
        message_code=GBCS_COMMANDS[(scene.meter_type(meter), "credit")], originator=scene.builder(other).user.eui,
        recipient=scene.meter_id(meter), counter=counter, key=ask.gbcs_signer.key,
    )
    scene.decide(who, ask.signed_pre_command(scene.meter_id(meter), 0, counter=counter, payload=command))


@given(step("the {who:Who} has sent a signed command to switch {meter:Meter} to credit"))
def has_sent_signed(scene: Scene, who: str, meter: str):
    ask = scene.builder(who)
    assert ask.gbcs_signer is not None, "the Background must trust a Pre-Command signer"
    counter = ask.counter + 1
    command = build_general_signing(
        message_code=GBCS_COMMANDS[(scene.meter_type(meter), "credit")], originator=ask.user.eui,
        recipient=scene.meter_id(meter), counter=counter, key=ask.gbcs_signer.key,
    )
    decision = scene.decide(who, ask.signed_pre_command(scene.meter_id(meter), 0, counter=counter, payload=command))
    assert decision.allowed, explain(decision)
    scene.notes["signed command"] = (meter, command)


@when(step("the {who:Who} sends the same signed command again, in a new request"))
def send_signed_again(scene: Scene, who: str):
    meter, command = scene.notes["signed command"]
    ask = scene.builder(who)
    # A new DUIS request (its own, higher counter) carrying the command already accepted.
    scene.decide(who, ask.signed_pre_command(scene.meter_id(meter), 0, payload=command))


@when(step("the {who:Who} sends a signed {kind} to {meter:Meter} instead of a command"))
def send_signed_not_command(scene: Scene, who: str, meter: str, kind: str):
    scene.decide(who, _signed(scene, who, meter, "credit", cra=GBCS_CRA[kind]))


@when(step("the {who:Who} sends a command to switch {meter:Meter} to credit that it signed itself"))
def send_self_signed(scene: Scene, who: str, meter: str):
    ask = scene.builder(who)
    own = RequestBuilder(ask.user, ask.counter)  # GBCS signed with the User's own key
    scene.decide(who, own.signed_pre_command(scene.meter_id(meter), GBCS_COMMANDS[(scene.meter_type(meter), "credit")]))
    ask.counter = own.counter


@when(step("the {who:Who} sends a command to switch {meter:Meter} to credit whose signature is all zeros"))
def send_zero_signature(scene: Scene, who: str, meter: str):
    ask = scene.builder(who)
    counter = ask.counter + 1
    unsigned = build_general_signing(
        message_code=GBCS_COMMANDS[(scene.meter_type(meter), "credit")], originator=ask.user.eui,
        recipient=scene.meter_id(meter), counter=counter,
    )
    scene.decide(who, ask.signed_pre_command(scene.meter_id(meter), 0, counter=counter, payload=unsigned + b"\x40" + bytes(64)))


@when(step("the {who:Who} sends a signed {fuel} meter command to switch {meter:Meter} to credit"))
def send_other_fuel(scene: Scene, who: str, fuel: str, meter: str):
    device_type = {"electricity": DeviceType.ESME, "gas": DeviceType.GSME}[fuel]
    scene.decide(who, scene.builder(who).signed_pre_command(scene.meter_id(meter), GBCS_COMMANDS[(device_type, "credit")]))


@when(step("the {who:Who} sends a signed command to switch {meter:Meter} to credit that has been cut short"))
def send_signed_truncated(scene: Scene, who: str, meter: str):
    ask = scene.builder(who)
    counter = ask.counter + 1
    whole = build_general_signing(
        message_code=GBCS_COMMANDS[(scene.meter_type(meter), "credit")],
        originator=ask.user.eui,
        recipient=scene.meter_id(meter),
        counter=counter,
        key=ask.user.key,
    )
    damaged = whole[:20]  # stops inside the GBCS header
    scene.decide(who, ask.signed_pre_command(scene.meter_id(meter), 0, counter=counter, payload=damaged))


@when("the same request is sent again")
def send_again(scene: Scene):
    assert scene.last_request is not None and scene.last_who is not None
    scene.counter_before = scene.store.get_counter(scene.solr.user_eui)
    assert scene.counter_before is not None, "the first request should have been counted"
    scene.decide(scene.last_who, scene.last_request)


# -- Then ------------------------------------------------------------------------------------


@then("the request is allowed")
def allowed(scene: Scene):
    decision = scene.decision
    assert decision is not None and decision.allowed, explain(decision)
    assert decision.response_code == "I99", explain(decision)


@then(parsers.parse("the request is refused because {reason}"))
def refused(scene: Scene, reason: str):
    assert reason in REASONS, f"unknown reason {reason!r}; known reasons: {sorted(REASONS)}"
    expected = REASONS[reason]
    decision = scene.decision
    assert decision is not None and decision.outcome == "reject", explain(decision)
    rules = [r.rule for r in decision.reasons]
    assert expected.rule in rules, f"expected a refusal by {expected.rule}; got {explain(decision)}"
    if expected.code is not None:
        assert decision.response_code == expected.code, f"expected DUIS code {expected.code}; got {explain(decision)}"
    if expected.says is not None:
        messages = [r.message for r in decision.reasons if r.rule == expected.rule]
        assert any(expected.says in m for m in messages), f"expected {expected.says!r} in {messages}"


@then("Update Payment Mode (SRV 1.6) is the only service request on the SoLR Contingency role's list")
def only_srv_16(scene: Scene):
    decision = scene.decision
    assert decision is not None and decision.request["srv"] == "1.6", explain(decision)
    assert [c.result for c in decision.checks if c.rule == "R3.srv-allowed"] == ["pass"], explain(decision)
    policy = scene.engine.policies.for_role("SC")
    assert [(srv, rule.name) for srv, rule in policy.srvs.items()] == [("1.6", "Update Payment Mode")]


@then("the decision names Ofgem's instruction as what allowed the role to act")
def names_instruction(scene: Scene):
    decision = scene.decision
    assert decision is not None, "no decision"
    checks = [c for c in decision.checks if c.rule == "R6.instruction-active"]
    assert checks and checks[0].result == "pass", explain(decision)
    assert scene.solr.instruction_ref in checks[0].message, checks[0].message


@then("the decision was made under the SoLR Contingency role's policy")
def under_solr_policy(scene: Scene):
    decision = scene.decision
    assert decision is not None and decision.policy == "solr-contingency", explain(decision)
    role_checks = [c for c in decision.checks if c.rule == "R1.user-role"]
    assert role_checks and role_checks[0].result == "pass", explain(decision)
    assert "SoLR Contingency" in role_checks[0].message


@then("the refused copy changed nothing, so a new request from the SoLR Contingency user is still allowed")
def replay_changed_nothing(scene: Scene):
    assert scene.store.get_counter(scene.solr.user_eui) == scene.counter_before
    decision = scene.decide(SOLR_USER, _switch(scene, SOLR_USER, "the SMETS1 gas meter", "credit"))
    assert decision.allowed, explain(decision)


# -- the other step modules (imported last: they use the names above) ----------------------

from .steps_alerts import *
from .steps_dcc import *
from .steps_governance import *
from .steps_proof import *
