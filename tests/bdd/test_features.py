"""Binds the MP134B feature files to pytest; the steps are in ``conftest.py``
(and ``steps_governance.py``, ``steps_alerts.py``, which it imports).

Only the files listed here are bound (features/ is ``bdd_features_base_dir``). Another
requirement's feature gets its own test module, or one more line in this list.
"""

from pytest_bdd import scenarios

FEATURES = (
    "R1_what_is_sec_text.feature",
    "R1_solr_contingency_role.feature",
    "R2_certificate_subscriptions.feature",
    "R3_allowed_service_requests.feature",
    "R4_officers_and_thresholds.feature",
    "R4_adt_exceptions.feature",
    "R4_exit_quarantine_files.feature",
    "R4_smets1_data_values.feature",
    "R5_credit_only_content.feature",
    "R6_authority_instruction.feature",
    "R6_instruction_lifecycle.feature",
    "R6_supplier_changes_mid_event.feature",
    "R6_governance_you_can_prove.feature",
    "R7_alerts_to_the_srp.feature",
)

scenarios(*FEATURES)
