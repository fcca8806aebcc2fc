"""Ground truth: every record a simulated device produced, exactly as it encoded it.

A test (or ``vitalgate sim truth``) compares what the gateway stored with this log. Values are
the ones *as encoded* -- after SFLOAT quantisation -- so an exact comparison is meaningful, and
``device_time`` is the naive device-local timestamp as sent (wrong if the device clock was
wrong), next to the true UTC instant ``measured_at``.

The log is health data: :meth:`TruthLog.write_jsonl` creates files with mode 0600.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vitalgate.files import write_private
from vitalgate.readings import ReadingKind

__all__ = ["TruthLog", "TruthRecord"]

Attribute = str | int | float | bool | None


def _require_utc(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be timezone-aware UTC, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TruthRecord:
    """One record a device produced.

    ``values`` maps names with units (``systolic_mmhg``, ``glucose_mg_dl``) to the decoded value
    of what was encoded; ``attributes`` holds non-numeric facts (``meal``, ``irregular_pulse``,
    ``sample_type``, ``session_start``, ``time_offset_min``...).
    """

    kind: ReadingKind
    device_serial: str
    device_model: str
    device_manufacturer: str
    device_address: str
    patient_id: str
    sequence_number: int | None
    user_id: int | None
    device_time: datetime | None
    measured_at: datetime
    values: Mapping[str, float] = field(hash=False)
    attributes: Mapping[str, Attribute] = field(default_factory=dict, hash=False)
    is_control_solution: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ReadingKind(self.kind))
        _require_utc("measured_at", self.measured_at)
        if self.device_time is not None and self.device_time.tzinfo is not None:
            raise ValueError("device_time is the naive device-local time as sent")
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN values become ``null``)."""
        return {
            "kind": str(self.kind),
            "device_serial": self.device_serial,
            "device_model": self.device_model,
            "device_manufacturer": self.device_manufacturer,
            "device_address": self.device_address,
            "patient_id": self.patient_id,
            "sequence_number": self.sequence_number,
            "user_id": self.user_id,
            "device_time": None if self.device_time is None else self.device_time.isoformat(),
            "measured_at": self.measured_at.isoformat(),
            "values": {k: (None if math.isnan(v) else v) for k, v in self.values.items()},
            "attributes": dict(self.attributes),
            "is_control_solution": self.is_control_solution,
        }

    def to_json_line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TruthRecord:
        device_time = data["device_time"]
        return cls(
            kind=ReadingKind(data["kind"]),
            device_serial=str(data["device_serial"]),
            device_model=str(data["device_model"]),
            device_manufacturer=str(data["device_manufacturer"]),
            device_address=str(data["device_address"]),
            patient_id=str(data["patient_id"]),
            sequence_number=data["sequence_number"],
            user_id=data["user_id"],
            device_time=None if device_time is None else datetime.fromisoformat(device_time),
            measured_at=datetime.fromisoformat(data["measured_at"]).astimezone(UTC),
            values={k: (math.nan if v is None else float(v)) for k, v in data["values"].items()},
            attributes=dict(data.get("attributes", {})),
            is_control_solution=bool(data.get("is_control_solution", False)),
        )

    @classmethod
    def from_json_line(cls, line: str) -> TruthRecord:
        return cls.from_json(json.loads(line))


class TruthLog:
    """An append-only, in-memory log of truth records, shared by the devices of one world.

    It grows with the simulated time span (a CGM adds 288 records a day); it is not a queue and
    nothing consumes it, so it has no bound: size a simulation by its ``days``.
    """

    def __init__(self, records: Iterable[TruthRecord] = ()) -> None:
        self._records: list[TruthRecord] = list(records)

    def append(self, record: TruthRecord) -> None:
        self._records.append(record)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[TruthRecord]:
        return iter(list(self._records))

    def records(
        self,
        *,
        kind: ReadingKind | str | None = None,
        device_serial: str | None = None,
        patient_id: str | None = None,
    ) -> list[TruthRecord]:
        """The records, oldest first, optionally filtered."""
        want_kind = None if kind is None else ReadingKind(kind)
        return [
            r
            for r in self._records
            if (want_kind is None or r.kind is want_kind)
            and (device_serial is None or r.device_serial == device_serial)
            and (patient_id is None or r.patient_id == patient_id)
        ]

    def to_jsonl(self) -> str:
        return "".join(r.to_json_line() + "\n" for r in self._records)

    def write_jsonl(self, path: Path) -> None:
        """Write the log as JSON lines to ``path``, replaced atomically, mode 0600.

        Blocking: call it through ``asyncio.to_thread`` from async code.
        """
        write_private(path, self.to_jsonl(), sync=False)

    @classmethod
    def read_jsonl(cls, path: Path) -> TruthLog:
        with path.open(encoding="utf-8") as fh:
            return cls(TruthRecord.from_json_line(line) for line in fh if line.strip())
