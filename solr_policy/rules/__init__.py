"""The rule pipeline: one ordered list, the single place to add or reorder a rule.

Every rule runs on every request, so a refusal lists every failed rule, not only the first.
Each rule's id, requirement, DUIS code and prerequisites are declared beside it (``@rule``).
"""

from __future__ import annotations

from solr_policy.rules import (
    r1_role,
    r2_certificates,
    r3_srv,
    r4_adt,
    r5_content,
    r6_authority,
)
from solr_policy.rules.base import (
    Facts,
    GbcsError,
    Outcome,
    PreCommandSignature,
    Release,
    Rule,
    Verdict,
)

RULES: tuple[Rule, ...] = (
    # R1 who is asking
    r1_role.originator_is_signer,
    r1_role.known_user,
    r1_role.role_governed,
    r1_role.user_active,
    # R2 what they may hold
    r2_certificates.no_digital_signing_certificate,
    # R3 what they may ask for
    r3_srv.srv_allowed,
    r3_srv.srv_consistent,
    r3_srv.command_variant,
    r3_srv.body_matches,
    # R6 when and for whom
    r6_authority.device_known,
    r6_authority.instruction_active,
    r6_authority.device_of_failed_supplier,
    r6_authority.not_a_cancellation,
    r6_authority.execution_in_window,
    # R5 what the command says, and to which Device
    r5_content.device_type,
    r5_content.payment_mode,
    r5_content.smets1_service_request_only,
    r5_content.gbcs_message_code,
    r5_content.gbcs_fits_device,
    r5_content.gbcs_recipient,
    r5_content.gbcs_is_command,
    r5_content.gbcs_originator,
    r5_content.gbcs_signed,
    r5_content.gbcs_counter_fresh,
    # R4 the AROs' limits: which Supplier's Devices, and how many requests (quarantine)
    r4_adt.adt_covers_supplier,
    r4_adt.adt_threshold,
    r4_adt.smets1_data_values,
    # R6 replay protection last: it is the only rule whose pass changes state
    r6_authority.counter_fresh,
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
assert len(RULES_BY_ID) == len(RULES), "rule ids must be unique"


def evaluate(facts: Facts, rules: tuple[Rule, ...] = RULES) -> list[Outcome]:
    return [rule.evaluate(facts) for rule in rules]


def markdown_table(rules: tuple[Rule, ...] = RULES) -> str:
    """The rules as the README shows them (in pipeline order), from their own metadata."""
    lines = ["| rule | requirement | DUIS code | refuses |", "| --- | --- | --- | --- |"]
    lines += [f"| `{r.id}` | {r.requirement} | {r.code or '-'} | {r.summary} |" for r in rules]
    return "\n".join(lines) + "\n"


__all__ = [
    "RULES", "RULES_BY_ID", "Facts", "GbcsError", "Outcome", "PreCommandSignature", "Release", "Rule", "Verdict",
    "evaluate", "markdown_table",
]
