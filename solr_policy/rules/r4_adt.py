"""MP134B R4: AROs' Anomaly Detection Threshold files bound where and how much the role acts.

A request reaches only Devices of a Supplier named in a current ADT file for the User; a
request over a threshold of that file is held in quarantine (DCC Alert AD1), not refused.
"""

from __future__ import annotations

from solr_policy.records import AdtFileRecord
from solr_policy.rules.base import Facts, Outcome, fail, hold, ok, skip


def _file_for(f: Facts) -> AdtFileRecord | None:
    if f.device is None:
        return None
    return next((a for a in f.adt_files if a.supplier == f.device.supplier), None)


def adt_covers_supplier(f: Facts) -> Outcome:
    rule = "R4.adt-covers-supplier"
    if f.policy is None:
        return skip(rule, "no policy")
    if not f.policy.requires_adt_file:
        return ok(rule, "the policy needs no ADT file")
    if f.device is None:
        return skip(rule, "unknown Device")
    adt = _file_for(f)
    if adt is None:
        named = ", ".join(sorted({a.supplier for a in f.adt_files})) or "none"
        return fail(rule, f"no current ADT file lets this User act on Devices of Supplier {f.device.supplier} (ADT files name: {named})", "E4")
    return ok(rule, f"ADT file {adt.reference} (submitted by ARO {adt.aro}) names Supplier {f.device.supplier}")


def adt_threshold(f: Facts) -> Outcome:
    rule = "R4.adt-threshold"
    if f.policy is None or not f.policy.requires_adt_file:
        return ok(rule, "the policy needs no ADT file")
    if f.srv is None:
        return skip(rule, "SRV not allowed")
    adt = _file_for(f)
    if adt is None:
        return skip(rule, "no ADT file for the Device's Supplier")
    srv = f.request.header.service_reference_variant
    limits = adt.thresholds.get(srv)
    if limits is None and f.srv.adt_default is not None:
        limits = f.srv.adt_default.model_dump(exclude_none=True)
    if limits is None:
        return fail(rule, f"ADT file {adt.reference} sets no threshold for SRV {srv}, nor does the policy; refused by default")
    if f.released_by is not None:
        return ok(rule, f"released from quarantine by {f.released_by}")
    usage = f.adt_usage or {}
    for period in ("hour", "day"):
        limit = limits.get(f"per_{period}")
        used = usage.get(period, 0)
        if limit is not None and used + 1 > limit:
            return hold(rule, f"{used} SRV {srv} requests this {period} already reach the ADT threshold of {limit} per {period} (file {adt.reference}); the request is quarantined")
    return ok(rule, f"within ADT thresholds ({usage.get('hour', 0)}/{limits.get('per_hour', '-')} this hour, {usage.get('day', 0)}/{limits.get('per_day', '-')} today)")
