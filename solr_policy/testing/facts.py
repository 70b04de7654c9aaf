"""Hand-built ``Facts`` for calling rules directly, without signing, a store or the engine.

``allowed_facts()`` describes a request every shipped rule allows: the SoLR Contingency User
switching a failed Supplier's SMETS1 electricity meter to Credit (Command Variant 4) under an
active Authority instruction and a current ADT file. Tests change one thing at a time:

    facts = allowed_facts(device=None)                      # an unknown Device
    facts = with_request(allowed_facts(), srv="1.5")        # another SRV
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from solr_policy.duis.models import (
    DuisRequest,
    OtherBody,
    RequestHeader,
    RequestId,
    SignedPreCommand,
    UpdatePaymentMode,
)
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.records import AdtFileRecord, CertRecord, Signer
from solr_policy.rules import Facts
from solr_policy.world import Device, DeviceType, Instruction, Smets, User

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
USER_EUI = "90B3D51F30010000"
DEVICE_EUI = "00DB1234567890A0"
FAILED, SOLR = "FAILED-ENERGY", "SOLR-1"


def shipped_policies() -> PolicySet:
    return PolicySet.load_dir(default_policy_dir())


def signer(eui: str = USER_EUI, serial: int = 4242) -> Signer:
    record = CertRecord(
        serial=serial, issuer="CN=Test CA", subject=f"CN={eui}", subject_eui=eui, role=135,
        key_usage=("digital_signature",), not_before=NOW - timedelta(days=365), not_after=NOW + timedelta(days=365),
        spki_sha256="00" * 32, fingerprint="11" * 32, der=b"",
    )
    return Signer(record, "issuer-serial")


def request(
    *, originator: str = USER_EUI, target: str = DEVICE_EUI, counter: int = 1, srv: str = "1.6",
    service_reference: str | None = None, cv: int = 4, body: UpdatePaymentMode | SignedPreCommand | OtherBody | None = None,
) -> DuisRequest:
    header = RequestHeader(
        request_id=RequestId(originator=originator, target=target, counter=counter),
        command_variant=cv,
        service_reference=service_reference or ".".join(srv.split(".")[:2]),
        service_reference_variant=srv,
    )
    return DuisRequest(schema_version="5.4", header=header, body=body or UpdatePaymentMode(mode="credit"))


def allowed_facts(policies: PolicySet | None = None, **changes: Any) -> Facts:
    policy = (policies or shipped_policies()).for_role("SC")
    facts = Facts(
        request=request(),
        signer=signer(),
        now=NOW,
        user=User(id=USER_EUI, party=SOLR, role="SC"),
        policy=policy,
        device=Device(id=DEVICE_EUI, type=DeviceType.ESME, smets=Smets.SMETS1, supplier=FAILED),
        instructions=(Instruction(reference="OFGEM-1", failed_supplier=FAILED, solr_party=SOLR, effective_from=NOW - timedelta(days=1)),),
        last_counter=None,
        adt_files=(adt_file({"1.6": {"per_hour": 10, "per_day": 100}}),),
        adt_usage={"hour": 0, "day": 0},
    )
    return replace(facts, **changes)


def adt_file(thresholds: dict[str, dict[str, int]], supplier: str = FAILED) -> AdtFileRecord:
    """A current ADT file of the User for ``supplier``, as the store returns it."""
    return AdtFileRecord(
        reference="ADT-1", party=SOLR, user_id=USER_EUI, supplier=supplier, aro="aro-ann",
        submitted_at=NOW - timedelta(days=1), thresholds=thresholds, sha256="00" * 32,
    )


def with_request(facts: Facts, **changes: Any) -> Facts:
    """``facts`` with its request rebuilt from ``request()`` arguments."""
    return replace(facts, request=request(**changes))
