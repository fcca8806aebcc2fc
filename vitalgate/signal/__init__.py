"""Clinical signal processing with NumPy and SciPy: validation, filtering, clinical metrics.

Modules (import the one you need; nothing is imported here, to keep start-up cheap):

* :mod:`~vitalgate.signal.quality` -- plausibility ranges, BP status bits, control solution,
  duplicates and Hampel outliers as :class:`~vitalgate.readings.QualityFlag` (flag, never delete);
  ``check(reading)`` / ``check_batch(readings)`` for the gateway pipeline.
* :mod:`~vitalgate.signal.bp` -- 2017 ACC/AHA categories, home-BP summary, trend, surge, ARV.
* :mod:`~vitalgate.signal.glucose` -- meter statistics by meal, hypo/hyper levels, units.
* :mod:`~vitalgate.signal.cgm` -- consensus CGM metrics, AGP, episodes, gaps, display smoothing.
* :mod:`~vitalgate.signal.filters`, :mod:`~vitalgate.signal.peaks`, :mod:`~vitalgate.signal.ppg`,
  :mod:`~vitalgate.signal.hrv`, :mod:`~vitalgate.signal.spo2` -- wearables.
* :mod:`~vitalgate.signal.streaming` -- per-stream state objects (``PpgStream``).
* :mod:`~vitalgate.signal.units` -- unit conversions and UTC/local time bases.
"""
