"""Butterworth filters as second-order sections: zero-phase offline, causal with carried state.

Second-order sections avoid the numerical trouble of high-order transfer-function coefficients
(``scipy.signal.butter(..., output="sos", fs=...)``; Smith, "Introduction to Digital Filters",
2007, ch. "Series second-order sections"). Offline filtering runs forward and backward
(``sosfiltfilt``), so it has zero phase and the squared magnitude response; streams use the causal
``sosfilt`` with its state carried from packet to packet, so filtering a stream packet by packet
equals filtering it in one go.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal as sps

__all__ = ["StreamingFilter", "bandpass", "design", "highpass", "lowpass"]

FloatArray = NDArray[np.float64]
Kind = Literal["bandpass", "lowpass", "highpass"]


@functools.lru_cache(maxsize=64)
def _design(
    kind: Kind, order: int, sampling_rate_hz: float, low_hz: float | None, high_hz: float | None
) -> FloatArray:
    nyquist = sampling_rate_hz / 2
    if sampling_rate_hz <= 0:
        raise ValueError(f"sampling_rate_hz must be > 0, got {sampling_rate_hz}")
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    for name, f in (("low_hz", low_hz), ("high_hz", high_hz)):
        if f is not None and not 0 < f < nyquist:
            raise ValueError(f"{name} must lie in (0, {nyquist}) Hz, got {f}")
    if kind == "bandpass":
        assert low_hz is not None and high_hz is not None
        if low_hz >= high_hz:
            raise ValueError(f"low_hz must be < high_hz, got {low_hz} >= {high_hz}")
        wn: float | tuple[float, float] = (low_hz, high_hz)
    elif kind == "lowpass":
        assert high_hz is not None
        wn = high_hz
    else:
        assert low_hz is not None
        wn = low_hz
    sos = np.asarray(sps.butter(order, wn, btype=kind, output="sos", fs=sampling_rate_hz))
    sos.setflags(write=False)
    return sos


def design(
    kind: Kind,
    *,
    sampling_rate_hz: float,
    low_hz: float | None = None,
    high_hz: float | None = None,
    order: int = 4,
) -> FloatArray:
    """Butterworth SOS coefficients (a copy of a cached design).

    ``low_hz`` is the high-pass corner and ``high_hz`` the low-pass corner; a band-pass needs
    both (its order is doubled by ``butter``, as usual)."""
    return _design(
        kind,
        order,
        float(sampling_rate_hz),
        None if low_hz is None else float(low_hz),
        None if high_hz is None else float(high_hz),
    ).copy()  # scipy's Cython filters refuse read-only buffers


def _filtfilt(sos: FloatArray, x: ArrayLike, axis: int) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[axis] if arr.ndim else 0
    if n == 0:
        return arr.copy()
    # sosfiltfilt's default odd padding needs more samples than 3 * (2 * sections + 1).
    padlen = min(3 * (2 * sos.shape[0] + 1), max(n - 1, 0))
    return np.asarray(sps.sosfiltfilt(sos, arr, axis=axis, padlen=padlen))


def bandpass(
    x: ArrayLike,
    *,
    sampling_rate_hz: float,
    low_hz: float,
    high_hz: float,
    order: int = 4,
    axis: int = -1,
) -> FloatArray:
    """Zero-phase Butterworth band-pass (``sosfiltfilt``) between ``low_hz`` and ``high_hz``.

    E.g. 0.5-8 Hz for PPG (Elgendi et al., PLoS One 2013;8:e76585), 0.5-40 Hz for ECG.
    """
    sos = design(
        "bandpass", sampling_rate_hz=sampling_rate_hz, low_hz=low_hz, high_hz=high_hz, order=order
    )
    return _filtfilt(sos, x, axis)


def lowpass(
    x: ArrayLike, *, sampling_rate_hz: float, high_hz: float, order: int = 4, axis: int = -1
) -> FloatArray:
    """Zero-phase Butterworth low-pass with corner ``high_hz``."""
    sos = design("lowpass", sampling_rate_hz=sampling_rate_hz, high_hz=high_hz, order=order)
    return _filtfilt(sos, x, axis)


def highpass(
    x: ArrayLike, *, sampling_rate_hz: float, low_hz: float, order: int = 4, axis: int = -1
) -> FloatArray:
    """Zero-phase Butterworth high-pass with corner ``low_hz``."""
    sos = design("highpass", sampling_rate_hz=sampling_rate_hz, low_hz=low_hz, order=order)
    return _filtfilt(sos, x, axis)


class StreamingFilter:
    """A causal SOS filter for a 1-D stream whose state carries over between packets.

    The state starts at the step-response steady state for the first sample
    (``sosfilt_zi * x[0]``), so a stream that starts at a DC offset does not ring. Processing a
    signal packet by packet gives exactly the result of ``sosfilt`` over the whole signal with the
    same initial state.
    """

    __slots__ = ("_sos", "_zi", "_zi_unit")

    def __init__(self, sos: ArrayLike) -> None:
        self._sos = np.ascontiguousarray(sos, dtype=np.float64)
        if self._sos.ndim != 2 or self._sos.shape[1] != 6:
            raise ValueError(f"sos must have shape (n_sections, 6), got {self._sos.shape}")
        self._zi_unit = np.asarray(sps.sosfilt_zi(self._sos))
        self._zi: FloatArray | None = None

    @classmethod
    def bandpass(
        cls, *, sampling_rate_hz: float, low_hz: float, high_hz: float, order: int = 4
    ) -> StreamingFilter:
        """A streaming Butterworth band-pass."""
        return cls(
            design(
                "bandpass",
                sampling_rate_hz=sampling_rate_hz,
                low_hz=low_hz,
                high_hz=high_hz,
                order=order,
            )
        )

    def process(self, samples: ArrayLike) -> FloatArray:
        """Filter the next packet; returns as many output samples as were given."""
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError("samples must be one-dimensional")
        if x.size == 0:
            return x.copy()
        if self._zi is None:
            self._zi = self._zi_unit * x[0]
        y, self._zi = sps.sosfilt(self._sos, x, zi=self._zi)
        return np.asarray(y)

    def reset(self) -> None:
        """Forget the state (e.g. after a gap in the stream)."""
        self._zi = None
