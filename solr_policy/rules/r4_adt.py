"""MP134B R4: AROs' Anomaly Detection Threshold files bound where and how much the role acts.

A request reaches only Devices of a Supplier named in a current ADT file for the User; a
request over a threshold of that file is held in quarantine (DCC Alert AD1), not refused.
"""

from __future__ import annotations

from datetime import datetime

from solr_policy.records import AdtFileRecord
from solr_policy.rules.base import (
    DEVICE,
    POLICY,
    SRV,
    Facts,
    Verdict,
    fail,
    hold,
    ok,
    rule,
    skip,
)


def usage_windows(now: datetime) -> dict[str, str]:
    """The fixed UTC windows ADT thresholds count in: {period: window start}."""
    return {"hour": now.strftime("%Y-%m-%dT%H:00Z"), "day": now.strftime("%Y-%m-%d")}


def _file_for(f: Facts) -> AdtFileRecord | None:
    if f.device is None:
        return None
    return next((a for a in f.adt_files if a.supplier == f.device.supplier), None)


@rule(
    "R4.adt-covers-supplier", "R4", code="E4", needs=(POLICY,),
    summary="a Device of a Supplier no current ADT file of the User names",
)
def adt_covers_supplier(f: Facts) -> Verdict:
    assert f.policy is not None
    if not f.policy.requires_adt_file:
        return ok("the policy needs no ADT file")
    if f.device is None:
        return skip(DEVICE.missing)
    adt = _file_for(f)
    if adt is None:
        named = ", ".join(sorted({a.supplier for a in f.adt_files})) or "none"
        return fail(f"no current ADT file lets this User act on Devices of Supplier {f.device.supplier} (ADT files name: {named})")
    return ok(f"ADT file {adt.reference} (submitted by ARO {adt.aro}) names Supplier {f.device.supplier}")


@rule("R4.adt-threshold", "R4", code="AD1", summary="over an ADT threshold: quarantine, not refusal")
def adt_threshold(f: Facts) -> Verdict:
    if f.policy is None or not f.policy.requires_adt_file:
        return ok("the policy needs no ADT file")
    if f.srv is None:
        return skip(SRV.missing)
    adt = _file_for(f)
    if adt is None:
        return skip("no ADT file for the Device's Supplier")
    srv = f.request.header.service_reference_variant
    limits = adt.thresholds.get(srv)
    if limits is None and f.srv.adt_default is not None:
        limits = f.srv.adt_default.model_dump(exclude_none=True)
    if limits is None:
        return fail(f"ADT file {adt.reference} sets no threshold for SRV {srv}, nor does the policy; refused by default", None)
    if f.release is not None:
        return ok(f"released from quarantine by {f.release.officer}")
    usage = f.adt_usage or {}
    for period in ("hour", "day"):
        limit = limits.get(f"per_{period}")
        used = usage.get(period, 0)
        if limit is not None and used + 1 > limit:
            return hold(f"{used} SRV {srv} requests this {period} already reach the ADT threshold of {limit} per {period} (file {adt.reference}); the request is quarantined")
    return ok(f"within ADT thresholds ({usage.get('hour', 0)}/{limits.get('per_hour', '-')} this hour, {usage.get('day', 0)}/{limits.get('per_day', '-')} today)")
