"""The README's main job: a demo on the embedded default store (SQLite).

Everything it needs is made on the fly (a throw-away SMKI-shaped PKI, requests, payloads);
where ../shared/reference is present it also inspects the real GBCS vectors.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from solr_policy import logs
from solr_policy.crypto.certs import read_certificates
from solr_policy.crypto.sign import sign_duis
from solr_policy.crypto.testpki import TestPki
from solr_policy.crypto.verify import Verifier
from solr_policy.errors import Refused
from solr_policy.store import SqliteStore

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def _title(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def _request(originator: str, target: str, counter: int, body: str) -> bytes:
    return (
        '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">'
        f"<sr:Header><sr:RequestID>{originator}:{target}:{counter}</sr:RequestID>"
        "<sr:CommandVariant>4</sr:CommandVariant><sr:ServiceReference>1.6</sr:ServiceReference>"
        "<sr:ServiceReferenceVariant>1.6</sr:ServiceReferenceVariant></sr:Header>"
        f"<sr:Body>{body}</sr:Body></sr:Request>"
    ).encode()


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


def _table(rows: list[tuple[str, object]]) -> None:
    print(f"{'#':>2}  {'request':52} {'outcome':8} {'code':5} reason")
    for number, (label, decision) in enumerate(rows, start=1):
        reasons = decision.reasons if decision.outcome != "allow" else []
        first = f"{reasons[0].rule}: {reasons[0].message}" if reasons else "every rule passed"
        print(f"{number:>2}  {label:52} {decision.outcome:8} {decision.response_code or '-':5} {first}")
        for extra in reasons[1:]:
            print(f"{'':73}{extra.rule}: {extra.message}")


def run_demo(workdir: str | None = None) -> int:
    from solr_policy.engine import Engine
    from solr_policy.policy import PolicySet, default_policy_dir
    from solr_policy.scenario import ECS03_PREPAYMENT, GCS02_CREDIT, SolrScenario
    from solr_policy.world import InstructionStatus

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
    scenario = SolrScenario().install(store, now=now)
    policies = PolicySet.load_dir(default_policy_dir())
    print(f"Failed Supplier {scenario.failed_supplier}; SoLR Party {scenario.solr_party}; "
          f"SoLR Contingency User {scenario.user_eui} (XML Sign certificate made on the fly)")
    print(f"Authority instruction {scenario.instruction_ref}: active from yesterday for 30 days")
    for label, device in scenario.devices.items():
        print(f"  {label:38} {device.id}  Supplier {device.supplier}")
    for code, policy in sorted(policies.by_role.items()):
        print(f"Policy {policy.policy} v{policy.version} for role {code}: SRVs {', '.join(policy.srvs)}")

    _title("Decisions")
    engine = Engine(store, policies)
    ask = scenario.requests()
    first = ask.switch_to_credit(scenario.device("electricity meter (SMETS1)"))
    rows: list[tuple[str, object]] = []

    def decide(label: str, raw: bytes) -> None:
        rows.append((label, engine.decide(raw, now=now)))

    decide("switch SMETS1 electricity meter to credit", first)
    decide("switch SMETS2 gas meter to credit (Pre-Command)", ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT))
    decide("switch SMETS1 gas meter to prepayment", ask.switch_to_prepayment(scenario.device("gas meter (SMETS1)")))
    decide("SMETS2 Pre-Command: ESME to prepayment", ask.signed_pre_command(scenario.device("electricity meter (SMETS2)"), ECS03_PREPAYMENT))
    decide("update meter balance (SRV 1.5)", ask.update_meter_balance(scenario.device("electricity meter (SMETS1)")))
    decide("credit on another Supplier's meter", ask.switch_to_credit(scenario.device("other Supplier's electricity meter")))
    decide("the first request sent again (replay)", first)
    # Signed for one meter, then re-addressed to another Supplier's meter on the way.
    signed = ask.switch_to_credit(scenario.device("electricity meter (SMETS2)"))
    decide("a request re-addressed after signing", signed.replace(b"00-DB-12-34-56-78-90-B0", b"00-DB-12-34-56-78-90-C0"))
    instruction = store.get_instruction(scenario.instruction_ref)
    store.put_instruction(instruction.model_copy(update={"status": InstructionStatus.ENDED}))
    decide("credit after the instruction ended", ask.switch_to_credit(scenario.device("electricity meter (SMETS2)")))
    _table(rows)

    _title("Audit trail")
    intact, count, message = store.verify_audit()
    print(f"{'intact' if intact else 'BROKEN'}: {message}")
    store.close()
    log_file.close()
    print(f"\nThe store stays in {folder} (decision log: decisions.log); try: solr-policy --db {db} world show")
    expected = ["allow", "allow", "reject", "reject", "reject", "reject", "reject", "reject", "reject"]
    return 0 if [d.outcome for _, d in rows] == expected and intact else 1
