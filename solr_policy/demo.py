"""The README's main job: a demo on the embedded default store (SQLite).

Everything it needs is made on the fly (a throw-away SMKI-shaped PKI, requests, payloads);
where ../shared/reference is present it also inspects the real GBCS vectors.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from solr_policy import logs
from solr_policy.alerts.routing import AlertRouter
from solr_policy.decision import Decision
from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused
from solr_policy.gbcs import decode_general_signing, parse_payload_text
from solr_policy.governance import instructions
from solr_policy.governance import quarantine as held
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.records import AlertStatus
from solr_policy.store import SqliteStore
from solr_policy.testing.scenario import ECS03_PREPAYMENT, GCS02_CREDIT, SolrScenario

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def _title(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def _gbcs_section() -> None:
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
    print(f"{'#':>2}  {'request':52} {'outcome':10} {'code':5} reason")
    for number, (label, decision) in enumerate(rows, start=1):
        reasons = decision.reasons if decision.outcome != "allow" else []
        first = f"{reasons[0].rule}: {reasons[0].message}" if reasons else "every rule passed"
        print(f"{number:>2}  {label:52} {decision.outcome:10} {decision.response_code or '-':5} {first}")
        for extra in reasons[1:]:
            print(f"{'':75}{extra.rule}: {extra.message}")


def _step(text: str) -> None:
    print(f"  - {text}")


def run_demo(workdir: str | None = None) -> int:
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="solr-policy-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "solr-policy.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    store = SqliteStore(db)
    log_file = (folder / "decisions.log").open("a", encoding="utf-8")
    logs.configure("json", stream=log_file)  # one JSON event per decision, kept beside the store
    print(f"solr-policy demo: a SoLR event on the embedded store {db}")
    now = datetime.now(timezone.utc)

    _gbcs_section()

    _title("The scenario")
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 4, "per_day": 50}})
    scenario.install(store, now=now, instruction_status=None)
    published = PolicySet.load_dir(default_policy_dir())
    # The published policy trusts nobody to sign Pre-Commands (MP134B R2); this deployment
    # trusts a DCC Pre-Command signing service, named in its copy of the policy.
    policies = PolicySet.load_dir(scenario.write_policies(folder / "policies"))
    print(f"Failed Supplier {scenario.failed_supplier}; SoLR Party {scenario.solr_party}; "
          f"SoLR Contingency User {scenario.user_eui} (XML Sign certificate made on the fly)")
    for label, device in scenario.devices.items():
        print(f"  {label:38} {device.id}  Supplier {device.supplier}")
    print("Governance officers gov-alice and gov-bob; the SoLR Party's SRO sro-sam appointed ARO aro-ann,")
    print(f"who submitted signed ADT file {scenario.adt_reference}: Supplier {scenario.failed_supplier}, SRV 1.6 at most 4 an hour")
    for code, policy in sorted(policies.by_role.items()):
        print(f"Policy {policy.policy} v{policy.version} for role {code}: SRVs {', '.join(policy.srvs)}")

    engine = Engine(store, policies)
    ask = scenario.requests()
    rows: list[tuple[str, Decision]] = []

    def decide(label: str, raw: bytes, when: datetime = now) -> Decision:
        decision = engine.decide(raw, now=when)
        rows.append((label, decision))
        return decision

    _title("The Authority instruction: propose, approve (four eyes)")
    proposal = scenario.instruction(now).model_copy(update={"effective_from": now - timedelta(minutes=5)})
    instructions.propose(store, proposal, officer="gov-alice", reason="Ofgem letter of 22 Nov: Failed Energy has failed", at=now)
    _step(f"gov-alice proposed {proposal.reference}")
    decide("credit before the instruction is approved", ask.switch_to_credit(scenario.device("electricity meter (SMETS1)")))
    try:
        instructions.transition(store, proposal.reference, "approve", officer="gov-alice", reason="self-approval", at=now)
    except GovernanceRefused as refusal:
        _step(f"gov-alice tried to approve her own proposal: refused ({refusal.rule})")
    instructions.transition(store, proposal.reference, "approve", officer="gov-bob", reason="checked against the Ofgem letter", at=now)
    _step("gov-bob approved it: active")

    first = ask.switch_to_credit(scenario.device("electricity meter (SMETS1)"))
    decide("switch SMETS1 electricity meter to credit", first)
    pre_command = ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT)
    published_decision = Engine(store, published).evaluate(pre_command, now=now)
    rows.append(("the same Pre-Command under the published policy (dry run)", published_decision))
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
    if quarantined is not None:  # otherwise the outcomes differ from MP134B's and the demo fails
        released = held.release(engine, quarantined, officer="aro-ann", reason="checked: a genuine batch of top-up failures", now=now)
        rows.append((f"quarantined request {quarantined} released by aro-ann", released))
    instructions.transition(store, proposal.reference, "end", officer="gov-bob", reason="SoLR appointed; contingency over", at=now)
    decide("credit after the instruction ended", ask.switch_to_credit(scenario.device("electricity meter (SMETS2)")))

    _title("Decisions")
    _table(rows)

    _title("Alerts for the failed Supplier's Devices (R7)")

    alerts = scenario.install_alerting(store)
    router = AlertRouter(store, policies=policies)
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
    store.put_srp("SRP-NORTH", name="Northern Shared Services", endpoint="https://srp-north.example/alerts", serves=[scenario.failed_supplier])
    retried = router.retry_pending(now=now)
    print(f"  (SRP-NORTH registered for {scenario.failed_supplier}: {len(retried)} waiting alert(s) routed to it)")
    statuses += [d.status for d in retried]
    statuses.append(route("device alert, after revocation", alerts.device_alert(meter, scenario.failed_supplier_user)))
    statuses.append(route("alert for an unaffected Supplier", alerts.device_alert(scenario.device("other Supplier's electricity meter"), scenario.other_supplier_user)))
    pending = len(store.alert_deliveries(status=AlertStatus.PENDING))
    print(f"  alerts waiting: {pending}")

    _title("Audit trail")
    check = store.verify_audit()
    print(f"{'intact' if check.intact else 'BROKEN'}: {check.message}")
    for entry in store.audit_entries(instruction=proposal.reference):
        if entry.kind.startswith("instruction."):
            print(f"  {entry.at[:19]}  {entry.kind:22} by {entry.actor}")
    store.close()
    log_file.close()
    print(f"\nThe store stays in {folder} (decision log: decisions.log). Try:")
    print(f"  solr-policy --db {db} audit verify")
    print(f"  solr-policy --db {db} instruction show {proposal.reference}")
    expected = ["reject", "allow", "reject", "allow", "reject", "reject", "reject", "reject", "reject", "reject", "reject", "allow", "allow", "quarantine", "allow", "reject"]
    alerts_ok = statuses == ["routed", "pending", "routed", "routed", "routed"] and pending == 0
    return 0 if [d.outcome for _, d in rows] == expected and check.intact and alerts_ok else 1
