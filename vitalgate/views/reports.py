"""Printable reports (matplotlib, PDF or PNG): the AGP report and the home-BP report.

The AGP report follows the standard one-page layout (Battelino et al., Diabetes Care
2019;42:1593, figure 1; the IDC AGP report): a glucose statistics and targets block, the
time-in-ranges bar in the consensus colours, the AGP (5/25/50/75/95th percentiles by time of day,
target range 70-180 mg/dL) and the daily glucose profiles of the last 14 days. The BP report
shows the home-BP protocol summary (ESH 2021: morning and evening duplicates, day 1 discarded),
the ACC/AHA category, the Theil-Sen trend and a chart of the readings with the home targets.

Every number comes from :mod:`vitalgate.signal`; the AGP curves are drawn unsmoothed, exactly as
:func:`vitalgate.signal.cgm.agp` returns them (lines labelled ``p5`` .. ``p95``), so a test can
compare them. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so reports
can be rendered from worker threads.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from vitalgate.cloud_sync.store import ReadingStore
from vitalgate.readings import QualityFlag, ReadingKind
from vitalgate.signal import bp as bp_signal
from vitalgate.signal import cgm as cgm_signal
from vitalgate.views.pagedata import BP_CATEGORY_LABELS, local_ms
from vitalgate.views.patients import (
    PatientInfo,
    clinical_mask,
    flag_mask,
    local_day_range,
)

__all__ = ["AgpReportData", "agp_figure", "agp_report_data", "bp_figure", "render_report"]

#: Consensus time-in-ranges colours (very low .. very high).
TIR_COLOURS: Final = ("#8b1a1a", "#e53935", "#43a047", "#fdd835", "#fb8c00")
_BAND95: Final = "#b9cfe8"
_BAND50: Final = "#5d8fc9"
_MEDIAN: Final = "#0d3b73"
_TARGET: Final = "#2e7d32"
_A4: Final = (8.27, 11.69)
_NO_DATA = "No data in this period"


@dataclass(frozen=True, slots=True)
class AgpReportData:
    """What the AGP report shows, computed by :mod:`vitalgate.signal`."""

    patient: PatientInfo
    first_day: date
    last_day: date
    metrics: cgm_signal.CgmMetrics | None
    agp: cgm_signal.Agp | None
    times_ns: npt.NDArray[np.int64]
    glucose_mg_dl: npt.NDArray[np.float64]


def agp_report_data(
    store: ReadingStore, patient: PatientInfo, first_day: date, last_day: date
) -> AgpReportData:
    start, end = local_day_range(first_day, last_day, patient.tz)
    s = store.query(patient.patient_id, ReadingKind.CGM, start, end)
    g = s.values.get("glucose_mg_dl", np.full(len(s), np.nan))
    keep = clinical_mask(s) & np.isfinite(g) & (g > 0)
    g, t = g[keep], s.times_ns[keep]
    days = (last_day - first_day).days + 1
    if g.size < 2:
        return AgpReportData(patient, first_day, last_day, None, None, t, g)
    metrics = cgm_signal.metrics(g, t)
    agp = cgm_signal.agp(g, t, tz=patient.timezone, days=days)
    return AgpReportData(patient, first_day, last_day, metrics, agp, t, g)


def _header(fig: Figure, title: str, patient: PatientInfo, first: date, last: date) -> None:
    fig.text(0.05, 0.965, title, fontsize=17, fontweight="bold", color="#15324f")
    fig.text(
        0.05,
        0.945,
        f"{patient.display_name}  ·  {patient.patient_id}  ·  {first:%d %b %Y} - {last:%d %b %Y}"
        f" ({(last - first).days + 1} days)  ·  times in {patient.timezone}",
        fontsize=9.5,
        color="#333",
    )
    fig.text(
        0.95,
        0.012,
        f"generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · vitalgate",
        fontsize=6.5,
        color="#777",
        ha="right",
    )


def _stats_block(fig: Figure, m: cgm_signal.CgmMetrics) -> None:
    ax = fig.add_axes((0.05, 0.64, 0.52, 0.27))
    ax.set_axis_off()
    ax.set_title("Glucose statistics and targets", loc="left", fontsize=11, fontweight="bold")
    rows: list[tuple[str, str, str]] = [
        ("Days of data", f"{m.days:.1f} days", "14 days or more"),
        ("Time CGM active", f"{m.active_pct:.1f} %", "70 % or more"),
        ("Time in range 70-180 mg/dL", f"{m.tir_pct:.1f} %", "greater than 70 %"),
        ("Time below 70 mg/dL", f"{m.tbr_pct:.1f} %", "less than 4 %"),
        ("Time below 54 mg/dL", f"{m.tbr_level2_pct:.1f} %", "less than 1 %"),
        ("Time above 180 mg/dL", f"{m.tar_pct:.1f} %", "less than 25 %"),
        ("Time above 250 mg/dL", f"{m.tar_level2_pct:.1f} %", "less than 5 %"),
        ("Mean glucose", f"{m.mean_mg_dl:.0f} mg/dL", ""),
        ("Glucose management indicator (GMI)", f"{m.gmi_pct:.1f} %", ""),
        ("Glucose variability (CV)", f"{m.cv_pct:.1f} %", "36 % or less"),
    ]
    y = 0.93
    ax.text(0.0, y, "Metric", fontsize=8, color="#666", transform=ax.transAxes)
    ax.text(0.60, y, "Value", fontsize=8, color="#666", transform=ax.transAxes)
    ax.text(0.78, y, "Target", fontsize=8, color="#666", transform=ax.transAxes)
    for label, value, target in rows:
        y -= 0.088
        ax.text(0.0, y, label, fontsize=9, transform=ax.transAxes)
        ax.text(0.60, y, value, fontsize=9, fontweight="bold", transform=ax.transAxes)
        ax.text(0.78, y, target, fontsize=8, color="#444", transform=ax.transAxes)
    if not m.sufficient:
        ax.text(
            0.0,
            y - 0.1,
            "Less than 14 days or less than 70 % active: interpret with caution.",
            fontsize=8,
            color="#a4161a",
            transform=ax.transAxes,
        )


def _tir_bar(fig: Figure, m: cgm_signal.CgmMetrics) -> None:
    ax = fig.add_axes((0.66, 0.64, 0.08, 0.25))
    parts = [
        ("Very high >250", m.tar_level2_pct),
        ("High 181-250", m.tar_pct - m.tar_level2_pct),
        ("Target 70-180", m.tir_pct),
        ("Low 54-69", m.tbr_pct - m.tbr_level2_pct),
        ("Very low <54", m.tbr_level2_pct),
    ]
    bottom = 0.0
    label_y: list[float] = []
    for (_, pct), colour in zip(reversed(parts), TIR_COLOURS, strict=True):
        ax.bar([0], [pct], bottom=bottom, color=colour, width=0.8, edgecolor="white", linewidth=1)
        label_y.append(bottom + pct / 2)
        bottom += pct
    ax.set_xlim(-0.5, 0.5)
    ax.set_ylim(0, 100)
    ax.set_axis_off()
    ax.set_title("Time in ranges", loc="left", fontsize=11, fontweight="bold")
    # Labels beside the bar, spread so small segments stay readable.
    ys = np.array(label_y)
    spread = np.maximum.accumulate(np.maximum(ys, np.arange(ys.size) * 9.0 + 4.0))
    for (name, pct), y, colour in zip(reversed(parts), spread, TIR_COLOURS, strict=True):
        ax.text(0.6, y, f"{name}:  {pct:.0f} %", fontsize=8.5, va="center", color="#222")
        ax.plot([0.42, 0.58], [y, y], color=colour, linewidth=2, clip_on=False)


def _agp_axes(fig: Figure, a: cgm_signal.Agp) -> None:
    ax = fig.add_axes((0.08, 0.37, 0.86, 0.23))
    x = np.append(a.time_of_day_min, 1440) / 60.0

    def closed(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.append(v, v[0])  # the modal day wraps at midnight

    p5, p25, p50, p75, p95 = (
        closed(a.p5_mg_dl),
        closed(a.p25_mg_dl),
        closed(a.p50_mg_dl),
        closed(a.p75_mg_dl),
        closed(a.p95_mg_dl),
    )
    ax.axhspan(70, 180, color="#e8f5e9", zorder=0)
    ax.fill_between(x, p5, p95, color=_BAND95, linewidth=0, label="5-95 %")
    ax.fill_between(x, p25, p75, color=_BAND50, linewidth=0, label="25-75 %")
    ax.plot(x, p5, color=_BAND50, linewidth=0.6, linestyle="--", label="p5")
    ax.plot(x, p95, color=_BAND50, linewidth=0.6, linestyle="--", label="p95")
    ax.plot(x, p25, color=_BAND50, linewidth=0.6, label="p25")
    ax.plot(x, p75, color=_BAND50, linewidth=0.6, label="p75")
    ax.plot(x, p50, color=_MEDIAN, linewidth=2.2, label="p50")
    for y in (70, 180):
        ax.axhline(y, color=_TARGET, linewidth=1.2)
    ax.set_xlim(0, 24)
    ax.set_ylim(0, 350)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)], fontsize=8)
    ax.set_yticks([0, 54, 70, 180, 250, 350])
    ax.tick_params(labelsize=8)
    ax.set_ylabel("mg/dL", fontsize=9)
    ax.grid(axis="x", color="#eee")
    ax.set_title(
        f"Ambulatory glucose profile (AGP) · {a.days} days, {a.readings} readings",
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    handles = ax.get_legend_handles_labels()[0][:2]
    median = next(line for line in ax.lines if line.get_label() == "p50")
    ax.legend(
        [*handles, median],
        ["5-95 %", "25-75 %", "median"],
        fontsize=7.5,
        loc="upper right",
        frameon=False,
        ncol=3,
    )


def _daily(fig: Figure, data: AgpReportData) -> None:
    tz = data.patient.timezone
    lt = local_ms(data.times_ns, tz)
    day_index = lt // 86_400_000
    last = (data.last_day - date(1970, 1, 1)).days
    fig.text(0.05, 0.315, "Daily glucose profiles", fontsize=11, fontweight="bold")
    width, gap = 0.124, 0.005
    for k in range(14):
        d = last - 13 + k
        row, col = divmod(k, 7)
        ax = fig.add_axes((0.06 + col * (width + gap), 0.19 - row * 0.13, width, 0.1))
        ax.axhspan(70, 180, color="#e8f5e9", zorder=0)
        lo, hi = np.searchsorted(day_index, [d, d + 1])
        if hi > lo:
            x = (lt[lo:hi] - d * 86_400_000) / 3_600_000.0
            y = data.glucose_mg_dl[lo:hi]
            gaps = np.flatnonzero(np.diff(x) > 0.25) + 1
            for xs, ys in zip(np.split(x, gaps), np.split(y, gaps), strict=True):
                ax.plot(xs, ys, color=_MEDIAN, linewidth=0.8)
                ax.fill_between(xs, 180, ys, where=ys > 180, color="#fdd835", alpha=0.6, lw=0)
                ax.fill_between(xs, 70, ys, where=ys < 70, color="#e53935", alpha=0.6, lw=0)
        ax.set_xlim(0, 24)
        ax.set_ylim(40, 350)
        ax.set_xticks([6, 12, 18], ["06", "12", "18"] if row == 1 else ["", "", ""], fontsize=6.5)
        ax.set_yticks([70, 180], ["70", "180"] if col == 0 else ["", ""], fontsize=6.5)
        day = date(1970, 1, 1) + timedelta(days=d)
        ax.set_title(f"{day:%a %d %b}", fontsize=7.5, pad=2)
        for spine in ax.spines.values():
            spine.set_color("#ccc")


def agp_figure(data: AgpReportData) -> Figure:
    """The one-page AGP report."""
    fig = Figure(figsize=_A4)
    _header(fig, "AGP Report: Continuous Glucose Monitoring", data.patient, data.first_day,
            data.last_day)  # fmt: skip
    if data.metrics is None or data.agp is None:
        fig.text(0.5, 0.6, _NO_DATA, ha="center", fontsize=14, color="#777")
        return fig
    _stats_block(fig, data.metrics)
    _tir_bar(fig, data.metrics)
    _agp_axes(fig, data.agp)
    _daily(fig, data)
    fig.text(
        0.05,
        0.008,
        "Targets: Battelino T et al., Diabetes Care 2019;42:1593. Percentiles by local time of day,"
        "\nunsmoothed 5-min bins. Control-solution and implausible readings excluded.",
        fontsize=6.5,
        color="#777",
    )
    return fig


def _trend_text(tr: bp_signal.Trend) -> str:
    if not np.isfinite(tr.slope_mmhg_per_week):
        return "-"
    return (
        f"{tr.slope_mmhg_per_week:+.1f} mmHg/week (95 % CI {tr.ci_low_mmhg_per_week:+.1f}"
        f" to {tr.ci_high_mmhg_per_week:+.1f})"
    )


def bp_figure(store: ReadingStore, patient: PatientInfo, first_day: date, last_day: date) -> Figure:
    """The home blood-pressure report."""
    start, end = local_day_range(first_day, last_day, patient.tz)
    s = store.query(patient.patient_id, ReadingKind.BLOOD_PRESSURE, start, end)
    sys_ = s.values.get("systolic_mmhg", np.full(len(s), np.nan))
    dia = s.values.get("diastolic_mmhg", np.full(len(s), np.nan))
    keep = clinical_mask(s) & np.isfinite(sys_) & np.isfinite(dia)
    irregular = flag_mask(s, QualityFlag.IRREGULAR_PULSE)[keep] if s.flags else np.zeros(0, bool)
    t, sys_, dia = s.times_ns[keep], sys_[keep], dia[keep]
    fig = Figure(figsize=_A4)
    _header(fig, "Home Blood Pressure Report", patient, first_day, last_day)
    if t.size == 0:
        fig.text(0.5, 0.6, _NO_DATA, ha="center", fontsize=14, color="#777")
        return fig
    week_start = max(first_day, last_day - timedelta(days=6))
    summary = bp_signal.home_bp_summary(
        t, sys_, dia, tz=patient.timezone, first_day=week_start, days=7
    )
    all_range = bp_signal.home_bp_summary(
        t, sys_, dia, tz=patient.timezone, first_day=first_day,
        days=max(2, (last_day - first_day).days + 1), discard_first_day=False,
    )  # fmt: skip
    tr_s = bp_signal.trend(t, sys_)
    tr_d = bp_signal.trend(t, dia)

    def mmhg(a: float, b: float) -> str:
        return "-" if not (np.isfinite(a) and np.isfinite(b)) else f"{a:.0f} / {b:.0f} mmHg"

    ax = fig.add_axes((0.05, 0.55, 0.9, 0.34))
    ax.set_axis_off()
    ax.set_title(
        "Home-BP protocol summary (last 7 days, day 1 discarded; ESH 2021)",
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    category = BP_CATEGORY_LABELS[int(summary.category)] if summary.category is not None else "-"
    rows = [
        ("Protocol week", f"{summary.first_day:%d %b} - {summary.last_day:%d %b %Y}"),
        ("Readings used", f"{summary.readings_used} ({summary.morning_count} morning, "
                          f"{summary.evening_count} evening)"),
        ("Sessions measured", f"{summary.sessions_with_readings} of "
                              f"{summary.sessions_expected} ({summary.adherence_pct:.0f} %)"),
        ("Morning mean", mmhg(summary.morning_mean_systolic_mmhg,
                              summary.morning_mean_diastolic_mmhg)),
        ("Evening mean", mmhg(summary.evening_mean_systolic_mmhg,
                              summary.evening_mean_diastolic_mmhg)),
        ("Home BP mean", mmhg(summary.mean_systolic_mmhg, summary.mean_diastolic_mmhg)),
        ("Home target", "below 135 / 85 mmHg  ->  "
                        + ("ABOVE target" if summary.above_threshold else "at target")),
        ("Category (ACC/AHA 2017)", category),
        ("Enough readings (>= 12)", "yes" if summary.sufficient else "no - interpret with care"),
        ("Whole period mean", mmhg(all_range.mean_systolic_mmhg, all_range.mean_diastolic_mmhg)
                              + f"  ({all_range.readings_used} readings)"),
        ("Trend, systolic", _trend_text(tr_s)),
        ("Trend, diastolic", _trend_text(tr_d)),
        ("Irregular pulse detected", f"{int(irregular.sum())} of {t.size} readings"),
    ]  # fmt: skip
    y = 0.95
    for label, value in rows:
        y -= 0.072
        ax.text(0.0, y, label, fontsize=9.5, transform=ax.transAxes)
        bold = label in ("Home BP mean", "Category (ACC/AHA 2017)")
        colour = "#a4161a" if (label == "Home target" and summary.above_threshold) else "#111"
        ax.text(
            0.36,
            y,
            value,
            fontsize=9.5,
            fontweight="bold" if bold else "normal",
            color=colour,
            transform=ax.transAxes,
        )

    ax2 = fig.add_axes((0.09, 0.12, 0.86, 0.36))
    x = (local_ms(t, patient.timezone).astype("datetime64[ms]")).astype(datetime)
    ax2.plot(x, sys_, "o", color="#c62828", markersize=3, alpha=0.6, label="systolic")
    ax2.plot(x, dia, "o", color="#1f5fa8", markersize=3, alpha=0.6, label="diastolic")
    ax2.axhline(bp_signal.HOME_THRESHOLD_SYSTOLIC_MMHG, color="#c62828", linestyle="--", lw=1)
    ax2.axhline(bp_signal.HOME_THRESHOLD_DIASTOLIC_MMHG, color="#1f5fa8", linestyle="--", lw=1)
    if tr_s.n >= 3 and np.isfinite(tr_s.slope_mmhg_per_week):
        weeks = (t - t.min()) / (7 * 86_400 * 1e9)
        ax2.plot(x, tr_s.intercept_mmhg + tr_s.slope_mmhg_per_week * weeks, color="#7f0000",
                 lw=1.5, label="systolic trend")  # fmt: skip
    ax2.set_ylabel("mmHg", fontsize=9)
    ax2.set_ylim(40, max(200.0, float(sys_.max()) + 10))
    ax2.tick_params(labelsize=8)
    date_format = mdates.DateFormatter("%d %b")  # type: ignore[no-untyped-call]
    ax2.xaxis.set_major_formatter(date_format)
    ax2.grid(color="#eee")
    ax2.legend(fontsize=8, loc="upper left", frameon=False, ncol=3)
    ax2.set_title(
        "Readings (dashed: home targets 135/85 mmHg)", loc="left", fontsize=11, fontweight="bold"
    )
    return fig


def render_report(
    store: ReadingStore,
    patient: PatientInfo,
    first_day: date,
    last_day: date,
    *,
    kind: Literal["agp", "bp"],
    fmt: Literal["pdf", "png"],
    dpi: int = 150,
) -> bytes:
    """The report as PDF or PNG bytes."""
    if kind == "agp":
        fig = agp_figure(agp_report_data(store, patient, first_day, last_day))
    elif kind == "bp":
        fig = bp_figure(store, patient, first_day, last_day)
    else:
        raise ValueError(f"unknown report kind {kind!r}")
    buf = io.BytesIO()
    metadata = {"Title": f"vitalgate {kind.upper()} report", "Creator": "vitalgate"}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata if fmt == "pdf" else None)
    return buf.getvalue()
