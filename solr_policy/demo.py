"""The README's main job: a demo on the embedded default store (SQLite).

Everything it needs is made on the fly (a throw-away SMKI-shaped PKI, requests, payloads);
where ../shared/reference is present it also inspects the real GBCS vectors.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from solr_policy import logs
from solr_policy.decision import Decision, Reason
from solr_policy.records import AlertStatus, AuditEntry
from solr_policy.store import SqliteStore

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def _title(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def _gbcs_section() -> None:
    from solr_policy.gbcs import decode_general_signing, parse_payload_text

    _title("Real GBCS Pre-Commands, General-Signing header")
    vectors = sorted((REFERENCE / "gbcs-vectors").glob("*.HEX")) if REFERENCE.is_dir() else []
    if not vectors:
        print("(../shared/reference not found: skipping the real vectors)")
    for path in vectors:
        header = decode_general_signing(parse_payload_text(path.read_text()))
        print(
            f"{path.name[:40]:40}  {header.message_code_hex} {header.use_case or '?':6} "
            f"{header.use_case_name or '':38} counter={header.originator_counter} "
            f"to={header.recipient}"
        )


def _table(rows: list[tuple[str, Decision]]) -> None:
    width = max([52, *(len(label) for label, _ in rows)])  # a longer label widens the column, not one row
    print(f"{'#':>2}  {'request':{width}} {'outcome':10} {'code':5} reason")
    for number, (label, decision) in enumerate(rows, start=1):
        reasons = decision.reasons if decision.outcome != "allow" else []
        first = f"{reasons[0].rule}: {reasons[0].message}" if reasons else "every rule passed"
        print(f"{number:>2}  {label:{width}} {decision.outcome:10} {decision.response_code or '-':5} {first}")
        for extra in reasons[1:]:
            print(f"{'':{width + 23}}{extra.rule}: {extra.message}")


def _step(text: str) -> None:
    print(f"  - {text}")


def run_demo(workdir: str | None = None) -> int:
    from datetime import timedelta

    from solr_policy.alerts.routing import AlertRouter
    from solr_policy.engine import Engine
    from solr_policy.errors import GovernanceRefused
    from solr_policy.governance.acts import Governance
    from solr_policy.governance.bootstrap import init_store
    from solr_policy.governance.certificates import import_certificates
    from solr_policy.policy import PolicySet, default_policy_dir
    from solr_policy.testing.governance import Signatories
    from solr_policy.testing.pki import TestPki
    from solr_policy.testing.scenario import (
        ECS03_PREPAYMENT,
        GCS02_CREDIT,
        SolrScenario,
    )
    from solr_policy.transparency.checkpoint import (
        generate_log_key,
        public_key_pem,
        save_private_key,
    )
    from solr_policy.transparency.log import LogKeeper
    from solr_policy.transparency.proofs import check_inclusion

    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="solr-policy-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "solr-policy.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), folder / "log-key.pem", folder / "checkpoint"):
        stale.unlink(missing_ok=True)
    store = SqliteStore(db)
    log_file = (folder / "decisions.log").open("a", encoding="utf-8")
    logs.configure("json", stream=log_file)  # one JSON event per decision, kept beside the store
    print(f"solr-policy demo: a SoLR event on the embedded store {db}")
    now = datetime.now(timezone.utc)

    _gbcs_section()

    _title("Bootstrap: two governance officers and the log's own key")
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 4, "per_day": 50}})
    officers = Signatories(keys=scenario.officer_keys)
    log_key = generate_log_key()
    save_private_key(folder / "log-key.pem", log_key)
    (folder / "log-key.pub.pem").write_bytes(public_key_pem(log_key))
    keeper = LogKeeper(store, log_key.public_key(), key=log_key, checkpoint_file=folder / "checkpoint")
    init_store(store, [("gov-alice", "Alice (DCC governance)", officers.public("gov-alice")),
                       ("gov-bob", "Bob (DCC governance)", officers.public("gov-bob"))], at=now, log=keeper)
    _step("init: gov-alice and gov-bob registered with their public keys (the log's first entry); first checkpoint written")

    _title("The scenario (reference data)")
    scenario.install(store, now=now, instruction_status=None, adt=False)
    published = PolicySet.load_dir(default_policy_dir())
    # The published policy trusts nobody to sign Pre-Commands (MP134B R2); this deployment
    # trusts a DCC Pre-Command signing service, named in its copy of the policy.
    policies = PolicySet.load_dir(scenario.write_policies(folder / "policies"))
    print(f"Failed Supplier {scenario.failed_supplier}; SoLR Party {scenario.solr_party}; "
          f"SoLR Contingency User {scenario.user_eui} (XML Sign certificate made on the fly)")
    for label, device in scenario.devices.items():
        print(f"  {label:38} {device.id}  Supplier {device.supplier}")
    for code, policy in sorted(policies.by_role.items()):
        print(f"Policy {policy.policy} v{policy.version} for role {code}: SRVs {', '.join(policy.srvs)}")

    engine = Engine(store, policies, audit_log=keeper)
    router = AlertRouter(store, policies=policies)
    gov = Governance(store, engine=engine, router=router, log=keeper)
    ask = scenario.requests()
    rows: list[tuple[str, Decision]] = []

    def act(action: str, params: dict, officer: str, cosigner: str | None = None, key_of: str | None = None) -> str:
        try:
            gov.submit(officers.statement(action, params, officer=officer, at=now, cosigner=cosigner, key_of=key_of), now=now)
        except GovernanceRefused as refusal:
            _step(f"{action} signed by {key_of or officer}{' + ' + cosigner if cosigner else ''}: REFUSED ({refusal.rule}: {refusal.message})")
            return refusal.rule
        _step(f"{action} signed by {officer}{' + ' + cosigner if cosigner else ''}: applied")
        return "applied"

    def decide(label: str, raw: bytes, when: datetime = now) -> Decision:
        decision = engine.decide(raw, now=when)
        rows.append((label, decision))
        return decision

    _title("Signed governance acts")
    ca = TestPki("SMKI-ORG-CA")
    outcomes = [act("anchor.add", {"certificate": ca.ca_cert_pem.decode()}, "gov-alice", cosigner="gov-bob")]
    (imported,) = import_certificates(store, ca.issue("90B3D51F300F0009", 135).cert_pem, source="new-user.pem", at=now)
    _step(f"certs import of a certificate the anchor issued: imported={imported.imported}")
    (forged,) = import_certificates(store, TestPki("SMKI-ORG-CA").issue("90B3D51F300F0009", 135).cert_pem, source="look-alike.pem", at=now)
    _step(f"certs import from a look-alike CA (same name, another key): imported={forged.imported} ({forged.reason['message'] if forged.reason else ''})")
    outcomes.append(act("officer.register-governance", {"officer": "gov-alice2", "name": "Alice again",
                                                        "public_key": officers.public("gov-alice2")}, "gov-alice"))
    outcomes.append(act("officer.register-sro", {"officer": "sro-sam", "name": "Sam (SRO)", "party": scenario.solr_party,
                                                 "public_key": officers.public("sro-sam")}, "gov-alice"))
    outcomes.append(act("officer.appoint-aro", {"officer": "aro-ann", "name": "Ann (ARO)", "party": scenario.solr_party,
                                                "public_key": officers.public("aro-ann")}, "sro-sam"))
    from solr_policy.governance.adt import sign_adt

    adt = scenario.adt_file()
    outcomes.append(act("adt.submit", {"file": adt.decode(), "signature": sign_adt(adt, officers.key_for("aro-ann")).decode()}, "aro-ann"))
    proposal = {"reference": scenario.instruction_ref, "failed_supplier": scenario.failed_supplier, "solr_party": scenario.solr_party,
                "effective_from": (now - timedelta(minutes=5)).isoformat(), "effective_until": (now + timedelta(days=30)).isoformat(),
                "reason": "Ofgem letter: Failed Energy has failed"}
    outcomes.append(act("instruction.propose", proposal, "gov-alice"))
    decide("credit before the instruction is approved", ask.switch_to_credit(scenario.device("electricity meter (SMETS1)")))
    outcomes.append(act("instruction.approve", {"reference": scenario.instruction_ref, "reason": "self-approval"}, "gov-alice"))
    outcomes.append(act("instruction.approve", {"reference": scenario.instruction_ref, "reason": "approval typed as Bob"}, "gov-bob", key_of="gov-alice"))
    outcomes.append(act("instruction.approve", {"reference": scenario.instruction_ref, "reason": "checked against the Ofgem letter"}, "gov-bob"))

    first = ask.switch_to_credit(scenario.device("electricity meter (SMETS1)"))
    decide("switch SMETS1 electricity meter to credit", first)
    pre_command = ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT)
    rows.append(("the same Pre-Command under the published policy (dry run)", Engine(store, published).evaluate(pre_command, now=now)))
    decide(f"switch SMETS2 gas meter to credit (Pre-Command signed by {scenario.pre_command_signer_eui})", pre_command)
    decide("ECS02 (electricity) Pre-Command to the SMETS2 gas meter", ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), 0x001A))
    decide("switch SMETS1 gas meter to prepayment", ask.switch_to_prepayment(scenario.device("gas meter (SMETS1)")))
    decide("SMETS2 Pre-Command: ESME to prepayment", ask.signed_pre_command(scenario.device("electricity meter (SMETS2)"), ECS03_PREPAYMENT))
    decide("update meter balance (SRV 1.5)", ask.update_meter_balance(scenario.device("electricity meter (SMETS1)")))
    decide("credit on another Supplier's meter", ask.switch_to_credit(scenario.device("other Supplier's electricity meter")))
    decide("the first request sent again (replay)", first)
    # Signed for one meter, then re-addressed to another Supplier's meter on the way.
    signed = ask.switch_to_credit(scenario.device("electricity meter (SMETS2)"))
    decide("a request re-addressed after signing", signed.replace(b"00-DB-12-34-56-78-90-B0", b"00-DB-12-34-56-78-90-C0"))
    for n in range(3):
        decision = decide(f"burst: credit, SMETS2 electricity meter ({n + 1} of 3)", ask.switch_to_credit(scenario.device("electricity meter (SMETS2)")))
    quarantined = decision.quarantine_id
    before_release = len(store.audit_entries())
    outcomes.append(act("quarantine.release", {"item": quarantined, "reason": "checked: a genuine batch of top-up failures"}, "aro-ann"))
    released = next(e for e in store.audit_entries()[before_release:] if e.kind == "decision")
    rows.append((f"quarantined request {quarantined} released by aro-ann", engine_decision(released)))
    outcomes.append(act("instruction.end", {"reference": scenario.instruction_ref, "reason": "SoLR appointed; contingency over"}, "gov-bob"))
    decide("credit after the instruction ended", ask.switch_to_credit(scenario.device("electricity meter (SMETS2)")))

    _title("Decisions")
    _table(rows)

    _title("Alerts for the failed Supplier's Devices (R7)")
    alerts = scenario.install_alerting(store)
    meter = scenario.device("electricity meter (SMETS2)")

    def route(label: str, raw: bytes) -> str:
        delivery = router.route(raw, now=now)
        where = ", ".join(f"{t.kind} {t.id}" for t in delivery.targets) or "-"
        print(f"  {label:52} {delivery.status:8} -> {where:22} {delivery.reason}")
        return delivery.status

    statuses = [route("device alert, before revocation", alerts.device_alert(meter, scenario.failed_supplier_user))]
    revoked = scenario.revoke_certificates(store, scenario.failed_supplier)
    print(f"  (the SMKI revokes {revoked} certificate(s) of {scenario.failed_supplier})")
    statuses.append(route("power outage alert, no SRP registered yet", alerts.power_outage("00DB1234567890FF", scenario.failed_supplier_user)))
    pending_before = len(store.alert_deliveries(status=AlertStatus.PENDING))
    outcomes.append(act("srp.register", {"srp": "SRP-NORTH", "name": "Northern Shared Services", "endpoint": "https://srp-north.example/alerts",
                                         "serves": [scenario.failed_supplier]}, "gov-alice"))
    routed_now = pending_before - len(store.alert_deliveries(status=AlertStatus.PENDING))
    print(f"  (SRP-NORTH registered for {scenario.failed_supplier} by signed act: {routed_now} waiting alert(s) routed to it)")
    statuses += ["routed"] * routed_now
    statuses.append(route("device alert, after revocation", alerts.device_alert(meter, scenario.failed_supplier_user)))
    statuses.append(route("alert for an unaffected Supplier", alerts.device_alert(scenario.device("other Supplier's electricity meter"), scenario.other_supplier_user)))
    pending = len(store.alert_deliveries(status=AlertStatus.PENDING))
    print(f"  alerts waiting: {pending}")

    _title("The verifiable log")
    checkpoint, note = keeper.checkpoint(now)
    print(f"checkpoint: {checkpoint.size} entries, root {checkpoint.root_hash.hex()[:16]}..., written to {folder / 'checkpoint'}")
    check = keeper.verify()
    print(f"{'intact' if check.intact else 'BROKEN'}: {'; '.join(check.messages + check.differences)}")
    entry = next(e for e in store.audit_entries(kind="decision") if e.payload_data()["outcome"] == "allow")
    proof = keeper.prove_inclusion(entry.seq)
    (folder / "proof.json").write_text(proof)
    verdict = check_inclusion(proof, log_key.public_key(), checkpoint=note, leaf_data=bytes.fromhex(entry.hash))
    print(f"inclusion proof of decision entry {entry.seq} checked offline (proof.json, log-key.pub.pem, checkpoint): "
          f"{'valid' if verdict.valid else 'INVALID'}")
    # A restored backup: the store as it was before the last decisions, beside today's checkpoint.
    store.close()
    backup = folder / "backup.db"
    import shutil
    import sqlite3

    shutil.copy(db, backup)
    conn = sqlite3.connect(backup)
    conn.execute("DELETE FROM audit WHERE seq > (SELECT max(seq) - 5 FROM audit)")
    conn.execute("UPDATE audit_head SET seq = (SELECT max(seq) FROM audit), hash = (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1)")
    conn.commit()
    conn.close()
    restored = SqliteStore(backup)
    rolled = Engine(restored, policies, audit_log=LogKeeper(restored, log_key.public_key(), checkpoint_file=folder / "checkpoint"))
    refusal = rolled.decide(ask.switch_to_credit(scenario.device("electricity meter (SMETS1)")), now=now)
    print(f"a store rolled back by 5 entries (a restored backup) decides: {refusal.outcome} ({refusal.reasons[0].rule}: {refusal.reasons[0].message})")
    restored.close()
    backup.unlink()
    dcc_ok = _as_the_dcc_does_it(folder, now)  # the last section: its own store, same decision log
    log_file.close()
    print(f"\nThe store stays in {folder} (decision log: decisions.log; checkpoint; log-key.pub.pem; proof.json). Try:")
    # The demo keeps its log key and checkpoint under short names: name them for the CLI.
    log_files = f"--log-key {folder / 'log-key.pem'} --checkpoint {folder / 'checkpoint'}"
    print(f"  solr-policy --db {db} {log_files} audit verify")
    print(f"  solr-policy --db {db} {log_files} instruction show {scenario.instruction_ref}")
    expected_decisions = ["reject", "allow", "reject", "allow", "reject", "reject", "reject", "reject", "reject", "reject", "reject",
                          "allow", "allow", "quarantine", "allow", "reject"]
    expected_acts = ["applied", "governance.four-eyes", "applied", "applied", "applied", "applied", "R6.four-eyes",
                     "statement.not-the-officer", "applied", "applied", "applied", "applied"]
    alerts_ok = statuses == ["routed", "pending", "routed", "routed", "routed"] and pending == 0
    ok = (
        [d.outcome for _, d in rows] == expected_decisions
        and outcomes == expected_acts
        and check.intact and verdict.valid and refusal.reasons[0].rule == "log.behind-checkpoint"
        and imported.imported and not forged.imported and alerts_ok
    )
    if not ok:
        print("\nUNEXPECTED: a decision, act or check differs from what MP134B and this README require")
        print(f"  decisions {[d.outcome for _, d in rows]}\n  acts {outcomes}")
    return 0 if ok and dcc_ok else 1


def _as_the_dcc_does_it(folder: Path, now: datetime) -> bool:
    """Issue 14 on a store of its own: an ADT exception, an Exit Quarantine file releasing two
    held requests and deleting one, and a meter whose Supplier changes mid-event."""
    from datetime import timedelta

    from solr_policy.engine import Engine
    from solr_policy.governance.acts import Governance
    from solr_policy.governance.adt import sign_adt
    from solr_policy.governance.exit_quarantine import exit_file_text
    from solr_policy.policy import PolicySet, default_policy_dir
    from solr_policy.testing.governance import Signatories
    from solr_policy.testing.scenario import SolrScenario
    from solr_policy.world import SupplierChange

    _title("As the DCC does it: ADT exceptions, Exit Quarantine files, Devices changing Supplier")
    db = folder / "dcc.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    store = SqliteStore(db)
    scenario = SolrScenario().install(store, now=now)
    officers = Signatories(keys=scenario.officer_keys)
    engine = Engine(store, PolicySet.load_dir(default_policy_dir()))
    gov = Governance(store, engine=engine)
    ask = scenario.requests()
    e1, g1, e2, g2 = (scenario.device(label) for label in (
        "electricity meter (SMETS1)", "gas meter (SMETS1)", "electricity meter (SMETS2)", "gas meter (SMETS2)"))
    rows: list[tuple[str, Decision]] = []

    def decide(label: str, raw: bytes, when: datetime = now) -> Decision:
        decision = engine.decide(raw, now=when)
        rows.append((label, decision))
        return decision

    def signed_file(action: str, data: bytes) -> dict:
        act = gov.submit(officers.statement(action, {"file": data.decode(), "signature": sign_adt(data, officers.key_for("aro-ann")).decode()},
                                            officer="aro-ann", at=now), now=now)
        return act.result

    adt = scenario.adt_file(reference="ADT-SOLR-2026-002", thresholds={"1.6": {"per_hour": 1, "per_day": 50}},
                            exceptions=[{"name": "priority-care", "devices": [e2], "exempt": True}])
    signed_file("adt.submit", adt)
    _step(f"adt.submit by aro-ann: 1 switch an hour; exception priority-care: {e2} exempt")
    decide("credit, SMETS1 electricity meter (the hour's one)", ask.switch_to_credit(e1))
    decide("credit, SMETS2 electricity meter (exempt: priority-care)", ask.switch_to_credit(e2))
    held = [decide(f"credit, {label} (over the threshold)", ask.switch_to_credit(device)).quarantine_id or 0
            for label, device in (("SMETS1 gas meter", g1), ("SMETS2 gas meter", g2), ("SMETS1 electricity meter again", e1))]
    if not all(held):
        print(f"\nUNEXPECTED (as the DCC does it): not every request over the threshold was held: {held}")
        store.close()
        return False
    exit_file = exit_file_text(reference="EQ-SOLR-2026-001", party=scenario.solr_party, reason="checked with the SoLR Party",
                               items=[(held[0], "release"), (held[1], "release"), (held[2], "delete")])
    result = signed_file("quarantine.exit-file", exit_file)
    _step("quarantine.exit-file by aro-ann: " + ", ".join(f"{i['action']} {i['item']}" for i in result["items"]))
    statuses = [item.status.value for item in (store.get_quarantine(i) for i in held) if item is not None]
    _step(f"held requests now: {statuses}")
    # The failed Supplier's identifiers for the SMETS1 gas meter move to the SoLR at once; those
    # of the SMETS2 gas meter move tomorrow (a move the SMKI PMA delayed, SEC MP134A/MP185).
    store.put_supplier_history(g1, [SupplierChange(device=g1, effective_from=now - timedelta(minutes=1), supplier=scenario.solr_party)])
    store.put_supplier_history(g2, [SupplierChange(device=g2, effective_from=now + timedelta(days=1), supplier=scenario.solr_party)])
    _step(f"{g1} moved to {scenario.solr_party} a minute ago; {g2} moves tomorrow")
    later = now + timedelta(hours=1)  # a new hour: the threshold does not hide the Supplier rules
    decide("credit, SMETS1 gas meter (moved to the SoLR)", ask.switch_to_credit(g1), later)
    decide("credit, SMETS2 gas meter (move delayed to tomorrow)", ask.switch_to_credit(g2), later)
    decide("credit, SMETS2 gas meter, future dated past its move", ask.switch_to_credit(g2, execution=now + timedelta(days=2)), later)
    _table(rows)
    store.close()
    expected = ["allow", "allow", "quarantine", "quarantine", "quarantine", "reject", "allow", "reject"]
    ok = [d.outcome for _, d in rows] == expected and statuses == ["released", "released", "discarded"]
    if not ok:
        print(f"\nUNEXPECTED (as the DCC does it): decisions {[d.outcome for _, d in rows]}, held requests {statuses}")
    return ok


def engine_decision(entry: AuditEntry) -> Decision:
    """The decision a logged entry records, for the table (outcome, code, reasons)."""
    data = entry.payload_data()
    return Decision.model_construct(
        outcome=data["outcome"], response_code=data["response_code"],
        reasons=[Reason(r["rule"], r["code"], r["message"]) for r in data["reasons"]],
        request=data["request"], decided_at=entry.at_time,
    )
