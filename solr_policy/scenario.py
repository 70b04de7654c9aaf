"""Requests and a ready-made SoLR scenario, in business terms (demo, specs, tools).

``RequestBuilder`` writes DUIS requests the way the real templates are laid out and signs
them as the User does. ``SolrScenario`` puts a failed Supplier, a SoLR Party with its
Contingency User, and a handful of meters into a store, with certificates made on the fly.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from solr_policy.crypto.certs import read_certificates
from solr_policy.crypto.sign import sign_duis
from solr_policy.crypto.testpki import Issued, TestPki
from solr_policy.eui import duis_form
from solr_policy.gbcs.build import build_general_signing
from solr_policy.world import Device, DeviceType, Instruction, InstructionStatus, Party, Smets, User

ECS02_CREDIT, ECS03_PREPAYMENT, GCS02_CREDIT, GCS03_PREPAYMENT = 0x001A, 0x001B, 0x006C, 0x006D

_SR = "http://www.dccinterface.co.uk/ServiceUserGateway"


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
            message_code=message_code, originator=self.user.eui, recipient=recipient or device, counter=counter, cra=cra, key=self.user.key
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
    instruction_ref: str = "OFGEM-SOLR-2026-001"
    devices: dict[str, Device] = field(default_factory=dict)
    user: Issued | None = None

    def install(self, store, *, now: datetime, instruction_status: InstructionStatus = InstructionStatus.ACTIVE) -> "SolrScenario":
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
        self.devices = {
            "electricity meter (SMETS1)": Device(id="00DB1234567890A0", type=DeviceType.ESME, smets=Smets.SMETS1, supplier=self.failed_supplier),
            "gas meter (SMETS1)": Device(id="00DB1234567890A1", type=DeviceType.GSME, smets=Smets.SMETS1, supplier=self.failed_supplier),
            "electricity meter (SMETS2)": Device(id="00DB1234567890B0", type=DeviceType.ESME, smets=Smets.SMETS2, supplier=self.failed_supplier),
            "gas meter (SMETS2)": Device(id="00DB1234567890B1", type=DeviceType.GSME, smets=Smets.SMETS2, supplier=self.failed_supplier),
            "other Supplier's electricity meter": Device(id="00DB1234567890C0", type=DeviceType.ESME, smets=Smets.SMETS2, supplier=self.other_supplier),
        }
        for device in self.devices.values():
            store.put_device(device)
        store.put_instruction(
            Instruction(
                reference=self.instruction_ref,
                failed_supplier=self.failed_supplier,
                solr_party=self.solr_party,
                effective_from=now - timedelta(days=1),
                effective_until=now + timedelta(days=30),
                status=instruction_status,
            )
        )
        return self

    def requests(self, counter: int = 1000) -> RequestBuilder:
        assert self.user is not None, "install() first"
        return RequestBuilder(self.user, counter)

    def device(self, label: str) -> str:
        return self.devices[label].id
