"""MP134B R4: AROs' Anomaly Detection Threshold files bound where and how much the role acts.

A request reaches only Devices of a Supplier named in a current ADT file for the User; a
request over a threshold of that file is held in quarantine (DCC Alert AD1), not refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from solr_policy.duis.models import UpdatePaymentMode
from solr_policy.policy import SrvRule
from solr_policy.records import AdtFileRecord
from solr_policy.world import Smets
from solr_policy.rules.base import (
    DEVICE,
    POLICY,
    SRV,
    Facts,
    Verdict,
    delete,
    fail,
    hold,
    ok,
    rule,
    skip,
)

# The DCC Alert that tells the User of anomaly detection (DUIS QuarantinedRequest, whose
# ADAttributeLimitsBreach names a data-value breach). Whether the DCC reports a SMETS1
# deletion with it is this project's reading: an open question for SECAS.
DATA_VALUE_CODE = "AD1"


# window_start of recent (period, now): the gather stage, the threshold rule and the effects
# of one decision ask for the same windows (pure; cleared rather than grown).
_WINDOWS: dict[tuple[str, datetime, object], str] = {}


def window_start(period: str, now: datetime) -> str:
    """The start of the fixed UTC window ``period`` ("hour", "day", "15_minutes", "6_hours") holding ``now``."""
    key = (period, now, now.tzinfo)  # equal instants in other zones have other windows
    found = _WINDOWS.get(key)
    if found is None:
        if len(_WINDOWS) >= 1024:
            _WINDOWS.clear()
        found = _WINDOWS[key] = _window_start(period, now)
    return found


def _window_start(period: str, now: datetime) -> str:
    if period == "hour":
        return now.strftime("%Y-%m-%dT%H:00Z")
    if period == "day":
        return now.strftime("%Y-%m-%d")
    n, unit = period.split("_")
    if unit == "minutes":
        return now.strftime("%Y-%m-%dT%H:") + f"{now.minute - now.minute % int(n):02d}Z"
    return now.strftime("%Y-%m-%dT") + f"{now.hour - now.hour % int(n):02d}:00Z"


def usage_windows(now: datetime, limits: dict[str, int] | None = None, bucket: str | None = None) -> dict[str, str]:
    """The windows a request is counted in: {usage key: window start}. The key is the period
    ("hour"), or "EXCEPTION/period" for a Device counted against an ADT file's exception."""
    periods = [k.removeprefix("per_") for k in limits] if limits is not None else ["hour", "day"]
    return {(f"{bucket}/{p}" if bucket else p): window_start(p, now) for p in periods}


@dataclass(frozen=True, slots=True)
class Counting:
    """How one request is counted against an ADT file: the limits, and the exception if any."""

    adt: AdtFileRecord
    limits: dict[str, int] | None  # None: neither the file nor the policy sets one (refused)
    exception: str | None = None
    exempt: bool = False

    def windows(self, now: datetime) -> dict[str, str]:
        if self.exempt or self.limits is None:
            return {}
        return usage_windows(now, self.limits, self.exception)


def counting(adt: AdtFileRecord, srv: str, device_id: str, default: dict[str, int] | None) -> Counting:
    """The exception naming the Device for this SRV decides; else the file's threshold, else the policy's."""
    for exc in adt.exceptions:
        if device_id in exc["devices"] and (not exc.get("srvs") or srv in exc["srvs"]):
            if exc.get("exempt"):
                return Counting(adt, None, exc["name"], exempt=True)
            return Counting(adt, dict(exc["thresholds"]), exc["name"])
    # Named by no exception (most Devices): the same for every Device, so kept and shared.
    key = (id(adt), srv, id(default))
    found = _COUNTINGS.get(key)
    if found is None or found[0] is not adt or found[1] is not default:
        limits = adt.thresholds.get(srv)
        found = (adt, default, Counting(adt, dict(limits) if limits is not None else (dict(default) if default is not None else None)))
        if len(_COUNTINGS) >= 256:
            _COUNTINGS.clear()
        _COUNTINGS[key] = found
    return found[2]


# Countings without an exception, by ADT file, SRV and policy default (each kept in its entry,
# so its id is not reused while there; files are the static facts' own objects). Immutable:
# their ``limits`` are never changed. Bounded: emptied when full.
_COUNTINGS: dict[tuple[int, str, int], tuple[AdtFileRecord, dict[str, int] | None, Counting]] = {}


def adt_file_for(adt_files: tuple[AdtFileRecord, ...], supplier: str) -> AdtFileRecord | None:
    return next((a for a in adt_files if a.supplier == supplier), None)


# The policy's default limits of each SRV rule, as a dict: policies are immutable, and the
# rule object is kept with its value, so its id is not reused while cached.
_DEFAULTS: dict[int, tuple[SrvRule, dict[str, int] | None]] = {}


def default_limits(srv: SrvRule) -> dict[str, int] | None:
    """The SRV's ``adt_default`` thresholds ({"per_hour": n, ...}), or None."""
    found = _DEFAULTS.get(id(srv))
    if found is None or found[0] is not srv:
        if len(_DEFAULTS) >= 256:
            _DEFAULTS.clear()
        found = _DEFAULTS[id(srv)] = (srv, srv.adt_default.model_dump(exclude_none=True) if srv.adt_default is not None else None)
    return found[1]


def counting_for(f: Facts) -> Counting | None:
    """The Counting of this request (None when no ADT file applies); ``f.counting`` keeps it."""
    adt = f.adt_file
    if adt is None or f.srv is None or f.device is None:
        return None
    return counting(adt, f.request.header.service_reference_variant, f.device.id, default_limits(f.srv))


def _per(period: str) -> str:
    return period.replace("_", " ")


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
    adt = f.adt_file
    if adt is None:
        named = ", ".join(sorted({a.supplier for a in f.adt_files})) or "none"
        return fail(f"no current ADT file lets this User act on Devices of Supplier {f.supplier} (ADT files name: {named})")
    return ok(f"ADT file {adt.reference} (submitted by ARO {adt.aro}) names Supplier {f.supplier}")


@rule("R4.adt-threshold", "R4", code="AD1", summary="over an ADT threshold: quarantine, not refusal")
def adt_threshold(f: Facts) -> Verdict:
    if f.policy is None or not f.policy.requires_adt_file:
        return ok("the policy needs no ADT file")
    if f.srv is None:
        return skip(SRV.missing)
    adt = f.adt_file
    if adt is None:
        return skip("no ADT file for the Device's Supplier")
    srv = f.request.header.service_reference_variant
    count = f.counting
    assert count is not None
    if count.exempt:
        return ok(f"the Device is exempt from ADT thresholds for SRV {srv} by exception {count.exception} of file {adt.reference}")
    limits = count.limits
    if limits is None:
        return fail(f"ADT file {adt.reference} sets no threshold for SRV {srv}, nor does the policy; refused by default", None)
    if f.release is not None:
        return ok(f"released from quarantine by {f.release.officer}")
    usage = f.adt_usage or {}
    held_to = f"exception {count.exception} of file {adt.reference}" if count.exception else f"file {adt.reference}"
    shown = []
    for key, period in zip(f.usage_windows, (k.removeprefix("per_") for k in limits)):
        limit = limits[f"per_{period}"]
        used = usage.get(key, 0)
        if used + 1 > limit:
            return hold(f"{used} SRV {srv} requests this {_per(period)} already reach the ADT threshold of {limit} per {_per(period)} ({held_to}); the request is quarantined")
        shown.append(f"{used}/{limit} this {_per(period)}")
    return ok(f"within ADT thresholds of {held_to} (" + ", ".join(shown) + ")")


def data_values(f: Facts) -> dict[str, int]:
    """The data values the request's body carries, by the names policies bound them with."""
    body = f.body
    if isinstance(body, UpdatePaymentMode) and body.prepayment is not None:
        return {"DisablementThreshold": body.prepayment.disablement_threshold}
    return {}


@rule(
    "R4.smets1-data-values", "R4", code=DATA_VALUE_CODE, needs=(SRV, DEVICE),
    summary="a SMETS1 Service Request whose data value is outside the policy's limits: deleted, not quarantined",
)
def smets1_data_values(f: Facts) -> Verdict:
    assert f.srv is not None and f.device is not None
    limits = f.srv.smets1_data_value_limits
    if not limits:
        return ok("the policy sets no data-value limits for this SRV")
    if f.device.smets is not Smets.SMETS1:
        return ok("data-value limits apply to SMETS1 Devices only")
    values = data_values(f)
    for name, limit in limits.items():
        value = values.get(name)
        if value is None:
            continue
        if (limit.min is not None and value < limit.min) or (limit.max is not None and value > limit.max):
            bounds = f"{'-' if limit.min is None else limit.min}..{'-' if limit.max is None else limit.max}"
            return delete(f"{name} {value} is outside the SMETS1 data-value limits {bounds}; the request is deleted (ADAttributeLimitsBreach), not quarantined")
    shown = ", ".join(f"{k} {v}" for k, v in values.items() if k in limits) or "none carried"
    return ok(f"SMETS1 data values within limits ({shown})")
