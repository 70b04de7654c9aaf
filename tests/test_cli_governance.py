"""The governance command line on signed statements: init, impersonation refused, statements
signed on one machine and submitted on another, offline proofs of the log, and a rolled-back
store refused until two officers sign its recovery."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import OfficerKeys
from solr_policy import logs
from solr_policy.cli import cli
from solr_policy.store import SqliteStore
from solr_policy.testing.pki import TestPki
from solr_policy.testing.scenario import SolrScenario
from solr_policy.transparency.checkpoint import generate_log_key, save_private_key
from solr_policy.transparency.log import LogKeeper

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
WHEN = ["--now", NOW.isoformat()]
METER = "electricity meter (SMETS1)"


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    logs.reset()  # the CLI configures logging for its run


def run(db: Path | None, *args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, [*(["--db", str(db)] if db else []), *args], input=input)


def out(result) -> dict:
    return json.loads(result.stdout)


def refused(result) -> str:
    assert result.exit_code == 1, result.output
    body = out(result)
    assert body.get("done", body.get("valid")) is False
    return body["reason"]["rule"] if "reason" in body and isinstance(body["reason"], dict) else body["rule"]


@pytest.fixture()
def service(tmp_path) -> Path:
    """The service's folder: a store made by init, with two governance officers."""
    folder = tmp_path / "service"
    folder.mkdir()
    return folder


@pytest.fixture()
def keys(tmp_path) -> OfficerKeys:
    folder = tmp_path / "keys"
    folder.mkdir()
    return OfficerKeys(folder)


@pytest.fixture()
def db(service, keys) -> Path:
    db = service / "solr.db"
    made = run(db, *keys.init_args("gov-alice", "gov-bob"))
    assert made.exit_code == 0, made.output
    return db


# -- init ------------------------------------------------------------------------------------------
def test_init_makes_the_log_key_the_first_entry_and_a_checkpoint(service, keys):
    db = service / "solr.db"
    made = run(db, *keys.init_args("gov-alice", "gov-bob"))
    assert made.exit_code == 0, made.output
    body = out(made)
    assert body["officers"] == [{"id": "gov-alice", "name": "Gov-Alice"}, {"id": "gov-bob", "name": "Gov-Bob"}]
    assert body["log_key"] == str(service / "solr.db.log-key.pem") and body["checkpoint"] == str(service / "solr.db.checkpoint")
    assert body["log_public_key"] == str(service / "solr.db.log-key.pub.pem")
    assert (service / "solr.db.log-key.pem").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE" not in (service / "solr.db.log-key.pub.pem").read_bytes()
    assert b"PRIVATE" not in made.stdout_bytes
    first = out(run(db, "audit", "show"))[0]
    assert first["kind"] == "init" and [o["officer"] for o in first["payload"]["governance_officers"]] == ["gov-alice", "gov-bob"]
    verified = run(db, "audit", "verify")
    assert verified.exit_code == 0 and out(verified)["checkpoint"]["size"] == body["entries"]


def test_init_twice_is_refused_and_changes_nothing(db, service, keys):
    key_before = (service / "solr.db.log-key.pem").read_bytes()
    entries = len(out(run(db, "audit", "show")))
    again = run(db, *keys.init_args("gov-carol", "gov-dan"))
    assert refused(again) == "init.not-empty"
    assert (service / "solr.db.log-key.pem").read_bytes() == key_before
    assert len(out(run(db, "audit", "show"))) == entries
    # Another store named with the same key file: the key is never replaced.
    other = run(service / "other.db", "--log-key", str(service / "solr.db.log-key.pem"), *keys.init_args("gov-carol", "gov-dan"))
    assert refused(other) == "init.log-key-exists"
    assert (service / "solr.db.log-key.pem").read_bytes() == key_before


def test_init_with_one_officer_is_refused_and_leaves_no_key(service, keys):
    db = service / "solr.db"
    assert refused(run(db, *keys.init_args("gov-alice"))) == "init.officers"
    assert not (service / "solr.db.log-key.pem").exists()
    mismatched = run(db, "init", "--officer", "a", "--officer", "b", "--name", "A", "--key", keys.public("a"))
    assert mismatched.exit_code == 2 and "once for each officer" in mismatched.output
    # The officer's private key where its public key belongs (both are "--key" somewhere): said so.
    private = keys.init_args("gov-alice", "gov-bob")
    private[private.index(keys.public("gov-alice"))] = keys.key("gov-alice")
    slip = run(db, *private)
    assert refused(slip) == "R4.officer-key" and "is a private key: give its public key" in out(slip)["reason"]["message"]
    assert "PRIVATE" not in slip.output and not (service / "solr.db.log-key.pem").exists()
    assert run(db, *keys.init_args("gov-alice", "gov-bob")).exit_code == 0  # nothing was left half-made


# -- impersonation ---------------------------------------------------------------------------------
def test_a_typed_officer_name_with_anothers_key_is_refused(db, keys, tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_bytes(TestPki("ZAZ1-like").issue("90B3D51F30010003", 135).cert_pem)
    pin = ["certs", "pin", str(cert), "--reason", "test PKI"]
    as_alice_with_bobs_key = run(db, *pin, "--officer", "gov-alice", "--key", keys.key("gov-bob"))
    assert refused(as_alice_with_bobs_key) == "statement.not-the-officer"
    assert "did not sign it (the signatures are by gov-bob)" in out(as_alice_with_bobs_key)["reason"]["message"]
    with_a_key_nobody_registered = run(db, *pin, "--officer", "gov-alice", "--key", keys.key("mallory"))
    assert refused(with_a_key_nobody_registered) == "statement.unknown-key"
    assert out(run(db, "certs", "list", "--json")) == []
    logged = out(run(db, "audit", "show", "--kind", "statement.refused"))
    assert [e["payload"]["rule"] for e in logged] == ["statement.not-the-officer", "statement.unknown-key"]
    # A key file that is no P-256 private key is a usage error, named.
    not_a_key = run(db, *pin, "--officer", "gov-alice", "--key", keys.public("gov-alice"))
    assert not_a_key.exit_code == 2 and "not an unencrypted PEM private key" in not_a_key.output


# -- statements: sign here, co-sign there, submit at the service -------------------------------------
def test_a_statement_signed_on_one_machine_is_submitted_on_another(db, keys, tmp_path):
    workstation = tmp_path / "workstation"
    workstation.mkdir()
    untouched = workstation / "no.db"
    ca = TestPki("SMKI-ORG-CA")
    (workstation / "ca.pem").write_bytes(ca.ca_cert_pem)
    statement = workstation / "anchor.json"
    signed = run(untouched, "statement", "sign", "anchor.add", "--officer", "gov-alice", "--key", keys.key("gov-alice"),
                 "--param", f"certificate=@{workstation / 'ca.pem'}", "-o", str(statement))
    assert signed.exit_code == 0, signed.output
    assert out(signed)["action"] == "anchor.add" and not untouched.exists()  # no store on the workstation
    # Four eyes: one signature is not enough at the service.
    alone = workstation / "alone.json"
    shutil.copy(statement, alone)
    assert refused(run(db, "statement", "submit", str(alone))) == "governance.four-eyes"
    # Bob co-signs where he is (shown what he signs), then the service applies it.
    cosigned = run(untouched, "statement", "cosign", str(statement), "--key", keys.key("gov-bob"))
    assert cosigned.exit_code == 0, cosigned.output
    shown = out(cosigned)
    assert (shown["action"], shown["officer"], shown["signatures"]) == ("anchor.add", "gov-alice", 2)
    assert "BEGIN CERTIFICATE" in shown["params"]["certificate"] and not untouched.exists()
    submitted = run(db, "statement", "submit", str(statement))
    assert submitted.exit_code == 0, submitted.output
    assert (out(submitted)["signed_by"], out(submitted)["cosigners"]) == ("gov-alice", ["gov-bob"])
    assert [a["added_by"] for a in out(run(db, "certs", "anchor", "list"))] == ["gov-alice"]
    assert refused(run(db, "statement", "submit", str(statement))) == "statement.replayed"
    assert refused(run(untouched, "statement", "cosign", str(statement), "--key", keys.key("gov-bob"))) == "statement.duplicate-signature"


def test_statement_parameters_text_files_and_json(db, keys, tmp_path):
    reason = tmp_path / "reason.txt"
    reason.write_text("Ofgem letter of 22 Nov")
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"reference": "OFGEM-9", "failed_supplier": "NOBODY", "solr_party": "NOBODY-ELSE",
                                  "effective_from": NOW.isoformat(), "reason": "overridden"}))
    statement = tmp_path / "s.json"
    made = run(None, "statement", "sign", "instruction.propose", "--officer", "gov-alice", "--key", keys.key("gov-alice"),
               "--params-json", str(params), "--param", f"reason=@{reason}", "--param", "devices:=null", *WHEN, "-o", str(statement))
    assert made.exit_code == 0, made.output
    cosigned = run(None, "statement", "cosign", str(statement), "--key", keys.key("gov-bob"), "-o", str(tmp_path / "two.json"))
    assert out(cosigned)["params"]["reason"] == "Ofgem letter of 22 Nov" and out(cosigned)["params"]["devices"] is None
    assert out(cosigned)["issued_at"].startswith("2026-11-22T12:00:00")
    # Parties the store does not know: the act itself refuses, after the signatures were checked.
    assert refused(run(db, "statement", "submit", str(statement), *WHEN)) == "governance.unknown-party"
    for bad, fragment in ((["--param", "reason"], "is not name=value"), (["--param", "1x=2"], "is not a parameter name"),
                          (["--param", "item:=[1,"], "is not JSON"), (["--params-json", str(reason)], "is not JSON")):
        result = run(None, "statement", "sign", "quarantine.discard", "--officer", "gov-alice", "--key", keys.key("gov-alice"), *bad)
        assert result.exit_code == 2 and fragment in result.output, result.output
    unknown = run(None, "statement", "sign", "officer.promote", "--officer", "gov-alice", "--key", keys.key("gov-alice"))
    assert unknown.exit_code == 2 and "officer.promote" in unknown.output
    # A number sent as text (name=VALUE, not name:=VALUE): the refusal says what was given.
    as_text = run(None, "statement", "sign", "quarantine.discard", "--officer", "gov-alice", "--key", keys.key("gov-alice"),
                  "--param", "item=1", "--param", "reason=duplicate", *WHEN)
    wrong_type = run(db, "statement", "submit", "-", *WHEN, input=as_text.stdout)
    assert refused(wrong_type) == "statement.params"
    assert out(wrong_type)["reason"]["message"] == "quarantine.discard needs 'item' (int); it is str"
    assert refused(run(db, "statement", "submit", "-", input="{not json")) == "statement.malformed"


# -- the log: offline proofs -------------------------------------------------------------------------
def test_audit_prove_and_check_proof_offline(db, service, keys, tmp_path):
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copy(service / "solr.db.log-key.pub.pem", auditor / "log.pub.pem")
    shutil.copy(service / "solr.db.checkpoint", auditor / "first.checkpoint")
    first_size = len(out(run(db, "audit", "show")))
    register = ["officer", "register-governance", "gov-carol", "--name", "Carol", "--public-key", keys.public("gov-carol")]
    assert run(db, *register, *keys.signs("gov-alice", "gov-bob")).exit_code == 0  # each act is checkpointed
    entry = out(run(db, "audit", "show", "--kind", "officer.register-governance", "--officer", "gov-alice"))[0]
    proved = run(db, "audit", "prove", str(entry["seq"]), "-o", str(auditor / "proof.json"))
    assert proved.exit_code == 0, proved.output
    shutil.copy(service / "solr.db.checkpoint", auditor / "now.checkpoint")

    nowhere = auditor / "no.db"  # the auditor has no store: none is opened or made

    def check(*args: str):
        return run(nowhere, "audit", "check-proof", str(auditor / "proof.json"), "--key", str(auditor / "log.pub.pem"), *args)

    valid = check("--checkpoint", str(auditor / "now.checkpoint"), "--entry-hash", entry["hash"])
    assert valid.exit_code == 0, valid.output
    assert out(valid)["valid"] is True and out(valid)["tree_size"] == out(proved)["tree_size"]
    other = out(run(db, "audit", "show"))[0]["hash"]
    assert refused(check("--entry-hash", other)) == "log.proof.leaf"
    older = check("--checkpoint", str(auditor / "first.checkpoint"))
    assert refused(older) == "log.proof.size"
    assert f"audit consistency {first_size}" in out(older)["reason"]  # what to do instead, with a command that exists
    (auditor / "other.pub.pem").write_bytes(keys.signatories.public("stranger").encode())
    wrong_key = run(nowhere, "audit", "check-proof", str(auditor / "proof.json"), "--key", str(auditor / "other.pub.pem"))
    assert wrong_key.exit_code == 1 and out(wrong_key)["valid"] is False
    assert check("--entry-hash", "abc").exit_code == 2
    assert run(nowhere, "audit", "check-proof", str(auditor / "missing.json"), "--key", str(auditor / "log.pub.pem")).exit_code == 2

    consistency = run(db, "audit", "consistency", str(first_size), "-o", str(auditor / "consistency.json"))
    assert consistency.exit_code == 0, consistency.output
    extends = run(nowhere, "audit", "check-consistency", str(auditor / "consistency.json"), "--key", str(auditor / "log.pub.pem"),
                  "--first", str(auditor / "first.checkpoint"))
    assert extends.exit_code == 0 and out(extends)["valid"] is True, extends.output
    assert not nowhere.exists()


def test_audit_prove_to_stdout_and_checkpoint(db, tmp_path):
    made = run(db, "audit", "checkpoint")
    assert made.exit_code == 0, made.output
    proof = run(db, "audit", "prove", "1")
    assert proof.exit_code == 0 and json.loads(proof.stdout)["tree_size"] == out(made)["size"]
    # An entry logged after the newest checkpoint (a world load signs none) waits for the next one;
    # an entry that does not exist is said to be missing, not to wait for a checkpoint.
    world = tmp_path / "world.yaml"
    world.write_text("parties:\n  - id: LATE-PARTY\n")
    assert run(db, "world", "load", str(world)).exit_code == 0
    assert refused(run(db, "audit", "prove", str(out(made)["size"] + 1))) == "log.no-checkpoint"
    for missing in (out(made)["size"] + 5, 0):
        result = run(db, "audit", "prove", str(missing))
        assert refused(result) == "log.no-entry" and f"no audit entry {missing}" in result.output


def test_audit_commands_need_a_log_key(tmp_path):
    bare = tmp_path / "bare.db"
    assert run(bare, "audit", "verify").exit_code == 0  # the chain only
    result = run(bare, "audit", "checkpoint")
    assert result.exit_code == 2 and "solr-policy init" in result.output


# -- rollback ------------------------------------------------------------------------------------------
@pytest.fixture()
def deciding(tmp_path, keys):
    """A store with the scenario (an active instruction, its User, Devices, officers) and a log
    key beside it, as an init-ed store has; and a request builder."""
    db = tmp_path / "solr.db"
    store = SqliteStore(db)
    try:
        scenario = SolrScenario(thresholds={"1.6": {"per_hour": 100, "per_day": 1000}}).install(store, now=NOW)
        key = generate_log_key()
        save_private_key(tmp_path / "solr.db.log-key.pem", key)
        LogKeeper(store, key.public_key(), key=key, checkpoint_file=tmp_path / "solr.db.checkpoint").checkpoint(NOW)
    finally:
        store.close()
    keys.signatories.keys.update(scenario.officer_keys)
    return db, scenario.requests(), scenario.device(METER)


def decide(db: Path, tmp_path: Path, raw: bytes):
    request = tmp_path / "request.xml"
    request.write_bytes(raw)
    return run(db, "decide", str(request), "--json", "--policies", str(POLICIES), *WHEN)


def test_a_rolled_back_store_is_refused_by_decide_until_two_officers_sign_log_recover(deciding, keys, tmp_path):
    db, ask, meter = deciding
    checkpoint = tmp_path / "solr.db.checkpoint"
    first = checkpoint.read_text()
    request = tmp_path / "dry.xml"
    request.write_bytes(ask.switch_to_credit(meter))
    assert run(db, "decide", str(request), "--dry-run", "--policies", str(POLICIES), *WHEN).exit_code == 0
    assert checkpoint.read_text() == first  # a dry run records nothing, so signs nothing
    assert decide(db, tmp_path, ask.switch_to_credit(meter)).exit_code == 0
    snapshot = tmp_path / "backup.db"
    shutil.copy(db, snapshot)  # a backup, WAL and all folded in by the closed store
    for _ in range(2):
        before = checkpoint.read_text()
        assert decide(db, tmp_path, ask.switch_to_credit(meter)).exit_code == 0
        assert checkpoint.read_text() != before  # each decision is checkpointed at once

    # The backup comes back: the store is two decisions behind its newest checkpoint.
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(snapshot, db)
    newest = checkpoint.read_text()
    behind = decide(db, tmp_path, ask.switch_to_credit(meter))
    assert behind.exit_code == 1, behind.output
    assert out(behind)["reasons"][0]["rule"] == "log.behind-checkpoint"
    assert checkpoint.read_text() == newest  # deciding signed no checkpoint of the rolled-back log
    assert refused(run(db, "audit", "checkpoint")) == "log.behind-checkpoint"
    verify = run(db, "audit", "verify")
    assert verify.exit_code == 1 and any("entries were removed" in m for m in out(verify)["messages"])
    end = ["instruction", "end", "OFGEM-SOLR-2026-001", "--reason", "x", *WHEN, *keys.signs("gov-alice")]
    assert refused(run(db, *end)) == "log.behind-checkpoint"

    recover = ["log", "recover", "--reason", "restored the backup of 22 Nov", *WHEN]
    assert refused(run(db, *recover, *keys.signs("gov-alice"))) == "governance.four-eyes"
    recovered = run(db, *recover, *keys.signs("gov-alice", "gov-bob"))
    assert recovered.exit_code == 0, recovered.output
    # What was accepted is on the record (the refused statements since made the log differ, not just shorter).
    assert "lost or removed" in out(recovered)["problem"] or "rewritten" in out(recovered)["problem"]
    (logged,) = out(run(db, "audit", "show", "--kind", "log.recover"))
    assert logged["payload"]["problem"] == out(recovered)["problem"] and logged["payload"]["reason"] == "restored the backup of 22 Nov"
    assert decide(db, tmp_path, ask.switch_to_credit(meter)).exit_code == 0
    assert run(db, "audit", "verify").exit_code == 0


def test_a_store_with_checkpoints_but_no_log_key_decides_nothing(deciding, tmp_path):
    db, ask, meter = deciding
    (tmp_path / "solr.db.log-key.pem").unlink()
    result = decide(db, tmp_path, ask.switch_to_credit(meter))
    assert result.exit_code == 2 and "no log key at" in result.output


def test_a_checkpoint_setting_naming_another_file_decides_nothing_and_signs_nothing(deciding, tmp_path):
    """A mistyped --checkpoint (or SOLR_POLICY_CHECKPOINT) is a refusal naming the setting:
    deciding must not write a fresh checkpoint there, which would silence the rollback guard."""
    db, ask, meter = deciding
    elsewhere = tmp_path / "elsewhere.checkpoint"
    request = tmp_path / "request.xml"
    request.write_bytes(ask.switch_to_credit(meter))
    result = run(db, "--checkpoint", str(elsewhere), "decide", str(request), "--json", "--policies", str(POLICIES), *WHEN)
    assert result.exit_code == 1, result.output
    (reason,) = out(result)["reasons"]
    assert reason["rule"] == "log.behind-checkpoint"
    assert "SOLR_POLICY_CHECKPOINT" in reason["message"] and "solr-policy log recover" in reason["message"]
    assert not elsewhere.exists()
    # With the setting right, the same request is decided.
    assert decide(db, tmp_path, ask.switch_to_credit(meter)).exit_code == 0
