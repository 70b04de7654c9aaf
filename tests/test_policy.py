"""Policies as data: the shipped MP134B policy says what MP134B needs, a second role loads,
every mistake in a policy file is an error naming its line, and the engine is general (roles
are data: a Meter Data Retrieval User is judged by its own policy, not by SoLR rules)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.crypto.certs import read_certificates
from solr_policy.engine import Engine
from solr_policy.policy import PolicySet, default_policy_dir, load_policy, parse_policy
from solr_policy.testing.scenario import GCS02_CREDIT, ECS02_CREDIT, SolrScenario
from solr_policy.world import Party, User
from solr_policy.yamlio import DataFileError

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
SC_FILE = POLICIES / "solr-contingency.yaml"
MDR_FILE = POLICIES / "meter-data-retrieval.yaml"

# A valid policy written out in full so that every line number below is known.
BASE = """\
policy: test-policy
version: 1
role:
  code: SC
  name: SoLR Contingency
requires_authority_instruction: true
device_scope: failed_supplier
srvs:
  "1.6":
    name: Update Payment Mode
    command_variants: [4, 5, 6, 7]
    service_request_body: UpdatePaymentMode
    content:
      payment_mode: credit
      gbcs_message_codes:
        - 0x001A
        - 0x006C
"""


SRV_16 = '"1.6":'


def line_no(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing needle (the line the error must name)."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in the test text"
    return hits[nth - 1]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def refusal(text: str, source: str = "p.yaml") -> str:
    with pytest.raises(DataFileError) as info:
        parse_policy(text, source)
    return str(info.value)


# -- the shipped policies ----------------------------------------------------------------------
class TestShippedPolicies:
    def test_base_text_is_valid(self):
        # The error cases below are one edit away from this: it must itself be accepted.
        policy = parse_policy(BASE, "p.yaml")
        assert policy.srvs["1.6"].content.gbcs_message_codes == (0x001A, 0x006C)

    def test_solr_contingency_says_what_mp134b_needs(self):
        policy = load_policy(SC_FILE)
        assert policy.policy == "solr-contingency"
        assert policy.role.code == "SC"
        assert policy.role.sec_modification == "MP134B"
        # R6: an active Authority instruction, and only the failed Supplier's Devices.
        assert policy.requires_authority_instruction is True
        assert policy.device_scope == "failed_supplier"
        # R4: within the thresholds of an ADT file submitted by the Party's AROs.
        assert policy.requires_adt_file is True
        # R3: SRV 1.6 and nothing else.
        assert list(policy.srvs) == ["1.6"]
        srv = policy.srvs["1.6"]
        assert srv.command_variants == (4, 5, 6, 7)
        assert srv.service_request_cvs == frozenset({4})
        assert srv.signed_pre_command_cvs == frozenset({5, 6, 7})
        assert srv.service_request_body == "UpdatePaymentMode"
        # R5: to Credit only, by Service Request or by the two GBCS "set to Credit" commands.
        assert srv.content.payment_mode == "credit"
        assert srv.content.unconstrained is False
        assert srv.content.gbcs_message_codes == (ECS02_CREDIT, GCS02_CREDIT) == (0x001A, 0x006C)

    def test_meter_data_retrieval_loads(self):
        policy = load_policy(MDR_FILE)
        assert policy.role.code == "MDR"
        assert policy.requires_authority_instruction is False
        assert policy.device_scope == "any"
        assert policy.requires_adt_file is False
        assert set(policy.srvs) == {"4.8.1", "4.17"}
        assert policy.srvs["4.8.1"].service_request_body == "ReadActiveImportProfileData"
        assert policy.srvs["4.8.1"].content.unconstrained is True
        assert "1.6" not in policy.srvs

    def test_shipped_folder_loads_both_roles(self):
        policies = PolicySet.load_dir(POLICIES)
        assert policies.role_codes == frozenset({"SC", "MDR"})
        assert policies.for_role("SC").policy == "solr-contingency"
        assert policies.for_role("MDR").policy == "meter-data-retrieval"
        assert policies.for_role("IS") is None
        assert policies.sources["SC"] == str(SC_FILE)

    def test_default_policy_dir_is_the_shipped_one_wherever_we_run(self, monkeypatch, tmp_path):
        # The environment is Settings' business (tests/test_settings.py); the working folder,
        # even with a policies/ of its own, never changes the policy in force.
        (tmp_path / "policies").mkdir()
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SOLR_POLICY_POLICIES", str(tmp_path / "policies"))
        assert default_policy_dir().resolve() == POLICIES.resolve()


# -- errors name the file, the line and the field ------------------------------------------------
class TestPolicyErrors:
    def test_misspelt_field(self):
        text = edit("command_variants:", "comand_variants:")
        message = refusal(text)
        assert f"p.yaml line {line_no(text, 'comand_variants')}, field srvs.1.6.comand_variants: unknown field" in message

    def test_misspelt_top_level_field(self):
        text = edit("requires_authority_instruction:", "requires_authority_instuction:")
        message = refusal(text)
        assert f"line {line_no(text, 'requires_authority_instuction')}, field requires_authority_instuction: unknown field" in message

    def test_command_variant_9(self):
        text = edit("[4, 5, 6, 7]", "[4, 9]")
        message = refusal(text)
        assert f"line {line_no(text, 'command_variants')}, field srvs.1.6.command_variants:" in message
        assert "Command Variants are 1 to 8, not [9]" in message

    def test_bad_message_code(self):
        text = edit("- 0x006C", '- "0x1G"')
        message = refusal(text)
        # The validator judges the whole list: the error names the field's own line.
        assert f"line {line_no(text, 'gbcs_message_codes')}, field srvs.1.6.content.gbcs_message_codes:" in message
        assert "'0x1G' is not a GBCS Message Code" in message

    def test_message_code_out_of_range(self):
        text = edit("- 0x006C", "- 0x10000")
        assert "65536 is not a GBCS Message Code" in refusal(text)

    def test_duplicate_key(self):
        text = edit("version: 1\n", "version: 1\nversion: 2\n")
        message = refusal(text)
        assert message == f"p.yaml line {line_no(text, 'version', 2)}, field version: key 'version' appears twice"

    def test_duplicate_srv_key(self):
        # PyYAML would silently keep the second "1.6" and drop the first.
        text = BASE + '  "1.6":\n    name: again\n'
        message = refusal(text)
        assert f"line {line_no(text, '1.6', 2)}, field srvs.1.6: key '1.6' appears twice" in message

    def test_invalid_yaml(self):
        text = edit("name: Update Payment Mode", "name: Update: Payment Mode")
        message = refusal(text)
        assert message.startswith(f"p.yaml line {line_no(text, 'Update: Payment')}: not valid YAML (")

    def test_not_a_mapping(self):
        assert refusal("- just\n- a list\n") == "p.yaml: a policy is a YAML mapping"

    def test_content_neither_constrained_nor_unconstrained(self):
        text = edit(
            "      payment_mode: credit\n      gbcs_message_codes:\n        - 0x001A\n        - 0x006C\n",
            "      unconstrained: false\n",
        )
        message = refusal(text)
        assert f"line {line_no(text, 'content:')}, field srvs.1.6.content:" in message
        assert "'unconstrained: true'" in message

    def test_content_both_constrained_and_unconstrained(self):
        text = edit("      payment_mode: credit\n", "      payment_mode: credit\n      unconstrained: true\n")
        message = refusal(text)
        assert f"line {line_no(text, 'content:')}, field srvs.1.6.content:" in message
        assert "not both" in message

    def test_signed_pre_command_without_message_codes(self):
        text = edit("      gbcs_message_codes:\n        - 0x001A\n        - 0x006C\n", "")
        message = refusal(text)
        # The SRV entry as a whole is incoherent: the error names its line.
        assert f"line {line_no(text, SRV_16)}, field srvs.1.6:" in message
        assert "Command Variants 5-7 need content.gbcs_message_codes" in message

    def test_service_request_without_body(self):
        text = edit("    service_request_body: UpdatePaymentMode\n", "")
        message = refusal(text)
        assert f"line {line_no(text, SRV_16)}, field srvs.1.6:" in message
        assert "need service_request_body" in message

    def test_failed_supplier_scope_without_instruction(self):
        text = edit("requires_authority_instruction: true", "requires_authority_instruction: false")
        message = refusal(text)
        assert f"line {line_no(text, 'device_scope')}, field device_scope:" in message
        assert "device_scope failed_supplier needs requires_authority_instruction: true" in message

    def test_failed_supplier_scope_by_default_without_instruction(self):
        # device_scope left out defaults to failed_supplier: still refused, not silently accepted.
        text = edit("device_scope: failed_supplier\n", "", edit("requires_authority_instruction: true", "requires_authority_instruction: false"))
        assert "device_scope failed_supplier needs requires_authority_instruction: true" in refusal(text)

    def test_bad_srv_key(self):
        # Put the bad key second, so that "the first SRV's line" would be the wrong answer.
        text = BASE + '  "1.6a":\n    name: Bad\n    command_variants: [4]\n    service_request_body: UpdatePaymentMode\n    content:\n      payment_mode: credit\n'
        message = refusal(text)
        assert f"line {line_no(text, '1.6a')}, field srvs.1.6a" in message
        assert "'1.6a' is not a Service Reference Variant" in message

    @pytest.mark.parametrize("key", ["1", "1.6.", "a.b", "1.6.1.1", "100.1"])
    def test_other_bad_srv_keys(self, key):
        text = edit('"1.6":', f'"{key}":')
        assert f"{key!r} is not a Service Reference Variant" in refusal(text)

    def test_every_error_reported_at_once(self):
        text = edit("version: 1", "version: 0", edit("[4, 5, 6, 7]", "[4, 9]"))
        message = refusal(text)
        assert f"line {line_no(text, 'version')}, field version:" in message
        assert f"line {line_no(text, 'command_variants')}, field srvs.1.6.command_variants:" in message


class TestPolicyFolder:
    def test_two_policies_for_one_role(self, tmp_path):
        shutil.copy(SC_FILE, tmp_path / "a.yaml")
        (tmp_path / "b.yaml").write_text(edit("policy: test-policy", "policy: another"))
        with pytest.raises(DataFileError) as info:
            PolicySet.load_dir(tmp_path)
        message = str(info.value)
        assert message.startswith(str(tmp_path / "b.yaml"))
        assert "role SC already has a policy" in message and str(tmp_path / "a.yaml") in message

    def test_empty_folder(self, tmp_path):
        (tmp_path / "README.txt").write_text("not a policy")
        with pytest.raises(DataFileError, match="no policy files"):
            PolicySet.load_dir(tmp_path)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(DataFileError) as info:
            PolicySet.load_dir(tmp_path / "nowhere")
        assert str(info.value) == f"{tmp_path / 'nowhere'}: no such policy folder"

    def test_error_in_one_file_names_that_file(self, tmp_path):
        shutil.copy(SC_FILE, tmp_path / "solr-contingency.yaml")
        (tmp_path / "mdr.yml").write_text(MDR_FILE.read_text().replace("command_variants: [1, 2, 3]", "command_variants: [1, 2, 3, 9]", 1))
        with pytest.raises(DataFileError) as info:
            PolicySet.load_dir(tmp_path)
        text = (tmp_path / "mdr.yml").read_text()
        assert str(info.value).startswith(f"{tmp_path / 'mdr.yml'} line {line_no(text, 'command_variants')}, field srvs.4.8.1.command_variants:")


# -- the engine is general: roles are data ---------------------------------------------------------
NOW = datetime.now(timezone.utc).replace(microsecond=0)
MDR_EUI = "90B3D51F300F0099"
MDR_PARTY = "READ-ONLY-DATA"
READ_BODY = (
    "<sr:ReadActiveImportProfileData><sr:ReadLogPeriod>"
    "<sr:StartDateTime>2026-11-01T00:00:00Z</sr:StartDateTime>"
    "<sr:EndDateTime>2026-11-02T00:00:00Z</sr:EndDateTime>"
    "</sr:ReadLogPeriod></sr:ReadActiveImportProfileData>"
)


@pytest.fixture()
def two_roles(store, tmp_path):
    scenario = SolrScenario().install(store, now=NOW)
    source = tmp_path / "published"
    source.mkdir()
    shutil.copy(SC_FILE, source)
    shutil.copy(MDR_FILE, source)
    folder = scenario.write_policies(tmp_path / "policies", source=source)  # CV 5-7 need a trusted signer
    store.put_party(Party(id=MDR_PARTY, name="Read Only Data Ltd"))
    store.put_user(User(id=MDR_EUI, party=MDR_PARTY, role="MDR"))
    mdr = scenario.pki.issue(MDR_EUI, 135)
    for record in read_certificates(mdr.cert_pem):
        store.put_certificate(record)
    from solr_policy.testing.scenario import RequestBuilder

    return scenario, RequestBuilder(mdr), folder


def reason_rules(decision) -> list[tuple[str, str | None]]:
    return [(r.rule, r.code) for r in decision.reasons]


class TestGeneralEngine:
    @pytest.mark.parametrize(
        "label", ["other Supplier's electricity meter", "electricity meter (SMETS2)", "gas meter (SMETS1)"]
    )
    def test_mdr_reads_any_known_device_without_instruction(self, two_roles, store, label):
        scenario, mdr, folder = two_roles
        assert store.instructions(solr_party=MDR_PARTY) == []  # no Authority instruction at all
        engine = Engine(store, PolicySet.load_dir(folder))
        decision = engine.decide(mdr.other(scenario.device(label), srv="4.8.1", cv=2, body=READ_BODY), now=NOW)
        assert decision.outcome == "allow", decision.reasons
        assert decision.response_code == "I99"
        assert decision.policy == "meter-data-retrieval"
        assert decision.request["srv"] == "4.8.1"
        messages = {r.rule: r.message for r in decision.reasons}
        assert messages["R6.instruction-active"] == "the policy needs no Authority instruction"
        assert messages["R6.device-of-failed-supplier"] == "the policy allows any known Device"

    def test_mdr_empty_body_element_is_enough(self, two_roles, store):
        scenario, mdr, folder = two_roles
        engine = Engine(store, PolicySet.load_dir(folder))
        raw = mdr.other(scenario.device("gas meter (SMETS2)"), srv="4.8.1", cv=2, body="<sr:ReadActiveImportProfileData/>")
        assert engine.decide(raw, now=NOW).outcome == "allow"

    def test_mdr_still_bound_by_its_own_policy(self, two_roles, store):
        scenario, mdr, folder = two_roles
        engine = Engine(store, PolicySet.load_dir(folder))
        device = scenario.device("other Supplier's electricity meter")
        # Wrong body for SRV 4.8.1, a Command Variant the policy does not list, an unknown Device.
        wrong_body = engine.decide(mdr.other(device, srv="4.8.1", cv=2, body="<sr:RetrieveDailyConsumptionLog/>"), now=NOW)
        assert ("R3.body-matches-srv", "E12") in reason_rules(wrong_body)
        wrong_cv = engine.decide(mdr.other(device, srv="4.8.1", cv=4, body=READ_BODY), now=NOW)
        assert ("R3.command-variant", "E12") in reason_rules(wrong_cv)
        unknown = engine.decide(mdr.other("00DB1234567890FF", srv="4.8.1", cv=2, body=READ_BODY), now=NOW)
        assert reason_rules(unknown) == [("R6.device-known", "E19")]

    def test_mdr_may_not_switch_payment_mode(self, two_roles, store):
        scenario, mdr, folder = two_roles
        engine = Engine(store, PolicySet.load_dir(folder))
        decision = engine.decide(mdr.switch_to_credit(scenario.device("electricity meter (SMETS1)")), now=NOW)
        assert decision.outcome == "reject"
        assert decision.response_code == "E2"
        assert reason_rules(decision) == [("R3.srv-allowed", "E2")]
        assert "SRV 1.6 is not allowed for the Meter Data Retrieval role" in decision.reasons[0].message

    def test_sc_user_unaffected_by_the_second_role(self, two_roles, store):
        scenario, _, folder = two_roles
        engine = Engine(store, PolicySet.load_dir(folder))
        sc = scenario.requests()
        allowed = engine.decide(sc.switch_to_credit(scenario.device("electricity meter (SMETS1)")), now=NOW)
        assert allowed.outcome == "allow" and allowed.policy == "solr-contingency"
        spc = engine.decide(sc.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT), now=NOW)
        assert spc.outcome == "allow"
        read = engine.decide(sc.other(scenario.device("electricity meter (SMETS2)"), srv="4.8.1", cv=2, body=READ_BODY), now=NOW)
        assert read.response_code == "E2" and ("R3.srv-allowed", "E2") in reason_rules(read)

    def test_removing_the_policy_file_ungoverns_the_role(self, two_roles, store):
        scenario, mdr, folder = two_roles
        (folder / MDR_FILE.name).unlink()
        engine = Engine(store, PolicySet.load_dir(folder))
        decision = engine.decide(mdr.other(scenario.device("other Supplier's electricity meter"), srv="4.8.1", cv=2, body=READ_BODY), now=NOW)
        assert decision.outcome == "reject"
        assert decision.response_code == "E1"
        assert reason_rules(decision) == [("R1.user-role", "E1")]
        assert decision.reasons[0].message == "User Role MDR is not a role this engine authorises"
        assert decision.policy is None
