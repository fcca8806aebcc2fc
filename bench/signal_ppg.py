"""PPG benchmark: 1 hour of 128 Hz PPG -> HR and HRV, next to neurokit2's ``ppg_process``.

Run ``python -m bench.signal_ppg`` (``--no-readme`` to skip updating bench/README.md). The signal
is the seeded synthesiser of tests/unit/signal/ppg_data.py (known beat times) with three
motion episodes. vitalgate: ``ppg.analyze`` (band-pass, Elgendi peaks, per-window SQI and
accelerometer motion rejection, HR) + ``hrv.correct_rr`` + ``hrv.time_domain`` +
``hrv.frequency_domain``. neurokit2: ``ppg_process`` (clean + Elgendi peaks + rate + quality) +
``hrv_time`` on its peaks. Accuracy against the synthesiser's truth: peak sensitivity and PPV
(match within 50 ms), mean-HR error, RMSSD error (vitalgate on its accepted intervals;
neurokit2 on all of them, as it has no motion rejection).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bench.signal_common import best_of, footer, write_section
from tests.unit.signal.ppg_data import synthetic_ppg
from vitalgate.signal import hrv, ppg

FS = 128.0
TARGET_SPEEDUP = 50.0


def _match(found_s: np.ndarray, truth_s: np.ndarray, tol_s: float = 0.05) -> tuple[float, float]:
    idx = np.clip(np.searchsorted(truth_s, found_s), 1, truth_s.size - 1)
    nearest = np.minimum(np.abs(found_s - truth_s[idx - 1]), np.abs(found_s - truth_s[idx]))
    tp = int(np.count_nonzero(nearest <= tol_s))
    return tp / truth_s.size, tp / max(found_s.size, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nk-repeat", type=int, default=2)
    args = parser.parse_args()

    s = synthetic_ppg(
        3600,
        sampling_rate_hz=FS,
        seed=11,
        motion_episodes=((600.0, 660.0), (1800.0, 1900.0), (3000.0, 3030.0)),
    )
    true_hr = 60.0 / float(np.mean(s.rr_intervals_s))
    true_rmssd = hrv.time_domain(s.rr_intervals_s).rmssd_ms

    def ours() -> tuple[ppg.PpgAnalysis, hrv.HrvTimeDomain, hrv.HrvFrequencyDomain]:
        a = ppg.analyze(s.ppg, sampling_rate_hz=FS, accel_g=s.accel_g, accel_sampling_rate_hz=FS)
        rr = hrv.correct_rr(a.rr_intervals_s[a.rr_accepted]).rr_intervals_s
        return a, hrv.time_domain(rr), hrv.frequency_domain(rr)

    import neurokit2 as nk  # type: ignore[import-untyped]

    def theirs() -> tuple[np.ndarray, float, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # neurokit2/pandas chatter; timing only
            signals, info = nk.ppg_process(s.ppg, sampling_rate=int(FS))
            peaks = np.asarray(info["PPG_Peaks"])
            t = nk.hrv_time(peaks, sampling_rate=int(FS))
        return peaks, float(signals["PPG_Rate"].mean()), float(t["HRV_RMSSD"].iloc[0])

    a, td, fd = ours()
    nk_peaks, nk_hr, nk_rmssd = theirs()
    t_ours = best_of(ours, repeat=args.repeat)
    t0 = time.perf_counter()
    t_nk = best_of(theirs, repeat=args.nk_repeat)
    del t0
    still_t = ~s.motion[np.minimum((s.beat_times_s * FS).astype(np.int64), s.motion.size - 1)]
    truth_still = s.beat_times_s[still_t]
    ours_still = a.peaks[~s.motion[a.peaks]] / FS
    nk_still = nk_peaks[~s.motion[nk_peaks]] / FS
    sens, ppv = _match(ours_still, truth_still)
    nk_sens, nk_ppv = _match(nk_still, truth_still)
    speedup = t_nk / t_ours
    lines = [
        "`python -m bench.signal_ppg`: 1 hour of seeded 128 Hz PPG (460,800 samples; three motion",
        "episodes, 190 s in all) -> beats, HR, HRV. Best of "
        f"{args.repeat} runs (neurokit2: best of {args.nk_repeat}). Target: >= "
        f"{TARGET_SPEEDUP:.0f}x faster than neurokit2 at equal accuracy.",
        "",
        "Peak sensitivity and PPV (within 50 ms) are counted outside the motion episodes.",
        "",
        "| pipeline | seconds | speed-up | peak sensitivity | peak PPV | HR bpm (truth "
        f"{true_hr:.2f}) | RMSSD ms (truth {true_rmssd:.1f}) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| neurokit2 `ppg_process` + `hrv_time` | {t_nk:.3f} | 1.0x | {nk_sens:.4f} "
        f"| {nk_ppv:.4f} | {nk_hr:.2f} | {nk_rmssd:.1f} |",
        f"| vitalgate `ppg.analyze` + `hrv` (time + LF/HF) | {t_ours:.3f} | {speedup:.0f}x "
        f"| {sens:.4f} | {ppv:.4f} | {a.hr_bpm:.2f} | {td.rmssd_ms:.1f} |",
        "",
        f"vitalgate accepted {a.accepted_fraction:.1%} of the 8-s windows (the motion windows are",
        f"rejected by the accelerometer); LF/HF {fd.lf_hf:.2f}. Speed-up {speedup:.0f}x "
        f"({'meets' if speedup >= TARGET_SPEEDUP else 'MISSES'} the {TARGET_SPEEDUP:.0f}x target).",
        "",
        footer(),
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_readme:
        write_section("signal: PPG heart rate and HRV", body)


if __name__ == "__main__":
    main()
