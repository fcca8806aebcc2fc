"""Per-stream state objects: each ``push`` costs O(new samples), whatever the stream's age.

:class:`PpgStream` runs the PPG pipeline of :mod:`vitalgate.signal.ppg` causally on BLE packets:
a Butterworth band-pass with carried ``sosfilt`` state (:class:`~vitalgate.signal.filters.
StreamingFilter`), then the two-moving-average beat detector of Elgendi et al. (PLoS One
2013;8:e76585) over a bounded history. Detection runs every ``detect_interval_s`` of new data over
the last ``history_s`` seconds, so the work per sample is constant; a beat is reported once the
beat-window moving average around it is complete, i.e. about half a beat window (0.33 s) plus up
to ``detect_interval_s`` after it. Differences from the offline :func:`vitalgate.signal.ppg.
analyze`: the filter is causal (beats are delayed by its group delay, which does not change RR
intervals) and the detector's threshold uses the mean energy of the history rather than of the
whole recording.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.signal.filters import StreamingFilter
from vitalgate.signal.peaks import PPG_WINDOWS, moving_average

__all__ = ["Beat", "PpgStream"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected beat. ``sample_index`` counts from the stream's first sample; ``time_s`` is
    ``sample_index / sampling_rate_hz``. ``rr_s`` is the interval from the previous beat (None
    for the first beat or after :meth:`PpgStream.reset`); ``hr_bpm`` = 60 / median of the last
    ``hr_beats`` plausible RR intervals of motion-free beats (None until one exists); ``motion``
    is true when the accelerometer showed movement around the beat."""

    sample_index: int
    time_s: float
    rr_s: float | None
    hr_bpm: float | None
    motion: bool = False


class PpgStream:
    """Causal PPG beat and heart-rate tracker for one sensor stream (not thread-safe).

    ``push(samples)`` takes the next packet of raw PPG samples at ``sampling_rate_hz`` and returns
    the beats confirmed by it (often none). RR intervals outside [0.3, 2.0] s (30-200 bpm) are
    reported but do not enter the HR median. Beats in the first second after the start or a
    :meth:`reset` are not reported: the causal filter is still settling.

    Motion rejection (as in :mod:`vitalgate.signal.ppg`): when packets come with accelerometer
    samples (``push(samples, accel_g=...)``, (n, 3) in g at ``accel_sampling_rate_hz``, covering
    the same time span as the PPG packet), a packet is "in motion" when the SD of the acceleration
    magnitude over the last ``motion_window_s`` exceeds ``motion_threshold_g``; beats in such
    packets are reported with ``motion=True`` and neither they nor the intervals ending at them
    enter the HR median.
    """

    __slots__ = (
        "_accel",
        "_accel_fs",
        "_accel_n",
        "_accel_s1",
        "_accel_s2",
        "_accel_window_n",
        "_beta",
        "_buf",
        "_buf_start",
        "_detect_n",
        "_filter",
        "_fs",
        "_half_beat",
        "_history_n",
        "_hr_rr",
        "_last_block_end",
        "_last_peak",
        "_min_gap",
        "_motion_marks",
        "_motion_threshold_g",
        "_pending",
        "_pending_n",
        "_total",
        "_w_beat",
        "_w_peak",
        "_warmup_until",
    )

    def __init__(
        self,
        *,
        sampling_rate_hz: float,
        low_hz: float = 0.5,
        high_hz: float = 8.0,
        order: int = 3,
        detect_interval_s: float = 0.5,
        history_s: float = 4.0,
        hr_beats: int = 8,
        accel_sampling_rate_hz: float | None = None,
        motion_threshold_g: float = 0.05,
        motion_window_s: float = 2.0,
    ) -> None:
        if sampling_rate_hz <= 0:
            raise ValueError(f"sampling_rate_hz must be > 0, got {sampling_rate_hz}")
        if history_s < 2 * PPG_WINDOWS.beat_window_s + 2.0:
            raise ValueError("history_s must hold two beat windows plus the longest beat (2 s)")
        self._fs = float(sampling_rate_hz)
        self._filter = StreamingFilter.bandpass(
            sampling_rate_hz=sampling_rate_hz, low_hz=low_hz, high_hz=high_hz, order=order
        )
        self._w_peak = round(PPG_WINDOWS.peak_window_s * self._fs)
        self._w_beat = round(PPG_WINDOWS.beat_window_s * self._fs)
        self._half_beat = self._w_beat - self._w_beat // 2
        self._beta = PPG_WINDOWS.beta
        self._min_gap = round(PPG_WINDOWS.min_interval_s * self._fs)
        self._detect_n = max(1, round(detect_interval_s * self._fs))
        self._history_n = round(history_s * self._fs)
        self._hr_rr: deque[float] = deque(maxlen=hr_beats)
        self._accel_fs = accel_sampling_rate_hz
        self._motion_threshold_g = motion_threshold_g
        n_accel = round(motion_window_s * accel_sampling_rate_hz) if accel_sampling_rate_hz else 0
        # Per-packet (count, sum, sum of squares) of |a| - 1 g over the last motion window.
        self._accel: deque[tuple[int, float, float]] = deque()
        self._accel_window_n = max(n_accel, 2)
        self._accel_n = 0
        self._accel_s1 = 0.0
        self._accel_s2 = 0.0
        # (first sample index, in motion) per pushed packet with motion, bounded by the history.
        self._motion_marks: deque[tuple[int, bool]] = deque(maxlen=4096)
        self._buf: FloatArray = np.empty(0)
        self._buf_start = 0
        self._pending: list[FloatArray] = []
        self._pending_n = 0
        self._total = 0
        self._last_peak: int | None = None
        self._last_block_end = -1
        self._warmup_until = round(self._fs)

    @property
    def sampling_rate_hz(self) -> float:
        return self._fs

    @property
    def samples_seen(self) -> int:
        return self._total

    def reset(self) -> None:
        """Start afresh after a gap in the stream (sample indices keep counting)."""
        self._filter.reset()
        self._hr_rr.clear()
        self._accel.clear()
        self._accel_n = 0
        self._accel_s1 = 0.0
        self._accel_s2 = 0.0
        self._motion_marks.clear()
        self._buf = np.empty(0)
        self._buf_start = self._total
        self._pending.clear()
        self._pending_n = 0
        self._last_peak = None
        self._last_block_end = self._total - 1
        self._warmup_until = self._total + round(self._fs)

    def push(self, samples: ArrayLike, accel_g: ArrayLike | None = None) -> list[Beat]:
        """Filter the next packet and return the beats it confirms.

        Raises ``ValueError`` for a non-finite sample (it would poison the filter state); call
        :meth:`reset` after a gap or a dropped packet.
        """
        x = np.asarray(samples, dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError("PPG samples must be finite")
        if accel_g is not None:
            self._note_motion(accel_g)
        y = self._filter.process(x)
        if y.size == 0:
            return []
        self._pending.append(y)
        self._pending_n += y.size
        self._total += y.size
        if self._pending_n < self._detect_n:
            return []
        return self._detect()

    def flush(self) -> list[Beat]:
        """Run detection on whatever is pending (e.g. at the end of a recording)."""
        return self._detect() if self._pending_n else []

    def _detect(self) -> list[Beat]:
        buf = np.concatenate([self._buf, *self._pending])
        self._pending.clear()
        self._pending_n = 0
        start = self._buf_start
        sq = np.maximum(buf, 0.0)
        sq *= sq
        ma_peak = moving_average(sq, self._w_peak)
        ma_beat = moving_average(sq, self._w_beat)
        waves = ma_peak > ma_beat + self._beta * float(sq.mean())
        safe_end = buf.size - self._half_beat  # averages right of this are still truncated
        beats: list[Beat] = []
        if safe_end > 0:
            w = waves[:safe_end]
            edges = np.flatnonzero(w[1:] != w[:-1]) + 1
            if w[0]:
                edges = np.concatenate(([0], edges))
            # Pairs (rise, fall) of complete blocks; an unfinished last block waits.
            n_pairs = edges.size // 2
            for k in range(n_pairs):
                b, e = int(edges[2 * k]), int(edges[2 * k + 1])
                if start + b <= self._last_block_end:
                    continue  # seen in an earlier run (or cut by the history's left edge)
                self._last_block_end = start + e - 1
                if e - b < self._w_peak or start + b < self._warmup_until:
                    continue
                peak = start + b + int(np.argmax(buf[b:e]))
                if self._last_peak is not None and peak - self._last_peak <= self._min_gap:
                    continue
                beats.append(self._beat(peak))
        keep = min(buf.size, self._history_n)
        self._buf = buf[buf.size - keep :]
        self._buf_start = start + buf.size - keep
        return beats

    def _note_motion(self, accel_g: ArrayLike) -> None:
        if self._accel_fs is None:
            raise ValueError("accel_g needs PpgStream(accel_sampling_rate_hz=...)")
        a = np.asarray(accel_g, dtype=np.float64)
        mag = np.sqrt(np.einsum("ij,ij->i", a, a)) if a.ndim == 2 else np.abs(a)
        dev = mag - 1.0  # centred on 1 g: the sums stay small and the variance exact enough
        packet = (int(dev.size), float(dev.sum()), float(np.dot(dev, dev)))
        self._accel.append(packet)
        n_total = self._accel_n = self._accel_n + packet[0]
        self._accel_s1 += packet[1]
        self._accel_s2 += packet[2]
        while len(self._accel) > 1 and n_total - self._accel[0][0] >= self._accel_window_n:
            old = self._accel.popleft()
            n_total = self._accel_n = self._accel_n - old[0]
            self._accel_s1 -= old[1]
            self._accel_s2 -= old[2]
        moving = False
        if n_total > 1:
            var = (self._accel_s2 - self._accel_s1 * self._accel_s1 / n_total) / (n_total - 1)
            moving = var > self._motion_threshold_g * self._motion_threshold_g
        if not self._motion_marks or self._motion_marks[-1][1] != moving:
            self._motion_marks.append((self._total, moving))

    def _in_motion(self, sample_index: int) -> bool:
        for start, moving in reversed(self._motion_marks):
            if start <= sample_index:
                return moving
        return False

    def _beat(self, peak: int) -> Beat:
        rr = None if self._last_peak is None else (peak - self._last_peak) / self._fs
        previous = self._last_peak
        self._last_peak = peak
        motion = bool(self._motion_marks) and (
            self._in_motion(peak) or (previous is not None and self._in_motion(previous))
        )
        if rr is not None and 0.3 <= rr <= 2.0 and not motion:
            self._hr_rr.append(rr)
        hr = 60.0 / float(np.median(self._hr_rr)) if self._hr_rr else None
        return Beat(sample_index=peak, time_s=peak / self._fs, rr_s=rr, hr_bpm=hr, motion=motion)
