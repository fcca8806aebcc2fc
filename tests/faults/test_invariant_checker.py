"""The fault suite's invariant checker, on synthetic data: it must see every kind of damage.

A checker that always says "fine" would make the whole-chain suite meaningless; these cases
show it reports a lost record, a record stored twice under two reading ids, a reading no
device made, a reading of the unregistered device, and a reading stuck in the outbox, and that
it accepts a clock-corrected time.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from tests.faults.chain import STRANGER_SERIAL, TZ, StoredRow, check_invariant
from vitalgate.firmware_sim.truth import TruthRecord
from vitalgate.readings import ReadingKind

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def record(i: int, serial: str = "CGM-1") -> TruthRecord:
    at = T0 + timedelta(minutes=5 * i, seconds=0.4)
    return TruthRecord(
        kind=ReadingKind.CGM,
        device_serial=serial,
        device_model="M",
        device_manufacturer="Sim",
        device_address="AA",
        patient_id="bert",
        sequence_number=None,
        user_id=None,
        device_time=at.astimezone(TZ).replace(tzinfo=None, microsecond=0),
        measured_at=at,
        values={"glucose_mg_dl": 100.0 + i},
    )


def row(t: TruthRecord, rid: str, *, shift_s: float = 0.0) -> StoredRow:
    assert t.device_time is not None
    return StoredRow(
        reading_id=rid,
        kind=str(t.kind),
        patient=t.patient_id,
        device=f"Sim|M|{t.device_serial}",
        measured_at=t.device_time.replace(tzinfo=TZ).astimezone(UTC) + timedelta(seconds=shift_s),
        values=dict(t.values),
    )


TRUTH = [record(i) for i in range(6)]
ROWS = [row(t, f"{i:032x}") for i, t in enumerate(TRUTH)]
CUTOFF = T0 + timedelta(hours=1)


def problems(
    rows: list[StoredRow],
    truth: list[TruthRecord] = TRUTH,
    outbox: tuple[tuple[str, datetime], ...] = (),
) -> list[str]:
    return check_invariant(truth, rows, list(outbox), cutoff=CUTOFF).problems


def test_the_exact_truth_passes_also_with_corrected_times() -> None:
    assert problems(ROWS) == []
    assert (
        problems([row(t, r.reading_id, shift_s=40.0) for t, r in zip(TRUTH, ROWS, strict=True)])
        == []
    )


def test_a_lost_record_is_reported() -> None:
    (p,) = problems(ROWS[:2] + ROWS[3:])
    assert p.startswith("lost: CGM-1")


def test_a_record_stored_twice_is_reported() -> None:
    (p,) = problems([*ROWS, dataclasses.replace(ROWS[4], reading_id="e" * 32)])
    assert p.startswith("duplicated: CGM-1") and "e" * 32 in p


def test_a_reading_no_device_made_is_reported() -> None:
    bogus = dataclasses.replace(ROWS[1], reading_id="d" * 32, values={"glucose_mg_dl": 55.0})
    (p,) = problems([*ROWS, bogus])
    assert p.startswith("phantom: stored " + "d" * 32)


def test_a_reading_of_the_unregistered_device_is_reported() -> None:
    stranger = record(2, serial=STRANGER_SERIAL)
    (p,) = problems([*ROWS, row(stranger, "c" * 32)], [*TRUTH, stranger])
    assert "unregistered device" in p


def test_a_reading_stuck_in_the_outbox_is_reported() -> None:
    (p,) = problems(ROWS[:-1], outbox=(("b" * 32, T0),))[-1:]
    assert p.startswith("stuck in the outbox")
