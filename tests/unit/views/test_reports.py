"""Reports: the AGP report draws exactly vitalgate.signal's percentiles; PDF/PNG output."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.readings import ReadingKind
from vitalgate.signal import cgm as cgm_signal
from vitalgate.views.patients import PatientInfo, clinical_mask, local_day_range
from vitalgate.views.reports import agp_figure, agp_report_data, bp_figure, render_report

from .conftest import LAST_DAY, PATIENT

FIRST_DAY = LAST_DAY - timedelta(days=13)


def test_agp_report_percentiles_equal_signal(sample_store: SqliteStore) -> None:
    # independently: query, select clinical readings, ask vitalgate.signal
    start, end = local_day_range(FIRST_DAY, LAST_DAY, PATIENT.tz)
    s = sample_store.query(PATIENT.patient_id, ReadingKind.CGM, start, end)
    g = s.values["glucose_mg_dl"]
    keep = clinical_mask(s) & np.isfinite(g)
    expected = cgm_signal.agp(g[keep], s.times_ns[keep], tz=PATIENT.timezone, days=14)
    metrics = cgm_signal.metrics(g[keep], s.times_ns[keep])

    data = agp_report_data(sample_store, PATIENT, FIRST_DAY, LAST_DAY)
    assert data.metrics == metrics
    fig = agp_figure(data)
    lines = {line.get_label(): line for ax in fig.axes for line in ax.lines}
    for name in ("p5", "p25", "p50", "p75", "p95"):
        drawn = np.asarray(lines[name].get_ydata(), dtype=float)[:-1]  # last = wrap to 24:00
        np.testing.assert_array_equal(drawn, getattr(expected, f"{name}_mg_dl"))
        x = np.asarray(lines[name].get_xdata(), dtype=float)[:-1]
        np.testing.assert_allclose(x * 60, expected.time_of_day_min, atol=1e-9)
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert f"{metrics.tir_pct:.1f} %" in texts and f"{metrics.gmi_pct:.1f} %" in texts


@pytest.mark.parametrize(
    ("kind", "fmt", "magic"),
    [("agp", "pdf", b"%PDF"), ("agp", "png", b"\x89PNG"), ("bp", "pdf", b"%PDF"),
     ("bp", "png", b"\x89PNG")],
)  # fmt: skip
def test_render_formats(sample_store: SqliteStore, kind: str, fmt: str, magic: bytes) -> None:
    out = render_report(sample_store, PATIENT, FIRST_DAY, LAST_DAY, kind=kind, fmt=fmt)  # type: ignore[arg-type]
    assert out.startswith(magic) and len(out) > 20_000


def test_bp_report_shows_signal_summary(sample_store: SqliteStore) -> None:
    from vitalgate.signal import bp as bp_signal

    start, end = local_day_range(FIRST_DAY, LAST_DAY, PATIENT.tz)
    s = sample_store.query(PATIENT.patient_id, ReadingKind.BLOOD_PRESSURE, start, end)
    keep = clinical_mask(s)
    summary = bp_signal.home_bp_summary(
        s.times_ns[keep],
        s.values["systolic_mmhg"][keep],
        s.values["diastolic_mmhg"][keep],
        tz=PATIENT.timezone,
        first_day=LAST_DAY - timedelta(days=6),
        days=7,
    )
    fig = bp_figure(sample_store, PATIENT, FIRST_DAY, LAST_DAY)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    expected = f"{summary.mean_systolic_mmhg:.0f} / {summary.mean_diastolic_mmhg:.0f} mmHg"
    assert expected in texts


def test_reports_without_data(sample_store: SqliteStore) -> None:
    nobody = PatientInfo(patient_id="p-none", display_name="Nobody")
    day = date(2026, 1, 1)
    for kind in ("agp", "bp"):
        out = render_report(
            sample_store, nobody, day, day, kind="agp" if kind == "agp" else "bp", fmt="png"
        )
        assert out.startswith(b"\x89PNG")
