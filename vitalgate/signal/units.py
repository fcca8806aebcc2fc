"""Unit conversions and time bases shared by the signal modules.

Glucose: mmol/L = mg/dL / 18.016 (glucose molar mass 180.16 g/mol; see the Bluetooth Glucose
Service notes and the 2017 international consensus, Danne et al., Diabetes Care 2017;40:1631).
Pressure: 1 kPa = 7.500616827 mmHg (ISO 80000-4; the BLE Blood Pressure Measurement may carry
kPa).

Times inside ``vitalgate.signal`` are int64 nanoseconds since the Unix epoch, UTC. Callers may pass
``numpy.datetime64`` arrays, integer nanosecond arrays or timezone-aware ``datetime`` objects;
:func:`as_utc_ns` converts all three and refuses naive datetimes. Local wall-clock time (for
morning/evening BP sessions and the AGP's time of day) is derived from the patient's IANA time
zone with :func:`local_offsets_s`, vectorised over the zone's transitions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, overload
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MG_DL_PER_MMOL_L",
    "MMHG_PER_KPA",
    "NS_PER_S",
    "as_utc_ns",
    "kpa_to_mmhg",
    "local_offsets_s",
    "mg_dl_to_mmol_l",
    "mmhg_to_kpa",
    "mmol_l_to_mg_dl",
    "resolve_tz",
]

MG_DL_PER_MMOL_L = 18.016
MMHG_PER_KPA = 7.500616827
NS_PER_S = 1_000_000_000

FloatArray = NDArray[np.float64]


@overload
def mg_dl_to_mmol_l(glucose_mg_dl: float) -> float: ...
@overload
def mg_dl_to_mmol_l(glucose_mg_dl: NDArray[Any]) -> FloatArray: ...
def mg_dl_to_mmol_l(glucose_mg_dl: float | NDArray[Any]) -> float | FloatArray:
    """Glucose mg/dL -> mmol/L (divide by 18.016)."""
    if isinstance(glucose_mg_dl, np.ndarray):
        return np.asarray(glucose_mg_dl, dtype=np.float64) / MG_DL_PER_MMOL_L
    return float(glucose_mg_dl) / MG_DL_PER_MMOL_L


@overload
def mmol_l_to_mg_dl(glucose_mmol_l: float) -> float: ...
@overload
def mmol_l_to_mg_dl(glucose_mmol_l: NDArray[Any]) -> FloatArray: ...
def mmol_l_to_mg_dl(glucose_mmol_l: float | NDArray[Any]) -> float | FloatArray:
    """Glucose mmol/L -> mg/dL (multiply by 18.016)."""
    if isinstance(glucose_mmol_l, np.ndarray):
        return np.asarray(glucose_mmol_l, dtype=np.float64) * MG_DL_PER_MMOL_L
    return float(glucose_mmol_l) * MG_DL_PER_MMOL_L


@overload
def kpa_to_mmhg(pressure_kpa: float) -> float: ...
@overload
def kpa_to_mmhg(pressure_kpa: NDArray[Any]) -> FloatArray: ...
def kpa_to_mmhg(pressure_kpa: float | NDArray[Any]) -> float | FloatArray:
    """Pressure kPa -> mmHg (1 kPa = 7.500616827 mmHg)."""
    if isinstance(pressure_kpa, np.ndarray):
        return np.asarray(pressure_kpa, dtype=np.float64) * MMHG_PER_KPA
    return float(pressure_kpa) * MMHG_PER_KPA


@overload
def mmhg_to_kpa(pressure_mmhg: float) -> float: ...
@overload
def mmhg_to_kpa(pressure_mmhg: NDArray[Any]) -> FloatArray: ...
def mmhg_to_kpa(pressure_mmhg: float | NDArray[Any]) -> float | FloatArray:
    """Pressure mmHg -> kPa."""
    if isinstance(pressure_mmhg, np.ndarray):
        return np.asarray(pressure_mmhg, dtype=np.float64) / MMHG_PER_KPA
    return float(pressure_mmhg) / MMHG_PER_KPA


def as_utc_ns(times: ArrayLike | Sequence[dt.datetime]) -> NDArray[np.int64]:
    """Times as int64 nanoseconds since the epoch, UTC.

    Accepts an integer array (taken as UTC nanoseconds), a ``datetime64`` array (taken as UTC) or
    a sequence of timezone-aware ``datetime`` objects. Naive datetimes raise ``ValueError``:
    device-local time must be converted at the edge, not guessed here.
    """
    if isinstance(times, np.ndarray):
        arr = times
    elif isinstance(times, Sequence) and len(times) > 0 and isinstance(times[0], dt.datetime):
        out = np.empty(len(times), dtype=np.int64)
        for i, t in enumerate(times):
            if not isinstance(t, dt.datetime) or t.tzinfo is None or t.utcoffset() is None:
                raise ValueError(f"times[{i}] must be a timezone-aware datetime, got {t!r}")
            delta = t - _EPOCH
            out[i] = (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
        return out
    else:
        arr = np.asarray(times)
    if arr.ndim != 1:
        raise ValueError(f"times must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").view(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    raise ValueError(
        f"times must be int64 UTC nanoseconds, datetime64 or aware datetimes, got {arr.dtype}"
    )


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def resolve_tz(tz: str | dt.tzinfo) -> dt.tzinfo:
    """An IANA zone name or a tzinfo -> tzinfo (``ValueError`` for an unknown name)."""
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _offset_s(tz: dt.tzinfo, t_s: int) -> int:
    off = dt.datetime.fromtimestamp(t_s, tz).utcoffset()
    return 0 if off is None else int(off.total_seconds())


def local_offsets_s(
    times_utc_ns: NDArray[np.int64], tz: str | dt.tzinfo, *, probe_s: int = 6 * 3600
) -> NDArray[np.int64]:
    """UTC offset in seconds of each time in ``tz`` (local = UTC + offset).

    Vectorised: the offset is probed every ``probe_s`` seconds across the span and each change is
    located to the second by bisection, so 90 days cost a few hundred tzinfo calls, not one per
    sample. Zones that change offset twice within ``probe_s`` (none do in practice) would be missed.
    """
    zone = resolve_tz(tz)
    t = np.asarray(times_utc_ns, dtype=np.int64)
    if t.size == 0:
        return np.empty(0, dtype=np.int64)
    lo_s = int(t.min() // NS_PER_S)
    hi_s = int(t.max() // NS_PER_S) + 1
    probes = [*range(lo_s, hi_s, probe_s), hi_s]
    offs = [_offset_s(zone, p) for p in probes]
    change_s: list[int] = []
    change_off: list[int] = []
    for a, b, oa, ob in zip(probes[:-1], probes[1:], offs[:-1], offs[1:], strict=True):
        if oa == ob:
            continue
        left, right = a, b  # offset(left) == oa, offset(right) == ob
        while right - left > 1:
            mid = (left + right) // 2
            if _offset_s(zone, mid) == oa:
                left = mid
            else:
                right = mid
        change_s.append(right)
        change_off.append(ob)
    if not change_s:
        return np.full(t.shape, offs[0], dtype=np.int64)
    bounds = np.asarray(change_s, dtype=np.int64) * NS_PER_S
    table = np.asarray([offs[0], *change_off], dtype=np.int64)
    return table[np.searchsorted(bounds, t, side="right")]
