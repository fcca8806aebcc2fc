"""CGM benchmark: 90 days of 5-min readings -> every metric + the AGP, next to plain NumPy.

Run ``python -m bench.signal_cgm`` (``--no-readme`` to skip updating bench/README.md). The
baseline, measured in the same run, is the least a plain-NumPy script does for the consensus
metrics and an AGP: mean, SD, CV, GMI, the five range percentages and ``np.percentile`` over a
(days x 288) grid, assuming a perfectly regular UTC trace (no gaps, no time zone, no MAGE, no
risk indices, no validation). vitalgate additionally sorts, validates, detects gaps, computes
MAGE/LBGI/HBGI/GRI and bins by local time in the patient's zone (DST included).
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.signal_common import best_of, footer, write_section
from tests.unit.signal.cgm_data import synthetic_cgm
from vitalgate.signal import cgm

TARGET_MS = 20.0


def plain_numpy(g: np.ndarray) -> tuple[float, ...]:
    n = g.size
    mean = g.mean()
    sd = g.std(ddof=1)
    tir = np.count_nonzero((g >= 70) & (g <= 180)) * 100 / n
    tbr = np.count_nonzero(g < 70) * 100 / n
    tbr2 = np.count_nonzero(g < 54) * 100 / n
    tar = np.count_nonzero(g > 180) * 100 / n
    tar2 = np.count_nonzero(g > 250) * 100 / n
    last14 = g[-14 * 288 :].reshape(14, 288)
    pct = np.percentile(last14, [5, 25, 50, 75, 95], axis=0)
    return (mean, sd, 100 * sd / mean, 3.31 + 0.02392 * mean, tir, tbr, tbr2, tar, tar2, pct[2, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    regular_g, regular_t = synthetic_cgm(90, seed=1, gaps=False)
    g, t = synthetic_cgm(90, seed=1, gaps=True)

    def full(gg: np.ndarray, tt: np.ndarray) -> None:
        cgm.metrics(gg, tt, sampling_interval_s=300)
        cgm.agp(gg, tt, tz="Europe/Berlin", days=14)
        cgm.episodes(gg, tt, level=1, sampling_interval_s=300)
        cgm.episodes(gg, tt, level=2, sampling_interval_s=300)

    rows = [
        (
            "plain NumPy baseline (metrics + 14-day AGP, regular trace)",
            regular_g.size,
            best_of(lambda: plain_numpy(regular_g), repeat=args.repeat),
        ),
        (
            "vitalgate `cgm.metrics`",
            g.size,
            best_of(lambda: cgm.metrics(g, t, sampling_interval_s=300), repeat=args.repeat),
        ),
        (
            "vitalgate `cgm.agp` (14 days, Europe/Berlin)",
            g.size,
            best_of(lambda: cgm.agp(g, t, tz="Europe/Berlin", days=14), repeat=args.repeat),
        ),
        (
            "vitalgate `cgm.agp` (all 90 days)",
            g.size,
            best_of(lambda: cgm.agp(g, t, tz="Europe/Berlin", days=90), repeat=args.repeat),
        ),
        (
            "vitalgate `cgm.episodes` (level 1 + level 2)",
            g.size,
            best_of(
                lambda: (
                    cgm.episodes(g, t, level=1, sampling_interval_s=300),
                    cgm.episodes(g, t, level=2, sampling_interval_s=300),
                ),
                repeat=args.repeat,
            ),
        ),
        (
            "vitalgate all of the above but the 90-day AGP (gappy trace)",
            g.size,
            best_of(lambda: full(g, t), repeat=args.repeat),
        ),
        (
            "vitalgate all of the above but the 90-day AGP (regular trace)",
            regular_g.size,
            best_of(lambda: full(regular_g, regular_t), repeat=args.repeat),
        ),
    ]
    base = rows[0][2]
    total = rows[-2][2]
    lines = [
        "`python -m bench.signal_cgm`: 90 days of seeded 5-min CGM (tests/unit/signal/cgm_data.py,",
        "with signal losses and dropouts unless noted); best of "
        f"{args.repeat} runs. Target: every metric + AGP <= {TARGET_MS:.0f} ms.",
        "The baseline assumes a perfectly regular UTC trace and skips validation, gaps, MAGE,",
        "LBGI/HBGI/GRI, episodes and time zones.",
        "",
        "| computation | readings | ms | vs baseline |",
        "|---|---:|---:|---:|",
    ]
    for label, n, sec in rows:
        lines.append(f"| {label} | {n:,} | {sec * 1e3:.2f} | {sec / base:.1f}x |")
    verdict = "meets" if total * 1e3 <= TARGET_MS else "MISSES"
    lines += [
        "",
        f"Every metric + AGP + episodes: {total * 1e3:.2f} ms ({verdict} the "
        f"{TARGET_MS:.0f} ms target).",
        "",
        footer(),
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_readme:
        write_section("signal: CGM metrics and AGP", body)


if __name__ == "__main__":
    main()
