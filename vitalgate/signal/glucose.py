"""Glucose-meter statistics: by meal context, level 1/2 hypo- and hyperglycaemia, unit conversion.

References:

* International Hypoglycaemia Study Group, Diabetes Care 2017;40:155 and American Diabetes
  Association, "Standards of Care in Diabetes -- 6. Glycemic Goals and Hypoglycemia" (level 1
  hypoglycaemia < 70 and >= 54 mg/dL, level 2 < 54 mg/dL; preprandial target 80-130 mg/dL, peak
  postprandial < 180 mg/dL).
* Battelino T et al., Diabetes Care 2019;42:1593 (level 1 hyperglycaemia > 180, level 2 > 250).
* mmol/L = mg/dL / 18.016 (see :mod:`vitalgate.signal.units`).

Control-solution and implausible readings must be excluded by the caller (``Reading.is_clinical``)
or through the ``clinical`` mask.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.readings import Meal
from vitalgate.signal.units import as_utc_ns, mg_dl_to_mmol_l, mmol_l_to_mg_dl

__all__ = [
    "MEAL_TARGETS_MG_DL",
    "GlucoseEvent",
    "GlucoseLevel",
    "GlucoseStats",
    "classify",
    "classify_many",
    "events",
    "mg_dl_to_mmol_l",
    "mmol_l_to_mg_dl",
    "stats_by_meal",
]


class GlucoseLevel(enum.IntEnum):
    """Glucose level of one reading (ADA / IHSG 2017; Battelino 2019), ordered low to high."""

    HYPO_LEVEL_2 = -2  # < 54 mg/dL
    HYPO_LEVEL_1 = -1  # 54-69 mg/dL
    IN_RANGE = 0  # 70-180 mg/dL
    HYPER_LEVEL_1 = 1  # 181-250 mg/dL (> 180)
    HYPER_LEVEL_2 = 2  # > 250 mg/dL


def classify(glucose_mg_dl: float) -> GlucoseLevel:
    """The level of one reading; ``ValueError`` for a non-finite or non-positive value."""
    g = float(glucose_mg_dl)
    if not math.isfinite(g) or g <= 0:
        raise ValueError(f"glucose_mg_dl must be finite and > 0, got {g}")
    if g < 54:
        return GlucoseLevel.HYPO_LEVEL_2
    if g < 70:
        return GlucoseLevel.HYPO_LEVEL_1
    if g <= 180:
        return GlucoseLevel.IN_RANGE
    if g <= 250:
        return GlucoseLevel.HYPER_LEVEL_1
    return GlucoseLevel.HYPER_LEVEL_2


def classify_many(glucose_mg_dl: ArrayLike) -> NDArray[np.int8]:
    """Vectorised :func:`classify`: int8 codes of :class:`GlucoseLevel`; -128 for bad values."""
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        code = np.zeros(g.shape, dtype=np.int8)
        code[g < 70] = GlucoseLevel.HYPO_LEVEL_1
        code[g < 54] = GlucoseLevel.HYPO_LEVEL_2
        code[g > 180] = GlucoseLevel.HYPER_LEVEL_1
        code[g > 250] = GlucoseLevel.HYPER_LEVEL_2
        code[~np.isfinite(g) | (g <= 0)] = -128
    return code


@dataclass(frozen=True, slots=True)
class GlucoseEvent:
    """A reading outside 70-180 mg/dL."""

    time_utc_ns: int
    glucose_mg_dl: float
    level: GlucoseLevel


def events(
    glucose_mg_dl: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    clinical: ArrayLike | None = None,
) -> tuple[GlucoseEvent, ...]:
    """Every clinical reading at hypo level 1/2 or hyper level 1/2, in time order.

    ``clinical`` (bool per reading) excludes control-solution and implausible readings.
    """
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    t = as_utc_ns(timestamps)
    if g.shape != t.shape:
        raise ValueError("glucose_mg_dl and timestamps must have the same length")
    keep = np.ones(g.shape, bool) if clinical is None else np.asarray(clinical, dtype=bool)
    codes = classify_many(g)
    sel = np.flatnonzero(keep & (codes != 0) & (codes != -128))
    sel = sel[np.argsort(t[sel], kind="stable")]
    return tuple(GlucoseEvent(int(t[i]), float(g[i]), GlucoseLevel(int(codes[i]))) for i in sel)


#: Target range (low, high) in mg/dL per meal context: ADA preprandial 80-130 (fasting too),
#: postprandial < 180; other contexts the consensus 70-180.
MEAL_TARGETS_MG_DL: Mapping[Meal | None, tuple[float, float]] = MappingProxyType(
    {
        Meal.FASTING: (80.0, 130.0),
        Meal.PREPRANDIAL: (80.0, 130.0),
        Meal.POSTPRANDIAL: (70.0, 180.0),
        Meal.BEDTIME: (70.0, 180.0),
        Meal.CASUAL: (70.0, 180.0),
        None: (70.0, 180.0),
    }
)


@dataclass(frozen=True, slots=True)
class GlucoseStats:
    """Statistics of one meal context; mg/dL; SD is the sample SD (ddof = 1, NaN for n < 2)."""

    meal: Meal | None
    n: int
    mean_mg_dl: float
    sd_mg_dl: float
    median_mg_dl: float
    min_mg_dl: float
    max_mg_dl: float
    target_low_mg_dl: float
    target_high_mg_dl: float
    in_target_pct: float
    hypo_level1_count: int
    hypo_level2_count: int
    hyper_level1_count: int
    hyper_level2_count: int


def stats_by_meal(
    glucose_mg_dl: ArrayLike,
    meal: Sequence[Meal | str | None],
    *,
    clinical: ArrayLike | None = None,
) -> dict[Meal | None, GlucoseStats]:
    """Statistics per meal context (``None`` = no context) over the clinical readings.

    Only contexts with at least one reading appear. Levels count readings (hypo level 1 means
    54-69 mg/dL, so the two hypo counts do not overlap).
    """
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    if len(meal) != g.size:
        raise ValueError("glucose_mg_dl and meal must have the same length")
    meals = [None if m is None else Meal(m) for m in meal]
    keep = np.ones(g.shape, bool) if clinical is None else np.asarray(clinical, dtype=bool)
    keep &= np.isfinite(g) & (g > 0)
    codes = classify_many(g)
    out: dict[Meal | None, GlucoseStats] = {}
    for context in dict.fromkeys(meals):
        sel = keep & np.fromiter((m == context for m in meals), bool, g.size)
        v = g[sel]
        if v.size == 0:
            continue
        c = codes[sel]
        lo, hi = MEAL_TARGETS_MG_DL[context]
        out[context] = GlucoseStats(
            meal=context,
            n=int(v.size),
            mean_mg_dl=float(v.mean()),
            sd_mg_dl=float(v.std(ddof=1)) if v.size > 1 else math.nan,
            median_mg_dl=float(np.median(v)),
            min_mg_dl=float(v.min()),
            max_mg_dl=float(v.max()),
            target_low_mg_dl=lo,
            target_high_mg_dl=hi,
            in_target_pct=100.0 * float(np.count_nonzero((v >= lo) & (v <= hi))) / v.size,
            hypo_level1_count=int(np.count_nonzero(c == GlucoseLevel.HYPO_LEVEL_1)),
            hypo_level2_count=int(np.count_nonzero(c == GlucoseLevel.HYPO_LEVEL_2)),
            hyper_level1_count=int(np.count_nonzero(c == GlucoseLevel.HYPER_LEVEL_1)),
            hyper_level2_count=int(np.count_nonzero(c == GlucoseLevel.HYPER_LEVEL_2)),
        )
    return out
