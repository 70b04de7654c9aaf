"""Routing alerts (MP134B R7): after a failed Supplier's certificates are revoked, its
alerts go to the Shared Resource Provider (SRP) that served it. No alert is lost: an alert
that cannot be routed waits, with its reason, in a durable queue until it can.

    recipient User unknown                                    -> pending
    recipient's Party named as failed Supplier in an instruction
      (active, suspended or ended) and its certificates revoked -> its SRP, or pending
    otherwise                                                  -> the recipient User itself

The SoLR Party gets a copy only where its policy says ``alerts_to_solr_party: true``.
Routing is decided and recorded (delivery row + audit entry) in one transaction; handing
the alert to the endpoint is the embedding pipeline's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict

from solr_policy.alerts.parse import Alert, build_alert
from solr_policy.crypto.verify import Verifier
from solr_policy.duis.parser import DEFAULT_LIMITS
from solr_policy.duis.xsd import DuisSchema
from solr_policy.errors import Refused
from solr_policy.policy import PolicySet
from solr_policy.records import AlertDelivery, AlertStatus, SmkiStatus
from solr_policy.store.base import Store
from solr_policy.world import InstructionStatus

FAILED_STATES = (InstructionStatus.ACTIVE, InstructionStatus.SUSPENDED, InstructionStatus.ENDED)


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: str  # "user", "srp", "solr_party"
    id: str
    endpoint: str | None = None


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: str  # "routed" or "pending" ("refused": not a genuine alert; "duplicate": already recorded)
    alert: dict | None
    targets: list[Target]
    reason: str
    delivery_id: int | None = None
    rule: str | None = None


def plan(
    store: Store, alert: Alert, *, policies: PolicySet | None = None, now: datetime | None = None
) -> tuple[AlertStatus, list[Target], str]:
    """Where an alert goes ``now``: (status, targets, reason). Reads the store, writes nothing."""
    now = now or datetime.now(timezone.utc)
    user = store.get_user(alert.recipient)
    if user is None:
        return AlertStatus.PENDING, [], f"recipient {alert.recipient} is not a known User"
    failed_in = [i for i in store.instructions(failed_supplier=user.party) if i.status in FAILED_STATES]
    certificates = store.find_certificates(eui=alert.recipient)
    # Revoked: the SMKI revoked some, and none is left that could receive (In use and valid now).
    # A User's older certificates that expired or went out of use stay in the repository with
    # their own status; they must not keep its alerts with a User nobody can reach.
    in_force = [c for c in certificates if c.status is SmkiStatus.IN_USE and c.not_before <= now <= c.not_after]
    revoked = any(c.status is SmkiStatus.REVOKED for c in certificates) and not in_force
    if not failed_in or not revoked:
        why = "its Party is not a failed Supplier" if not failed_in else "its certificates are not revoked"
        return AlertStatus.ROUTED, [Target(kind="user", id=alert.recipient)], f"to the recipient User: {why}"
    srp = store.srp_for_supplier(user.party)
    if srp is None:
        return AlertStatus.PENDING, [], f"failed Supplier {user.party}'s certificates are revoked and no SRP is registered for it"
    targets = [Target(kind="srp", id=srp.id, endpoint=srp.endpoint)]
    copy_parties = sorted({i.solr_party for i in failed_in})
    policy = policies.for_role("SC") if policies is not None else None
    if policy is not None and policy.alerts_to_solr_party:
        targets += [Target(kind="solr_party", id=party) for party in copy_parties]
    reason = (
        f"failed Supplier {user.party} (instruction {failed_in[-1].reference}, {failed_in[-1].status.value}) "
        f"has its certificates revoked: to its SRP {srp.id}"
    )
    return AlertStatus.ROUTED, targets, reason


def _same_alert(earlier: Alert, alert: Alert) -> bool:
    if earlier.content_sha256 is not None and alert.content_sha256 is not None:
        return earlier.content_sha256 == alert.content_sha256
    # Recorded before the signed content's digest was kept: what was parsed is all there is.
    return earlier.model_dump(exclude={"content_sha256"}) == alert.model_dump(exclude={"content_sha256"})


# A refused alert keeps at most this much of its bytes (the largest message the parser accepts).
MAX_KEPT_BYTES = DEFAULT_LIMITS.max_bytes


class AlertRouter:
    def __init__(self, store: Store, *, policies: PolicySet | None = None, schema: DuisSchema | None = None) -> None:
        self.store = store
        self.policies = policies
        self.verifier = Verifier(store, schema=schema)

    def route(self, raw: bytes, *, now: datetime | None = None) -> Delivery:
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        try:
            alert = self._read(raw, now)
        except Refused as refusal:
            # Kept: a genuine alert refused today (say, the DCC's new signing certificate is not
            # imported yet) can be routed by retry(refused=True) later. At most the largest
            # message the parser accepts is kept; the full size and digest are logged.
            kept = raw[:MAX_KEPT_BYTES]
            with self.store.transaction():
                refused = AlertDelivery(
                    received_at=now, response_id="", recipient="", device=None, alert="{}",
                    status=AlertStatus.REFUSED, reason=f"{refusal.rule}: {refusal.message}",
                )
                item = self.store.add_alert_delivery(refused, kept)
                self.store.append_audit(
                    "alert.refused",
                    {"delivery": item, **refusal.as_dict(), "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "kept": len(kept)},
                    at=now,
                )
            return Delivery(status="refused", alert=None, targets=[], reason=refusal.message, rule=refusal.rule, delivery_id=item)
        with self.store.transaction():
            # Exactly once: the same signed alert (same ResponseID, same signed content) sent
            # again is not routed a second time; the first delivery stands.
            earlier = self._recorded_before(alert)
            if earlier is not None:
                self.store.append_audit("alert.duplicate", {"delivery": earlier.id, "alert": alert.summary()}, at=now,
                                        originator=alert.originator, device=alert.device)
                return Delivery(status="duplicate", alert=alert.summary(), targets=[], delivery_id=earlier.id,
                                reason=f"already recorded as delivery {earlier.id} ({earlier.status.value}); not routed again")
            status, targets, reason = plan(self.store, alert, policies=self.policies, now=now)
            recorded = self._delivery(alert, status, targets, reason, now, received_at=now)
            item = self.store.add_alert_delivery(recorded, raw)
            self._audit(item, alert, status, targets, reason, now)
        if status is AlertStatus.PENDING and plan(self.store, alert, policies=self.policies, now=now)[0] is AlertStatus.ROUTED:
            # An SRP registered by another node while this alert was recorded: that act's retry
            # ran before this row was committed and did not see it. Checked again now that the
            # row is visible, no registration is missed: one before this check is seen here,
            # one after it retries this row itself.
            again = self._retry_row(dataclasses.replace(recorded, id=item), alert, now)
            if again is not None:
                return again
        return Delivery(status=status, alert=alert.summary(), targets=targets, reason=reason, delivery_id=item)

    def retry(self, *, now: datetime | None = None, refused: bool = False) -> list[Delivery]:
        """Route again every pending alert (e.g. once an SRP is registered); with ``refused``,
        also check again the alerts refused earlier (e.g. once a DCC certificate is imported)."""
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        results = []
        waiting = self.store.alert_deliveries(status=AlertStatus.PENDING)
        if refused:
            waiting += self.store.alert_deliveries(status=AlertStatus.REFUSED)
        for row in waiting:
            assert row.id is not None  # read from the store
            if row.status is AlertStatus.REFUSED:
                try:
                    # As of when it was received: the retry only brings what was missing then
                    # (say, the DCC's certificate); a certificate that ended since does not
                    # make a genuine alert false. Its SMKI status is the one known now.
                    alert = self._read(self.store.alert_raw(row.id) or b"", row.received_at)
                except Refused as refusal:
                    results.append(Delivery(status="refused", alert=None, targets=[], reason=refusal.message, rule=refusal.rule, delivery_id=row.id))
                    continue
            else:
                alert = Alert.model_validate_json(row.alert)
            again = self._retry_row(row, alert, now)
            if again is not None:
                results.append(again)
        return results

    def retry_pending(self, *, now: datetime | None = None) -> list[Delivery]:
        return self.retry(now=now)

    def _retry_row(self, row: AlertDelivery, alert: Alert, now: datetime) -> Delivery | None:
        """Route one stored alert again (pending, or refused and now verified); None if another
        process settled it meanwhile."""
        assert row.id is not None  # read from the store
        with self.store.transaction():
            # Another process may have routed it meanwhile: act only on the row as it is now.
            current = self.store.get_alert_delivery(row.id)
            if current is None or current.status is not row.status:
                return None
            earlier = self._recorded_before(alert, besides=row.id) if current.status is AlertStatus.REFUSED else None
            if earlier is not None:
                # The DCC sent the same alert again once it could be verified, and that copy
                # was routed: this one is settled as a copy, never delivered a second time.
                reason = f"the same alert as delivery {earlier.id} ({earlier.status.value}); not routed again"
                self.store.update_alert_delivery(dataclasses.replace(
                    current, response_id=alert.response_id, recipient=alert.recipient, device=alert.device,
                    alert=alert.model_dump_json(), status=AlertStatus.DUPLICATE, reason=reason,
                ))
                self.store.append_audit("alert.duplicate", {"delivery": earlier.id, "copy": row.id, "alert": alert.summary(), "retry": True},
                                        at=now, originator=alert.originator, device=alert.device)
                return Delivery(status="duplicate", alert=alert.summary(), targets=[], reason=reason, delivery_id=earlier.id)
            status, targets, reason = plan(self.store, alert, policies=self.policies, now=now)
            if status is AlertStatus.ROUTED or current.status is AlertStatus.REFUSED:
                self.store.update_alert_delivery(self._delivery(alert, status, targets, reason, now, received_at=row.received_at, item=row.id))
                self._audit(row.id, alert, status, targets, reason, now, retry=True)
            elif reason != row.reason:
                # Still pending, for a new reason (e.g. the recipient is now known, but its
                # failed Supplier has no SRP yet): the queue shows why it waits *now*.
                self.store.update_alert_delivery(dataclasses.replace(current, reason=reason))
        return Delivery(status=status, alert=alert.summary(), targets=targets, reason=reason, delivery_id=row.id)

    # -- helpers ------------------------------------------------------------------------------
    def _read(self, raw: bytes, now: datetime) -> Alert:
        verified = self.verifier.verify(raw, now=now)
        alert = build_alert(verified.signed_root)
        return alert.model_copy(update={"content_sha256": hashlib.sha256(verified.signed_bytes).hexdigest()})

    def _recorded_before(self, alert: Alert, *, besides: int | None = None) -> AlertDelivery | None:
        """The delivery already recorded for this very alert (same ResponseID, same signed
        content), or None. Refused rows and settled copies are no delivery."""
        for earlier in self.store.alert_deliveries(response_id=alert.response_id):
            if earlier.id == besides or earlier.status in (AlertStatus.REFUSED, AlertStatus.DUPLICATE):
                continue
            if _same_alert(Alert.model_validate_json(earlier.alert), alert):
                return earlier
        return None

    @staticmethod
    def _delivery(
        alert: Alert, status: AlertStatus, targets: list[Target], reason: str, now: datetime, *, received_at: datetime, item: int | None = None
    ) -> AlertDelivery:
        return AlertDelivery(
            id=item,
            received_at=received_at,
            response_id=alert.response_id,
            recipient=alert.recipient,
            device=alert.device,
            alert=alert.model_dump_json(),
            status=status,
            target_kind=",".join(t.kind for t in targets) or None,
            target_id=",".join(t.id for t in targets) or None,
            endpoint=",".join(t.endpoint or "" for t in targets) or None,
            reason=reason,
            routed_at=now if status is AlertStatus.ROUTED else None,
        )

    def _audit(self, item: int, alert: Alert, status: AlertStatus, targets: list[Target], reason: str, now: datetime, *, retry: bool = False) -> None:
        payload = {"delivery": item, "status": status, "targets": [t.model_dump() for t in targets], "reason": reason, "alert": alert.summary()}
        if retry:
            payload["retry"] = True
        self.store.append_audit("alert.route", payload, at=now, originator=alert.originator, device=alert.device)
