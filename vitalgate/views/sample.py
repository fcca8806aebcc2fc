"""Seeded sample data for the views' tests, the benchmark and demos.

Drawn from :mod:`vitalgate.firmware_sim.physiology` (the same models the simulated devices use):
a type 2 diabetic, hypertensive patient wearing a CGM (5-min readings), measuring BP twice each
morning and evening, checking glucose with a meter before meals (with the GATT meal code in the
``meal_code`` field), a chest strap heart rate once a minute, a spot-check pulse oximeter twice a
day, a scale and a thermometer each morning. Same seed, same data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import numpy as np

from vitalgate.cloud_sync.store import StoredReading
from vitalgate.firmware_sim import physiology as ph
from vitalgate.readings import DeviceIdentity, QualityFlag, ReadingKind, make_reading_id
from vitalgate.signal.units import NS_PER_S, local_offsets_s, resolve_tz

__all__ = ["DEVICES", "sample_readings"]

DEVICES: Final = {
    ReadingKind.BLOOD_PRESSURE: DeviceIdentity(
        address="C4:7F:51:00:00:01", manufacturer="Vitalgate Sim", model="BP-1", serial="BP0001"
    ),
    ReadingKind.CGM: DeviceIdentity(
        address="C4:7F:51:00:00:02", manufacturer="Vitalgate Sim", model="CGM-1", serial="CG0001"
    ),
    ReadingKind.GLUCOSE: DeviceIdentity(
        address="C4:7F:51:00:00:03", manufacturer="Vitalgate Sim", model="GM-1", serial="GM0001"
    ),
    ReadingKind.HEART_RATE: DeviceIdentity(
        address="C4:7F:51:00:00:04", manufacturer="Vitalgate Sim", model="HR-1", serial="HR0001"
    ),
    ReadingKind.PULSE_OXIMETRY: DeviceIdentity(
        address="C4:7F:51:00:00:05", manufacturer="Vitalgate Sim", model="OX-1", serial="OX0001"
    ),
    ReadingKind.WEIGHT: DeviceIdentity(address="C4:7F:51:00:00:06"),
    ReadingKind.BODY_TEMPERATURE: DeviceIdentity(
        address="C4:7F:51:00:00:07", manufacturer="Vitalgate Sim", model="TH-1", serial="TH0001"
    ),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


def _local_to_utc_ns(local_ns: np.ndarray, tz: str) -> np.ndarray:
    """Local wall-clock ns -> UTC ns (two passes settle DST transitions well enough here)."""
    guess = local_ns - local_offsets_s(local_ns, tz) * NS_PER_S
    return np.asarray(local_ns - local_offsets_s(guess, tz) * NS_PER_S, dtype=np.int64)


def sample_readings(
    patient_id: str,
    *,
    last_day: date,
    days: int,
    tz: str,
    seed: int,
    gateway_id: str = "gw-sample",
    heart_rate_interval_s: int = 60,
) -> list[StoredReading]:
    """``days`` days of readings ending with local day ``last_day`` (inclusive)."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    resolve_tz(tz)
    rng = np.random.default_rng(seed)
    first_day = last_day - timedelta(days=days - 1)
    local0_ns = int((datetime.combine(first_day, time(0), UTC) - _EPOCH).total_seconds()) * NS_PER_S
    out: list[StoredReading] = []

    def emit(
        kind: ReadingKind,
        local_ns: np.ndarray,
        columns: dict[str, np.ndarray],
        flags: list[frozenset[str]] | None = None,
        *,
        device: DeviceIdentity | None = None,
    ) -> None:
        dev = DEVICES[kind] if device is None else device
        utc_ns = _local_to_utc_ns(np.asarray(local_ns, dtype=np.int64), tz)
        names = list(columns)
        for i, t in enumerate(utc_ns.tolist()):
            values = {n: float(columns[n][i]) for n in names if np.isfinite(columns[n][i])}
            if names[0] not in values:
                continue  # the primary value is missing (a sensor drop-out)
            at = _utc(t)
            out.append(
                StoredReading(
                    kind=kind,
                    reading_id=make_reading_id(kind, dev, device_time=at, discriminator=(seed,)),
                    patient_id=patient_id,
                    gateway_id=gateway_id,
                    device_id=dev.key,
                    measured_at=at,
                    values=values,
                    flags=flags[i] if flags else frozenset(),
                )
            )

    minute_ns = 60 * NS_PER_S
    day_ns = 86_400 * NS_PER_S

    # CGM: the glucose model over the whole window, a 5-minute sensor.
    schedule = ph.daily_diabetes_schedule(
        start_local_hour=0.0,
        days=days,
        rng=rng,
        insulin_units_per_10g_carb=1.2,
        exercise_days_per_week=3.0,
    )
    trace = ph.simulate_glucose(
        duration_min=days * 1440.0 - 1,
        step_min=1.0,
        params=ph.TYPE2_DIABETIC,
        meals=schedule.meals,
        insulin=schedule.insulin,
        exercise=schedule.exercise,
        rng=rng,
    )
    cgm = ph.cgm_from_plasma(
        trace,
        interval_min=5.0,
        lag_time_constant_min=8.0,
        noise_sd_mg_dl=6.0,
        dropouts_per_day=0.4,
        rng=rng,
    )
    cgm_local = local0_ns + (cgm.time_min * minute_ns).astype(np.int64) + 2 * minute_ns
    emit(
        ReadingKind.CGM,
        cgm_local,
        {"glucose_mg_dl": cgm.glucose_mg_dl, "trend_mg_dl_per_min": cgm.trend_mg_dl_per_min},
    )

    # Meter: before each meal (preprandial), at bedtime now and then; a control test weekly.
    meal_min = np.array([m.at_min for m in schedule.meals]) - 15.0
    meal_min = meal_min[(meal_min > 0) & (meal_min < days * 1440.0 - 1)]
    bedtime_min = np.arange(days) * 1440.0 + 22.5 * 60 + rng.normal(0, 15, days)
    bedtime_min = bedtime_min[rng.random(days) < 0.4]
    meter_min = np.concatenate([meal_min, bedtime_min])
    meter_code = np.concatenate([np.full(meal_min.size, 1.0), np.full(bedtime_min.size, 5.0)])
    order = np.argsort(meter_min)
    meter_min, meter_code = meter_min[order], meter_code[order]
    meter_g = ph.glucose_meter_error(trace.at(meter_min), rng=rng)
    control = rng.random(meter_min.size) < 1 / 21
    flags = [frozenset({str(QualityFlag.CONTROL_SOLUTION)}) if c else frozenset() for c in control]
    meter_g = np.where(control, 105.0, meter_g)
    emit(
        ReadingKind.GLUCOSE,
        local0_ns + (meter_min * minute_ns).astype(np.int64),
        {"glucose_mg_dl": meter_g, "meal_code": meter_code},
        flags,
    )

    # BP: two readings a minute apart at ~07:00 and ~21:00 local, most days.
    bp_local: list[int] = []
    for d in range(days):
        for hour in (7.0, 21.0):
            if rng.random() < 0.1:
                continue  # a missed session
            at = local0_ns + d * day_ns + int((hour + rng.normal(0, 0.4)) * 3600 * NS_PER_S)
            bp_local += [at, at + minute_ns]
    bp_arr = np.asarray(bp_local, dtype=np.int64)
    hours = ((bp_arr - local0_ns) % day_ns) / (3600 * NS_PER_S)
    bp = ph.blood_pressure(hours, profile=ph.HYPERTENSIVE, rng=rng)
    bp_flags = [
        frozenset({str(QualityFlag.IRREGULAR_PULSE)}) if irr else frozenset()
        for irr in bp.irregular_pulse
    ]
    # The monitor's clock drifted once and was corrected at the gateway.
    for i in range(min(4, len(bp_flags))):
        bp_flags[-1 - i] = bp_flags[-1 - i] | {str(QualityFlag.CLOCK_CORRECTED)}
    emit(
        ReadingKind.BLOOD_PRESSURE,
        bp_arr,
        {
            "systolic_mmhg": bp.systolic_mmhg,
            "diastolic_mmhg": bp.diastolic_mmhg,
            "mean_arterial_pressure_mmhg": bp.mean_arterial_pressure_mmhg,
            "pulse_rate_bpm": bp.pulse_rate_bpm,
        },
        bp_flags,
    )

    # Heart rate once per interval: circadian level plus noise.
    step = heart_rate_interval_s * NS_PER_S
    hr_local = np.arange(local0_ns, local0_ns + days * day_ns, step, dtype=np.int64)
    hr_hour = ((hr_local - local0_ns) % day_ns) / (3600 * NS_PER_S)
    awake = (hr_hour > 7) & (hr_hour < 23)
    hr = 62 + 12 * awake + rng.normal(0, 4, hr_local.size)
    # HRV (RMSSD per window, as the gateway computes it): lower by day, higher asleep.
    hr_day = (hr_local - local0_ns) // day_ns
    rmssd = np.where(awake, 27.0, 44.0) + 5.0 * np.sin(2 * np.pi * hr_day / 9.0) - 0.15 * hr_day
    emit(
        ReadingKind.HEART_RATE,
        hr_local,
        {"heart_rate_bpm": np.round(hr), "rmssd_ms": np.round(rmssd, 1)},
    )

    # SpO2 spot checks morning and evening.
    ox_local = np.sort(
        np.concatenate(
            [
                local0_ns + np.arange(days) * day_ns + int(8.2 * 3600 * NS_PER_S),
                local0_ns + np.arange(days) * day_ns + int(20.5 * 3600 * NS_PER_S),
            ]
        )
    )
    ox_t = (ox_local - local0_ns) / NS_PER_S
    ox = ph.spo2(ox_t, baseline_pct=95.5, pulse_rate_bpm=72, desaturations_per_hour=0.0, rng=rng)
    emit(
        ReadingKind.PULSE_OXIMETRY,
        ox_local,
        {"spo2_pct": ox.spo2_pct, "pulse_rate_bpm": ox.pulse_rate_bpm},
    )

    # Weight and temperature each morning.
    morning = local0_ns + np.arange(days) * day_ns + int(7.5 * 3600 * NS_PER_S)
    weight = 88.0 - 0.01 * np.arange(days) + rng.normal(0, 0.3, days)
    emit(ReadingKind.WEIGHT, morning, {"weight_kg": np.round(weight, 1)})
    temp = ph.body_temperature_c(np.full(days, 7.6), rng=rng)
    emit(ReadingKind.BODY_TEMPERATURE, morning + minute_ns, {"temperature_c": temp})

    # Device health, as the gateway found it at each morning's sync: batteries run down, the
    # BP monitor's clock drifts ahead (the CGM has no clock of its own).
    sync_local = local0_ns + np.arange(days) * day_ns + int(7.25 * 3600 * NS_PER_S)
    for n, (kind, dev) in enumerate(DEVICES.items()):
        battery = np.round(np.maximum(4.0, 96.0 - 7.0 * n - (0.4 + 0.3 * n) * np.arange(days)))
        if kind is ReadingKind.CGM:
            offset = np.full(days, np.nan)
        elif kind is ReadingKind.BLOOD_PRESSURE:
            offset = np.round(np.linspace(1.0, 41.0, days), 1)
        else:
            offset = np.full(days, 0.4)
        emit(
            ReadingKind.DEVICE_STATUS,
            sync_local + n * minute_ns,
            {"battery_pct": battery, "clock_offset_s": offset},
            device=dev,
        )
    return out
