"""The patients config (id, display name, time zone) and helpers shared by every view.

The patients file is TOML::

    [[patient]]
    id = "p-001"
    name = "Ada Lovelace"
    timezone = "Europe/London"

Patients found in the store but not in the file are shown with their id as name and UTC as zone.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from vitalgate.cloud_sync.schema import FLAG_BITS
from vitalgate.cloud_sync.store import ReadingSeries
from vitalgate.errors import ConfigError
from vitalgate.readings import DeviceIdentity, Meal, QualityFlag
from vitalgate.signal.units import resolve_tz

__all__ = [
    "MEAL_BY_CODE",
    "PatientInfo",
    "clinical_mask",
    "device_identity",
    "flag_mask",
    "load_patients",
    "local_day_range",
    "meals_of",
]

_ID_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")

#: Glucose Measurement Context (0x2A34) Meal field values, as an ingest may store them in the
#: numeric ``meal_code`` field.
MEAL_BY_CODE: Final[Mapping[int, Meal]] = {
    1: Meal.PREPRANDIAL,
    2: Meal.POSTPRANDIAL,
    3: Meal.FASTING,
    4: Meal.CASUAL,
    5: Meal.BEDTIME,
}


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """One patient as the views show them; ``timezone`` is an IANA zone name."""

    patient_id: str
    display_name: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not self.patient_id or not set(self.patient_id) <= _ID_CHARS:
            raise ConfigError("patient.id", f"invalid patient id {self.patient_id!r}")
        try:
            resolve_tz(self.timezone)
        except ValueError as exc:
            raise ConfigError("patient.timezone", str(exc)) from None

    @property
    def tz(self) -> tzinfo:
        return resolve_tz(self.timezone)

    @classmethod
    def unknown(cls, patient_id: str) -> PatientInfo:
        return cls(patient_id=patient_id, display_name=patient_id)


def load_patients(path: str | Path | None) -> dict[str, PatientInfo]:
    """Patients by id from a TOML file (see the module docstring); ``{}`` for ``None``."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("patients", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("patients", f"{path} is not valid TOML: {exc}") from None
    entries = doc.get("patient", [])
    if not isinstance(entries, list):
        raise ConfigError("patient", "must be an array of tables ([[patient]])")
    out: dict[str, PatientInfo] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"patient[{i}]", "must be a table")
        unknown = set(entry) - {"id", "name", "timezone"}
        if unknown:
            raise ConfigError(f"patient[{i}]", f"unknown key(s) {sorted(unknown)}")
        pid = entry.get("id")
        if not isinstance(pid, str):
            raise ConfigError(f"patient[{i}].id", "required string")
        if pid in out:
            raise ConfigError(f"patient[{i}].id", f"duplicate patient {pid!r}")
        name = entry.get("name", pid)
        tz = entry.get("timezone", "UTC")
        if not isinstance(name, str) or not isinstance(tz, str):
            raise ConfigError(f"patient[{i}]", "name and timezone must be strings")
        out[pid] = PatientInfo(patient_id=pid, display_name=name, timezone=tz)
    return out


def flag_mask(series: ReadingSeries, flag: QualityFlag) -> npt.NDArray[np.bool_]:
    """Which readings of a series carry ``flag``."""
    if not series.flags:
        return np.zeros(len(series), bool)
    name = str(flag)
    return np.fromiter((name in f for f in series.flags), bool, len(series.flags))


_NON_CLINICAL: Final = frozenset(str(f) for f in FLAG_BITS if f.non_clinical)


def clinical_mask(series: ReadingSeries) -> npt.NDArray[np.bool_]:
    """True for readings that may enter clinical statistics (no control solution, plausible)."""
    n = len(series)
    if not series.flags:
        return np.ones(n, bool)
    return np.fromiter((not (f & _NON_CLINICAL) for f in series.flags), bool, n)


def meals_of(series: ReadingSeries) -> list[Meal | None]:
    """The meal context of each glucose-meter reading (``None`` where the store has none)."""
    codes = series.values.get("meal_code")
    if codes is None:
        return [None] * len(series)
    return [MEAL_BY_CODE.get(int(c)) if np.isfinite(c) else None for c in codes]


def device_identity(device_id: str) -> DeviceIdentity:
    """The identity a store device id (``DeviceIdentity.key``) stands for."""
    if device_id.startswith("addr|"):
        return DeviceIdentity(address=device_id[5:])
    parts = device_id.split("|")
    if len(parts) == 3:
        return DeviceIdentity(address="", manufacturer=parts[0], model=parts[1], serial=parts[2])
    return DeviceIdentity(address="", model=device_id)


def local_day_range(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC bounds ``[start, end)`` covering local days ``first`` .. ``last`` inclusive."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    start = datetime.combine(first, time(0), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end
