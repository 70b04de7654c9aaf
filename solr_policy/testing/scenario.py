"""Requests and a ready-made SoLR scenario, in business terms (demo, specs, tools).

``RequestBuilder`` writes DUIS requests the way the real templates are laid out and signs
them as the User does. ``SolrScenario`` puts a failed Supplier, a SoLR Party with its
Contingency User, and a handful of meters into a store, with certificates made on the fly.
"""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from solr_policy.crypto.certs import read_certificates
from solr_policy.crypto.sign import sign_duis
from solr_policy.eui import duis_form
from solr_policy.policy import default_policy_dir
from solr_policy.store.base import Store
from solr_policy.testing.gbcs import build_general_signing
from solr_policy.testing.pki import Issued, TestPki, new_key_pem, public_pem
from solr_policy.world import (
    Device,
    DeviceType,
    Instruction,
    InstructionStatus,
    Party,
    Smets,
    User,
)

ECS02_CREDIT, ECS03_PREPAYMENT, GCS02_CREDIT, GCS03_PREPAYMENT = 0x001A, 0x001B, 0x006C, 0x006D

_SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
SOLR_POLICY_FILE = "solr-contingency.yaml"


def request_document(
    *, originator: str, target: str, counter: int, srv: str, cv: int, body: str, srv_variant: str | None = None
) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sr:Request xmlns:sr="{_SR}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" schemaVersion="5.4">\n'
        "  <sr:Header>\n"
        f"    <sr:RequestID>{duis_form(originator)}:{duis_form(target)}:{counter}</sr:RequestID>\n"
        f"    <sr:CommandVariant>{cv}</sr:CommandVariant>\n"
        f"    <sr:ServiceReference>{srv.rsplit('.', 1)[0] if srv.count('.') == 2 else srv}</sr:ServiceReference>\n"
        f"    <sr:ServiceReferenceVariant>{srv_variant or srv}</sr:ServiceReferenceVariant>\n"
        "  </sr:Header>\n"
        f"  <sr:Body>\n    {body}\n  </sr:Body>\n"
        "</sr:Request>\n"
    ).encode()


def _when(execution: datetime | None) -> str:
    if execution is None:
        return ""
    return f"<sr:ExecutionDateTime>{execution.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}</sr:ExecutionDateTime>"


@dataclass
class RequestBuilder:
    """Signed requests from one User; counters go up by themselves unless given."""

    user: Issued
    counter: int = 1000
    # Who signs the GBCS commands of Signed Pre-Commands: a party the policy may trust
    # (MP134B R2: never the SoLR User itself). None: the User's own key, which nobody trusts.
    gbcs_signer: Issued | None = None

    def _next(self, counter: int | None) -> int:
        if counter is None:
            self.counter += 1
            return self.counter
        self.counter = max(self.counter, counter)
        return counter

    def _sign(self, document: bytes) -> bytes:
        return sign_duis(document, self.user.key_pem, self.user.cert_pem)

    def switch_to_credit(self, device: str, *, counter: int | None = None, execution: datetime | None = None) -> bytes:
        body = f"<sr:UpdatePaymentMode>{_when(execution)}<sr:Credit/></sr:UpdatePaymentMode>"
        return self._sign(request_document(originator=self.user.eui, target=device, counter=self._next(counter), srv="1.6", cv=4, body=body))

    def switch_to_prepayment(self, device: str, *, counter: int | None = None) -> bytes:
        body = (
            "<sr:UpdatePaymentMode><sr:Prepayment><sr:SuspendDebtDisabled>false</sr:SuspendDebtDisabled>"
            "<sr:SuspendDebtEmergency>false</sr:SuspendDebtEmergency><sr:DisablementThreshold>0</sr:DisablementThreshold>"
            "</sr:Prepayment></sr:UpdatePaymentMode>"
        )
        return self._sign(request_document(originator=self.user.eui, target=device, counter=self._next(counter), srv="1.6", cv=4, body=body))

    def signed_pre_command(
        self,
        device: str,
        message_code: int,
        *,
        counter: int | None = None,
        cv: int = 5,
        recipient: str | None = None,
        cra: int = 0x01,
        payload: bytes | None = None,
        execution: datetime | None = None,
    ) -> bytes:
        counter = self._next(counter)
        gbcs = payload or build_general_signing(
            message_code=message_code, originator=self.user.eui, recipient=recipient or device, counter=counter, cra=cra,
            key=(self.gbcs_signer or self.user).key,
        )
        body = f"<sr:SignedPreCommand>{_when(execution)}<sr:GBCSPayload>{base64.b64encode(gbcs).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
        return self._sign(request_document(originator=self.user.eui, target=device, counter=counter, srv="1.6", cv=cv, body=body))

    def update_meter_balance(self, device: str, *, counter: int | None = None) -> bytes:
        body = "<sr:UpdateMeterBalance><sr:PrepaymentMode><sr:AdjustMeterBalance>1200000</sr:AdjustMeterBalance></sr:PrepaymentMode></sr:UpdateMeterBalance>"
        return self._sign(request_document(originator=self.user.eui, target=device, counter=self._next(counter), srv="1.5", cv=4, body=body))

    def other(self, device: str, *, srv: str, cv: int, body: str, counter: int | None = None) -> bytes:
        return self._sign(request_document(originator=self.user.eui, target=device, counter=self._next(counter), srv=srv, cv=cv, body=body))


@dataclass
class SolrScenario:
    """A failed Supplier, its SoLR Party and Contingency User, and meters on both sides."""

    pki: TestPki = field(default_factory=lambda: TestPki("DEMO"))
    failed_supplier: str = "FAILED-ENERGY"
    other_supplier: str = "STEADY-POWER"
    solr_party: str = "SOLR-PARTY"
    user_eui: str = "90B3D51F300F0001"
    # A party trusted to sign the role's Pre-Commands, when a policy names it (see write_policies).
    pre_command_signer_eui: str = "90B3D51F300C0001"
    pre_command_signer: Issued | None = None
    instruction_ref: str = "OFGEM-SOLR-2026-001"
    devices: dict[str, Device] = field(default_factory=dict)
    user: Issued | None = None
    officer_keys: dict[str, bytes] = field(default_factory=dict)  # officer id -> private key PEM
    adt_reference: str = "ADT-SOLR-2026-001"
    thresholds: dict[str, dict[str, int]] = field(default_factory=lambda: {"1.6": {"per_hour": 1000, "per_day": 10000}})

    def install(
        self,
        store: Store,
        *,
        now: datetime,
        instruction_status: InstructionStatus | None = InstructionStatus.ACTIVE,
        adt: bool = True,
    ) -> "SolrScenario":
        """Parties, User, Devices; an instruction recorded directly (no lifecycle) unless
        ``instruction_status`` is None; governance officers, the Party's SRO and ARO, and a
        signed ADT file for the failed Supplier unless ``adt`` is False."""
        for party, name in (
            (self.failed_supplier, "Failed Energy Ltd (in Supplier failure)"),
            (self.other_supplier, "Steady Power plc"),
            (self.solr_party, "SoLR Contingency Services Ltd"),
        ):
            store.put_party(Party(id=party, name=name))
        self.user = self.pki.issue(self.user_eui, 135)
        for record in read_certificates(self.user.cert_pem):
            store.put_certificate(record)
        store.put_user(User(id=self.user_eui, party=self.solr_party, role="SC"))
        self.pre_command_signer = self.pki.issue(self.pre_command_signer_eui, 2)  # a Digital Signing certificate
        for record in read_certificates(self.pre_command_signer.cert_pem):
            store.put_certificate(record)
        self.devices = {
            "electricity meter (SMETS1)": Device(id="00DB1234567890A0", type=DeviceType.ESME, smets=Smets.SMETS1, supplier=self.failed_supplier),
            "gas meter (SMETS1)": Device(id="00DB1234567890A1", type=DeviceType.GSME, smets=Smets.SMETS1, supplier=self.failed_supplier),
            "electricity meter (SMETS2)": Device(id="00DB1234567890B0", type=DeviceType.ESME, smets=Smets.SMETS2, supplier=self.failed_supplier),
            "gas meter (SMETS2)": Device(id="00DB1234567890B1", type=DeviceType.GSME, smets=Smets.SMETS2, supplier=self.failed_supplier),
            "other Supplier's electricity meter": Device(id="00DB1234567890C0", type=DeviceType.ESME, smets=Smets.SMETS2, supplier=self.other_supplier),
        }
        for device in self.devices.values():
            store.put_device(device)
        if instruction_status is not None:
            store.put_instruction(self.instruction(now, status=instruction_status))
        self._install_officers(store, now)
        if adt:
            self.submit_adt(store, now=now)
        return self

    def instruction(self, now: datetime, *, status: InstructionStatus = InstructionStatus.ACTIVE) -> Instruction:
        return Instruction(
            reference=self.instruction_ref,
            failed_supplier=self.failed_supplier,
            solr_party=self.solr_party,
            effective_from=now - timedelta(days=1),
            effective_until=now + timedelta(days=30),
            status=status,
        )

    def _install_officers(self, store: Store, now: datetime) -> None:
        from solr_policy.governance import officers

        if store.get_officer("gov-alice") is not None:
            return
        for officer_id in ("gov-alice", "gov-bob", "sro-sam", "aro-ann"):
            self.officer_keys[officer_id] = new_key_pem()
        officers.register_governance_officer(store, "gov-alice", name="Alice (DCC governance)", public_key=public_pem(self.officer_keys["gov-alice"]), at=now)
        officers.register_governance_officer(store, "gov-bob", name="Bob (DCC governance)", public_key=public_pem(self.officer_keys["gov-bob"]), at=now, by="gov-alice")
        officers.register_sro(store, "sro-sam", name="Sam (SRO)", party=self.solr_party, public_key=public_pem(self.officer_keys["sro-sam"]), by="gov-alice", at=now)
        officers.appoint_aro(store, "aro-ann", name="Ann (ARO)", party=self.solr_party, public_key=public_pem(self.officer_keys["aro-ann"]), by="sro-sam", at=now)

    def adt_file(
        self,
        *,
        reference: str | None = None,
        supplier: str | None = None,
        thresholds: dict[str, dict[str, int]] | None = None,
        party: str | None = None,
        exceptions: list[dict] | None = None,
    ) -> bytes:
        from solr_policy.governance.adt import adt_text

        return adt_text(
            reference=reference or self.adt_reference,
            party=party or self.solr_party,
            user=duis_form(self.user_eui),
            supplier=supplier or self.failed_supplier,
            thresholds=thresholds or self.thresholds,
            exceptions=exceptions,
        )

    def submit_adt(
        self,
        store: Store,
        *,
        now: datetime,
        aro: str = "aro-ann",
        reference: str | None = None,
        supplier: str | None = None,
        thresholds: dict[str, dict[str, int]] | None = None,
        party: str | None = None,
        exceptions: list[dict] | None = None,
    ) -> None:
        """``adt_file`` with these values, signed by ``aro`` and submitted."""
        from solr_policy.governance.adt import sign_adt, submit_adt

        data = self.adt_file(reference=reference, supplier=supplier, thresholds=thresholds, party=party, exceptions=exceptions)
        submit_adt(store, data, sign_adt(data, self.officer_keys[aro]), aro=aro, at=now)

    def requests(self, counter: int = 1000) -> RequestBuilder:
        assert self.user is not None, "install() first"
        return RequestBuilder(self.user, counter, gbcs_signer=self.pre_command_signer)

    def write_policies(self, folder: Path, *, source: Path | None = None) -> Path:
        """A copy of the policy folder whose SoLR Contingency policy trusts this scenario's
        Pre-Command signer (the published policy trusts nobody); returns ``folder``."""
        source = source or default_policy_dir()
        shutil.copytree(source, folder, dirs_exist_ok=True)
        path = folder / SOLR_POLICY_FILE
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["pre_command_signers"] = [
            {"eui": duis_form(self.pre_command_signer_eui), "role": 2, "note": "the scenario's Pre-Command signing party"}
        ]
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return folder

    def device(self, label: str) -> str:
        return self.devices[label].id

    # The Suppliers' own Users (Import Suppliers), which alerts are addressed to (R7).
    failed_supplier_user: str = "90B3D51F300E0001"
    other_supplier_user: str = "90B3D51F300D0001"

    def install_alerting(self, store: Store) -> "AlertBuilder":
        """The Suppliers' Users with XML Sign certificates, and a DCC signing certificate."""
        for eui, party in ((self.failed_supplier_user, self.failed_supplier), (self.other_supplier_user, self.other_supplier)):
            issued = self.pki.issue(eui, 135)
            for record in read_certificates(issued.cert_pem):
                store.put_certificate(record)
            store.put_user(User(id=eui, party=party, role="IS"))
        dsp = self.pki.issue(DCC_EUI, 137)
        for record in read_certificates(dsp.cert_pem):
            store.put_certificate(record)
        return AlertBuilder(dsp)

    def revoke_certificates(self, store: Store, party: str) -> int:
        """The SMKI revokes a failed Supplier's certificates: all of its Users'."""
        from solr_policy.records import SmkiStatus

        count = 0
        for user in store.list_users():
            if user.party == party:
                for record in store.find_certificates(eui=user.id):
                    count += store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
        return count


DCC_EUI = "90B3D51F30000002"  # the DCC (DSP) as originator of DCC Alerts


def alert_document(
    *, originator: str, recipient: str, counter: int, body: str, when: datetime, response_code: str = "I0"
) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sr:Response xmlns:sr="{_SR}" schemaVersion="5.4">\n'
        "  <sr:Header>\n"
        f"    <sr:ResponseID>{duis_form(originator)}:{duis_form(recipient)}:{counter}</sr:ResponseID>\n"
        f"    <sr:ResponseCode>{response_code}</sr:ResponseCode>\n"
        f"    <sr:ResponseDateTime>{when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}</sr:ResponseDateTime>\n"
        "  </sr:Header>\n"
        f"  <sr:Body>\n    {body}\n  </sr:Body>\n"
        "</sr:Response>\n"
    ).encode()


@dataclass
class AlertBuilder:
    """DCC-signed alerts, as the DCC sends them, signed with a DSP XML Sign (137) certificate."""

    dsp: Issued
    counter: int = 5000

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def device_alert(self, device: str, recipient: str, *, alert_code: str = "8F84", when: datetime | None = None) -> bytes:
        gbcs = base64.b64encode(bytes.fromhex("DF0903") + bytes(8)).decode()
        body = (
            f"<sr:DeviceAlertMessage><sr:AlertCode>{alert_code}</sr:AlertCode>"
            f"<sr:GBCSPayload>{gbcs}</sr:GBCSPayload></sr:DeviceAlertMessage>"
        )
        document = alert_document(originator=device, recipient=recipient, counter=self._next(), body=body, when=when or datetime.now(timezone.utc))
        return sign_duis(document, self.dsp.key_pem, self.dsp.cert_pem)

    def power_outage(self, comms_hub: str, recipient: str, *, when: datetime | None = None) -> bytes:
        when = when or datetime.now(timezone.utc)
        body = (
            "<sr:DCCAlertMessage><sr:DCCAlertCode>N1</sr:DCCAlertCode><sr:DCCAlert><sr:PowerOutageEvent>"
            f"<sr:CommsHubDeviceID>{duis_form(comms_hub)}</sr:CommsHubDeviceID>"
            f"<sr:StartDateTime>{when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}</sr:StartDateTime>"
            "<sr:MPxN>1234567890123</sr:MPxN></sr:PowerOutageEvent></sr:DCCAlert></sr:DCCAlertMessage>"
        )
        document = alert_document(originator=DCC_EUI, recipient=recipient, counter=self._next(), body=body, when=when)
        return sign_duis(document, self.dsp.key_pem, self.dsp.cert_pem)
