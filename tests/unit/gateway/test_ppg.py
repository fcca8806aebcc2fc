"""PPG-derived heart rate: windows, quality flags, packet loss -> reset, bounded buffers."""

from __future__ import annotations

import numpy as np
import pytest

from vitalgate.drivers import ppg_stream as codec
from vitalgate.firmware_sim import physiology as phys
from vitalgate.gateway.ppg import PpgHeartRate, PpgWindow
from vitalgate.readings import QualityFlag

FS = 128
HR_BPM = 72.0


def _packets(
    *, seconds: float, motion_fraction: float, seed: int = 3
) -> tuple[list[codec.PpgPacket], list[codec.AccelPacket]]:
    rng = np.random.default_rng(seed)
    rr = phys.rr_intervals(duration_s=seconds + 2.0, mean_heart_rate_bpm=HR_BPM, rng=rng)
    signal = phys.simulate_ppg(rr, sampling_rate_hz=FS, rng=rng, motion_fraction=motion_fraction)
    n = int(seconds * FS)
    counts = [int(200_000 + 40_000 * v) for v in signal.ppg[:n].tolist()]
    accel = [
        codec.AccelSample(x_mg=round(x * 1000), y_mg=round(y * 1000), z_mg=round(z * 1000))
        for x, y, z in signal.accelerometer.acceleration_g[:n].tolist()
    ]
    return (
        codec.ppg_packets(counts, first_sample_index=0, first_sequence=0),
        codec.accel_packets(accel, first_sample_index=0, first_sequence=0),
    )


def _feed(
    deriver: PpgHeartRate,
    ppg: list[codec.PpgPacket],
    accel: list[codec.AccelPacket],
    *,
    skip_ppg: int | None = None,
) -> list[PpgWindow]:
    """Interleave the streams as the wearable does: a second of PPG, then its accelerometer."""
    windows: list[PpgWindow] = []
    ai = 0
    for i, packet in enumerate(ppg):
        if i != skip_ppg:
            windows.extend(deriver.ppg(packet))
        end = packet.first_sample_index + len(packet.ppg_counts)
        while ai < len(accel) and accel[ai].first_sample_index < end:
            windows.extend(deriver.accel(accel[ai]))
            ai += 1
    return windows


def test_clean_ppg_gives_one_accepted_reading_per_window() -> None:
    ppg, accel = _packets(seconds=125.0, motion_fraction=0.0)
    deriver = PpgHeartRate(sampling_rate_hz=FS, with_accel=True, window_s=30.0)
    windows = _feed(deriver, ppg, accel)
    assert len(windows) == 4
    assert [w.start_sample_index for w in windows] == [0, 30 * FS, 60 * FS, 90 * FS]
    for w in windows:
        assert w.flags == frozenset(), w
        assert abs(w.heart_rate_bpm - HR_BPM) < 4.0
        assert w.coverage > 0.8
        assert all(0.3 <= rr <= 2.0 for rr in w.rr_intervals_s)
    assert deriver.resets == 0


def test_motion_is_flagged() -> None:
    ppg, accel = _packets(seconds=125.0, motion_fraction=0.6, seed=5)
    deriver = PpgHeartRate(sampling_rate_hz=FS, with_accel=True, window_s=30.0)
    windows = _feed(deriver, ppg, accel)
    assert any(QualityFlag.MOTION_ARTIFACT in w.flags for w in windows), windows


def test_a_lost_packet_resets_the_detector_and_drops_the_window() -> None:
    ppg, accel = _packets(seconds=125.0, motion_fraction=0.0)
    deriver = PpgHeartRate(sampling_rate_hz=FS, with_accel=True, window_s=30.0)
    lost = len(ppg) // 2  # in the third window
    windows = _feed(deriver, ppg, accel, skip_ppg=lost)
    assert deriver.resets == 1
    assert deriver.windows_discarded == 1
    # windows restart at the first packet after the gap; none spans it
    gap_at = ppg[lost].first_sample_index
    restart = ppg[lost + 1].first_sample_index
    for w in windows:
        end = w.start_sample_index + 30 * FS
        assert end <= gap_at or w.start_sample_index >= restart
        assert abs(w.heart_rate_bpm - HR_BPM) < 4.0
    assert len(windows) >= 2


def test_ppg_without_accelerometer_data_is_not_held_forever() -> None:
    ppg, _ = _packets(seconds=65.0, motion_fraction=0.0)
    deriver = PpgHeartRate(sampling_rate_hz=FS, with_accel=True, window_s=30.0)
    windows = [w for p in ppg for w in deriver.ppg(p)]
    assert len(windows) >= 1  # processed after the bounded wait, without motion marks


def test_window_length_is_bounded() -> None:
    with pytest.raises(ValueError, match="window_s"):
        PpgHeartRate(sampling_rate_hz=FS, with_accel=False, window_s=5.0)
