"""Heart rate derived from a wearable's raw PPG + accelerometer stream (vendor PPG Stream service).

:class:`PpgHeartRate` consumes decoded packets of :mod:`vitalgate.drivers.ppg_stream` and feeds
:class:`vitalgate.signal.streaming.PpgStream` (causal band-pass + beat detector, O(new samples)),
pairing each PPG packet with the accelerometer samples of the same span so that beats in motion
are marked. Every ``window_s`` seconds of samples it closes a :class:`PpgWindow`: the heart rate
from the median of the window's motion-free, plausible RR intervals, the intervals themselves,
and a quality index (the fraction of the window explained by accepted beats). A window whose
quality is below ``min_coverage`` (or with fewer than ``min_intervals`` accepted intervals) is
flagged ``LOW_QUALITY``; one in which more than ``max_motion_fraction`` of the beats were in
motion is flagged ``MOTION_ARTIFACT``. Raw samples never leave this object.

Packet loss is detected from the per-characteristic sequence counter and the sample index: the
detector state is reset and the unfinished window is discarded (counted in ``resets`` /
``windows_discarded``), never bridged over a gap. Buffers are bounded: PPG packets wait at most
``_MAX_WAIT_S`` of samples for their accelerometer data, accelerometer samples are kept for at
most ``_ACCEL_KEEP_S``.
"""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vitalgate.drivers import ppg_stream as codec
from vitalgate.readings import QualityFlag
from vitalgate.signal.streaming import Beat, PpgStream

__all__ = ["PpgHeartRate", "PpgWindow"]

# Plausible RR interval range (30-200 bpm), as PpgStream uses for its own median.
_RR_MIN_S = 0.3
_RR_MAX_S = 2.0
# A PPG packet waits at most this long (in samples' time) for accelerometer data.
_MAX_WAIT_S = 2.0
# Accelerometer samples older than this (behind the newest) are discarded.
_ACCEL_KEEP_S = 4.0
# Beats are confirmed up to ~0.8 s after they happen: a window closes this much later.
_CONFIRM_DELAY_S = 1.5


@dataclass(frozen=True, slots=True)
class PpgWindow:
    """Heart rate over one window of PPG (no raw samples)."""

    heart_rate_bpm: float
    rr_intervals_s: tuple[float, ...]
    beats: int
    motion_beats: int
    coverage: float  # quality index: accepted RR time / window length, 0..1
    flags: frozenset[QualityFlag]
    start_sample_index: int
    duration_s: float


class PpgHeartRate:
    """Derives :class:`PpgWindow` s from PPG (and accelerometer) packets. Not thread-safe."""

    def __init__(
        self,
        *,
        sampling_rate_hz: int,
        with_accel: bool,
        window_s: float = 30.0,
        min_coverage: float = 0.6,
        min_intervals: int = 5,
        max_motion_fraction: float = 0.2,
    ) -> None:
        if not 10.0 <= window_s <= 60.0:
            raise ValueError(f"window_s must be in 10..60, got {window_s}")
        self._fs = float(sampling_rate_hz)
        self._with_accel = with_accel
        self._window_n = round(window_s * self._fs)
        self._window_s = window_s
        self._min_coverage = min_coverage
        self._min_intervals = min_intervals
        self._max_motion_fraction = max_motion_fraction
        self._stream = PpgStream(
            sampling_rate_hz=self._fs, accel_sampling_rate_hz=self._fs if with_accel else None
        )
        self._ppg_seq: int | None = None
        self._ppg_next_index: int | None = None
        self._accel_seq: int | None = None
        self._accel_next_index: int | None = None
        self._waiting: collections.deque[codec.PpgPacket] = collections.deque()
        self._waiting_n = 0
        # accelerometer samples [start, start + len) in g, bounded to _ACCEL_KEEP_S
        self._accel_start: int | None = None
        self._accel_g: NDArray[np.float64] = np.empty((0, 3))
        self._window_start: int | None = None  # sample index of the current window's start
        self._beats: list[Beat] = []
        self._beat_offset = 0  # PpgStream counts samples from 0; packets from their own index
        self._processed_end: int | None = None  # one past the last sample pushed
        self.resets = 0
        self.windows_discarded = 0

    # ------------------------------------------------------------------ input
    def ppg(self, packet: codec.PpgPacket) -> list[PpgWindow]:
        """Take one PPG packet; returns the windows it completed."""
        if self._ppg_seq is not None and (
            codec.packets_lost(self._ppg_seq, packet.sequence) != 0
            or packet.first_sample_index != self._ppg_next_index
        ):
            self._restart()
        self._ppg_seq = packet.sequence
        self._ppg_next_index = (packet.first_sample_index + len(packet.ppg_counts)) & 0xFFFFFFFF
        self._waiting.append(packet)
        self._waiting_n += len(packet.ppg_counts)
        return self._drain()

    def accel(self, packet: codec.AccelPacket) -> list[PpgWindow]:
        """Take one accelerometer packet; returns the windows it let complete."""
        if self._accel_seq is not None and (
            codec.packets_lost(self._accel_seq, packet.sequence) != 0
            or packet.first_sample_index != self._accel_next_index
        ):
            self._restart()
        self._accel_seq = packet.sequence
        self._accel_next_index = (packet.first_sample_index + len(packet.samples)) & 0xFFFFFFFF
        samples = np.array([(s.x_mg, s.y_mg, s.z_mg) for s in packet.samples], dtype=np.float64)
        samples /= 1000.0
        if self._accel_start is None or self._accel_end() != packet.first_sample_index:
            self._accel_start = packet.first_sample_index
            self._accel_g = samples
        else:
            self._accel_g = np.concatenate([self._accel_g, samples])
        keep = round(_ACCEL_KEEP_S * self._fs)
        if len(self._accel_g) > keep:
            drop = len(self._accel_g) - keep
            self._accel_g = self._accel_g[drop:]
            self._accel_start += drop
        return self._drain()

    def gap(self) -> None:
        """Something was lost upstream (an undecodable packet, a full buffer): start afresh."""
        self._restart()
        self._ppg_seq = self._accel_seq = None
        self._ppg_next_index = self._accel_next_index = None

    # ------------------------------------------------------------------ internals
    def _accel_end(self) -> int:
        assert self._accel_start is not None
        return self._accel_start + len(self._accel_g)

    def _accel_for(self, start: int, count: int) -> NDArray[np.float64] | None:
        if self._accel_start is None:
            return None
        lo = start - self._accel_start
        if lo < 0 or lo + count > len(self._accel_g):
            return None
        return self._accel_g[lo : lo + count]

    def _drain(self) -> list[PpgWindow]:
        windows: list[PpgWindow] = []
        max_wait = round(_MAX_WAIT_S * self._fs)
        while self._waiting:
            packet = self._waiting[0]
            count = len(packet.ppg_counts)
            accel = self._accel_for(packet.first_sample_index, count) if self._with_accel else None
            if self._with_accel and accel is None and self._waiting_n <= max_wait:
                break  # its accelerometer data may still come
            self._waiting.popleft()
            self._waiting_n -= count
            windows.extend(self._push(packet, accel))
        return windows

    def _push(self, packet: codec.PpgPacket, accel: NDArray[np.float64] | None) -> list[PpgWindow]:
        start = packet.first_sample_index
        if self._window_start is None:
            self._window_start = start
            self._beat_offset = start - self._stream.samples_seen
        samples = np.asarray(packet.ppg_counts, dtype=np.float64)
        self._beats.extend(self._stream.push(samples, accel_g=accel))
        self._processed_end = start + len(samples)
        windows: list[PpgWindow] = []
        confirm_n = round(_CONFIRM_DELAY_S * self._fs)
        while self._processed_end >= self._window_start + self._window_n + confirm_n:
            window = self._close_window()
            if window is not None:
                windows.append(window)
        return windows

    def _close_window(self) -> PpgWindow | None:
        assert self._window_start is not None
        start, end = self._window_start, self._window_start + self._window_n
        inside = [b for b in self._beats if start <= b.sample_index + self._beat_offset < end]
        self._beats = [b for b in self._beats if b.sample_index + self._beat_offset >= end]
        self._window_start = end
        rr_ok = [
            b.rr_s
            for b in inside
            if b.rr_s is not None and not b.motion and _RR_MIN_S <= b.rr_s <= _RR_MAX_S
        ]
        motion = sum(1 for b in inside if b.motion)
        if len(rr_ok) < 2:
            self.windows_discarded += 1
            return None
        coverage = min(1.0, sum(rr_ok) / self._window_s)
        flags: set[QualityFlag] = set()
        if inside and motion / len(inside) > self._max_motion_fraction:
            flags.add(QualityFlag.MOTION_ARTIFACT)
        if len(rr_ok) < self._min_intervals or coverage < self._min_coverage:
            flags.add(QualityFlag.LOW_QUALITY)
        return PpgWindow(
            heart_rate_bpm=60.0 / statistics.median(rr_ok),
            rr_intervals_s=tuple(round(rr, 4) for rr in rr_ok),
            beats=len(inside),
            motion_beats=motion,
            coverage=coverage,
            flags=frozenset(flags),
            start_sample_index=start,
            duration_s=self._window_s,
        )

    def _restart(self) -> None:
        if self._window_start is not None:
            self.windows_discarded += 1
        self.resets += 1
        self._stream.reset()
        self._waiting.clear()
        self._waiting_n = 0
        self._accel_start = None
        self._accel_g = np.empty((0, 3))
        self._window_start = None
        self._beats = []
        self._processed_end = None
