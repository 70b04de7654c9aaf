"""Stage 2, gather: the only place a decision reads the world.

Everything the rules may consult is read here, inside the caller's transaction, into one
immutable ``Facts``. The rules then run on it without touching the store.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.crypto.certs import public_key
from solr_policy.duis.models import SignedPreCommand
from solr_policy.engine.admit import Admitted
from solr_policy.engine.facts import FactView, uncached
from solr_policy.engine.overlay import Overlay
from solr_policy.errors import GovernanceRefused
from solr_policy.gbcs import GbcsHeader
from solr_policy.gbcs.signature import verify_gbcs_signature
from solr_policy.policy import Policy, PolicySet
from solr_policy.records import ROLE_SUPPLIER, AdtFileRecord, AdtUsageKey, CertRecord, SmkiStatus, gbcs_counter_key
from solr_policy.rules import Facts, PreCommandSignature, Release
from solr_policy.rules.r4_adt import adt_file_for, counting, default_limits
from solr_policy.store.base import Store
from solr_policy.world import Instruction, supplier_at


def gather(
    store: Store, admitted: Admitted, policies: PolicySet, now: datetime, *, release: Release | None = None,
    static: FactView | None = None, overlay: Overlay | None = None,
) -> Facts:
    """Facts for ``admitted`` at ``now``; the static ones from ``static`` when given (see
    ``engine.facts``), the Device, counters and ADT usage through ``overlay`` (this
    transaction's view: the store's, with what the decisions before in it took), the
    quarantine always from the store."""
    request = admitted.request
    static = static if static is not None else uncached()
    overlay = overlay if overlay is not None else Overlay(store)
    rid = request.header.request_id
    if release is not None:
        # Read again inside the transaction: of two officers releasing at once, one wins.
        held = store.get_quarantine(release.item)
        if held is None or not held.held:
            raise GovernanceRefused("R4.quarantine-not-held", f"quarantine item {release.item} is no longer held")
    originator = rid.originator
    user = static.get("user", originator, store.get_user, originator)
    policy = policies.for_role(user.role) if user else None
    device, history = overlay.device(rid.target)
    adt_files = (
        static.get("adt_files", originator, _current_adt_files, store, originator)
        if policy and policy.requires_adt_file else ()
    )
    usage = None
    srv_rule = policy.srvs.get(request.header.service_reference_variant) if policy else None
    supplier = supplier_at(device, history, now)[0] if device is not None else None
    adt = adt_file_for(adt_files, supplier) if supplier is not None else None
    if device is not None and supplier is not None and adt is not None and srv_rule is not None:
        srv = request.header.service_reference_variant
        windows = counting(adt, srv, device.id, default_limits(srv_rule)).windows(now)
        counted = overlay.adt_usages([AdtUsageKey(rid.originator, supplier, srv, key, start) for key, start in windows.items()])
        usage = dict(zip(windows, counted))
    signing = static.get("signing", originator, _signing_certificates, store, originator)
    return Facts(
        gbcs_signature=_check_pre_command_signature(store, admitted, policy, now, static),
        request=request,
        signer=admitted.signer,
        now=now,
        user=user,
        policy=policy,
        policy_sha256=policies.digests.get(policy.role.code) if policy else None,
        device=device,
        instructions=static.get("instructions", user.party, _instructions, store, user.party) if user else (),
        last_counter=_last_counter(overlay, rid.originator),
        last_gbcs_counter=overlay.counter(gbcs_counter_key(rid.originator)) if isinstance(admitted.gbcs, GbcsHeader) else None,
        gbcs=admitted.gbcs,
        signing_certificates=signing,
        adt_files=adt_files,
        adt_usage=usage,
        release=release,
        supplier_history=history,
        content_sha256=admitted.content_sha256,
        signed_content=admitted.signed_content,
    )


# What the static facts are read with (see ``engine.facts``).
def _current_adt_files(store: Store, user: str) -> tuple[AdtFileRecord, ...]:
    return tuple(store.current_adt_files(user))


def _signing_certificates(store: Store, user: str) -> tuple[str, ...]:
    """The serials of the Supplier Digital Signing certificates held for ``user`` (R2)."""
    return tuple(
        str(c.serial)
        for c in store.find_certificates(eui=user, role=ROLE_SUPPLIER)
        if "digital_signature" in c.key_usage and c.status is not SmkiStatus.REVOKED
    )


def _instructions(store: Store, party: str) -> tuple[Instruction, ...]:
    return tuple(store.instructions(solr_party=party))


def _certificates(store: Store, eui: str, role: int) -> tuple[CertRecord, ...]:
    return tuple(store.find_certificates(eui=eui, role=role))


def _last_counter(overlay: Overlay, originator: str) -> int | None:
    """The higher of the counters table and the log: a rolled-back or emptied counters table
    cannot let a replay through while the log (protected by checkpoints) remembers."""
    known = [c for c in overlay.replay_counters(originator) if c is not None]
    return max(known) if known else None


def _check_pre_command_signature(
    store: Store, admitted: Admitted, policy: Policy | None, now: datetime, static: FactView
) -> PreCommandSignature | None:
    """Verify a Signed Pre-Command's GBCS signature with each In use certificate of the
    signers the policy trusts. The rule R5.gbcs-signed reads only the result. The signers'
    certificates and keys are static facts (kept while the world generation stands); the
    signature is verified every time."""
    body = admitted.request.body
    header = admitted.gbcs
    if policy is None or not isinstance(body, SignedPreCommand) or not isinstance(header, GbcsHeader) or not header.signed:
        return None
    tried: list[str] = []
    for signer in policy.pre_command_signers:
        certs = static.get("pre_command_certificates", f"{signer.eui}/{signer.role}", _certificates, store, signer.eui, signer.role)
        for cert in certs:
            if cert.status is not SmkiStatus.IN_USE or "digital_signature" not in cert.key_usage or not cert.valid_at(now):
                continue
            name = f"certificate serial {cert.serial} ({cert.subject_eui}, {cert.role_name})"
            tried.append(name)
            try:
                key = static.get("public_key", cert.fingerprint, public_key, cert)
            except ValueError:  # a certificate whose key cannot be read verifies nothing
                continue
            if isinstance(key, ec.EllipticCurvePublicKey) and verify_gbcs_signature(body.gbcs_payload, header, key):
                return PreCommandSignature(tried=tuple(tried), verified_by=name)
    return PreCommandSignature(tried=tuple(tried), verified_by=None)
