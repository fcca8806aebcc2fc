"""Seeded physiological models that make simulated readings clinically plausible and testable.

Pure NumPy: no BLE, no clock, no globals. Every generator takes its times with their units, its
sampling rate where it has one, and a ``numpy.random.Generator`` (make one with
``numpy.random.default_rng(seed)``), so the same seed gives the same data.

Models and their sources:

* Blood pressure -- a 24-h profile with a nocturnal dip and a sigmoid morning rise plus surge, as
  described by Kario et al., "Morning surge in blood pressure as a predictor of silent and
  clinical cerebrovascular disease in elderly hypertensives", Circulation 2003;107:1401-1406
  (sleep-trough surge = morning SBP minus the lowest night-time SBP; ~20-35 mmHg typical,
  >55 mmHg "excessive"). Home-monitor measurement noise (SD ~5 mmHg) and occasional irregular
  pulse (atrial ectopy) on top.
* Plasma glucose -- the Bergman minimal model (Bergman, Ider, Bowden, Cobelli, "Quantitative
  estimation of insulin sensitivity", Am J Physiol 1979;236:E667-E677) with the meal-absorption
  and subcutaneous-insulin compartments of Hovorka et al., "Nonlinear model predictive control of
  glucose concentration in subjects with type 1 diabetes", Physiol Meas 2004;25:905-920, and the
  exercise term of Roy & Parker, "Dynamic modeling of exercise effects on plasma glucose and
  insulin levels", J Diabetes Sci Technol 2007;1:338-347 (exercise raises insulin-independent
  uptake), parameterised for type 2 diabetes (reduced insulin sensitivity and secretion).
* Interstitial glucose (CGM) -- the first-order plasma-to-interstitium diffusion of Rebrin et al.,
  "Subcutaneous glucose predicts plasma glucose independent of insulin", Am J Physiol 1999;277:
  E561-E571 (time constant ~5-10 min), sensor noise as an AR(1) process (Breton & Kovatchev,
  "Analysis, modeling, and simulation of the accuracy of continuous glucose sensors", J Diabetes
  Sci Technol 2008;2:853-862) and random signal drop-outs.
* RR intervals -- the bimodal (Mayer-wave LF ~0.1 Hz + respiratory sinus arrhythmia HF) RR process
  of McSharry et al., "A dynamical model for generating synthetic electrocardiogram signals",
  IEEE Trans Biomed Eng 2003;50:289-294, with premature (ectopic) beats and their compensatory
  pauses.
* PPG -- each beat a sum of two Gaussian waves (systolic and reflected/diastolic), as in the
  PPG models reviewed by Tang et al., "PPGSynth: an innovative toolbox for synthesizing regular
  and irregular photoplethysmography waveforms", Front Med 2020;7:597774, with respiratory
  baseline wander and motion artifacts driven by a simulated wrist accelerometer.
* SpO2 -- a stable baseline with Poisson desaturation episodes (>=3-4 % dips of 30-90 s, the
  ODI definition of the AASM scoring manual), 1 % quantisation.
* Core body temperature -- a circadian cosine (nadir in the early morning, ~0.5 degC range;
  Refinetti & Menaker, "The circadian rhythm of body temperature", Physiol Behav 1992;51:613).
* Body weight -- a slow trend, daily water-balance noise (SD ~0.3-0.5 kg).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "HYPERTENSIVE",
    "NORMOTENSIVE",
    "TYPE2_DIABETIC",
    "AccelerometerSignal",
    "BloodPressureProfile",
    "BloodPressureSeries",
    "CgmSeries",
    "ExerciseBout",
    "GlucoseModelParams",
    "GlucoseTrace",
    "InsulinDose",
    "MealIntake",
    "PpgSignal",
    "RrSeries",
    "Spo2Series",
    "blood_pressure",
    "body_temperature_c",
    "body_weight_kg",
    "cgm_from_plasma",
    "daily_diabetes_schedule",
    "glucose_meter_error",
    "rr_intervals",
    "simulate_accelerometer",
    "simulate_glucose",
    "simulate_ppg",
    "spo2",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _as_float_array(name: str, values: Sequence[float] | FloatArray) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


# --------------------------------------------------------------------------------------------
# Blood pressure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BloodPressureProfile:
    """A patient's blood-pressure behaviour over 24 h (daytime = awake levels)."""

    day_systolic_mmhg: float
    day_diastolic_mmhg: float
    #: Night-time fall as a fraction of the day level (0.10-0.20 is a normal "dipper").
    nocturnal_dip_fraction: float
    #: Extra systolic rise peaking ~1-2 h after waking (diastolic rises 60 % of it).
    morning_surge_mmhg: float
    wake_hour: float
    sleep_hour: float
    day_pulse_bpm: float
    #: SD of beat-to-beat / reading-to-reading variation plus device error.
    noise_sd_mmhg: float
    #: Probability that a reading detects an irregular pulse.
    irregular_pulse_probability: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.nocturnal_dip_fraction < 0.5:
            raise ValueError("nocturnal_dip_fraction must be in [0, 0.5)")
        if not 0.0 <= self.irregular_pulse_probability <= 1.0:
            raise ValueError("irregular_pulse_probability must be in [0, 1]")
        if not 0.0 <= self.wake_hour < 24.0 or not 0.0 <= self.sleep_hour < 24.0:
            raise ValueError("wake_hour and sleep_hour must be in [0, 24)")


#: Stage-2 hypertension, treated but uncontrolled, with a pronounced morning surge.
HYPERTENSIVE = BloodPressureProfile(
    day_systolic_mmhg=148.0,
    day_diastolic_mmhg=92.0,
    nocturnal_dip_fraction=0.12,
    morning_surge_mmhg=22.0,
    wake_hour=6.5,
    sleep_hour=22.5,
    day_pulse_bpm=74.0,
    noise_sd_mmhg=5.0,
    irregular_pulse_probability=0.06,
)

#: A normotensive adult.
NORMOTENSIVE = BloodPressureProfile(
    day_systolic_mmhg=118.0,
    day_diastolic_mmhg=76.0,
    nocturnal_dip_fraction=0.12,
    morning_surge_mmhg=10.0,
    wake_hour=7.0,
    sleep_hour=23.0,
    day_pulse_bpm=68.0,
    noise_sd_mmhg=4.0,
    irregular_pulse_probability=0.01,
)


@dataclass(frozen=True, slots=True)
class BloodPressureSeries:
    """Blood-pressure readings at the requested times."""

    systolic_mmhg: FloatArray
    diastolic_mmhg: FloatArray
    mean_arterial_pressure_mmhg: FloatArray
    pulse_rate_bpm: FloatArray
    irregular_pulse: BoolArray


def _awake_fraction(hour: FloatArray, wake_hour: float, sleep_hour: float) -> FloatArray:
    """0 asleep .. 1 awake, with ~30-min sigmoid transitions at waking and falling asleep."""
    since_wake = np.mod(hour - wake_hour, 24.0)
    since_sleep = np.mod(hour - sleep_hour, 24.0)
    rise = 1.0 / (1.0 + np.exp(-(since_wake - 0.5) / 0.2))
    fall = 1.0 / (1.0 + np.exp(-(since_sleep - 0.5) / 0.2))
    awake_span = np.mod(sleep_hour - wake_hour, 24.0)
    return np.where(since_wake < awake_span, rise, 1.0 - fall)


def blood_pressure(
    local_hour_of_day: Sequence[float] | FloatArray,
    *,
    profile: BloodPressureProfile,
    rng: np.random.Generator,
) -> BloodPressureSeries:
    """Blood pressure readings at the given device-local hours of day (0-24, fractional).

    The level follows sleep/wake (nocturnal dip) plus a morning surge: a Gamma-shaped bump that
    peaks ~1.5 h after waking, then readings add measurement noise. MAP is computed the way
    oscillometric monitors report it (DBP + (SBP - DBP) / 3).
    """
    hour = _as_float_array("local_hour_of_day", local_hour_of_day)
    if np.any((hour < 0.0) | (hour >= 24.0)):
        raise ValueError("local_hour_of_day must be in [0, 24)")
    awake = _awake_fraction(hour, profile.wake_hour, profile.sleep_hour)
    dip = 1.0 - profile.nocturnal_dip_fraction * (1.0 - awake)
    since_wake_h = np.mod(hour - profile.wake_hour, 24.0)
    # Gamma(k=3, theta=0.75 h) shape normalised to 1 at its mode (1.5 h after waking).
    shape = (since_wake_h / 1.5) ** 2 * np.exp(2.0 - 2.0 * since_wake_h / 1.5)
    surge = profile.morning_surge_mmhg * np.where(since_wake_h < 8.0, shape, 0.0)
    n = hour.size
    noise = rng.normal(0.0, profile.noise_sd_mmhg, size=(2, n))
    systolic = profile.day_systolic_mmhg * dip + surge + noise[0]
    diastolic = profile.day_diastolic_mmhg * dip + 0.6 * surge + 0.7 * noise[1]
    diastolic = np.minimum(diastolic, systolic - 20.0)
    pulse = profile.day_pulse_bpm * (1.0 - 0.15 * (1.0 - awake)) + rng.normal(0.0, 3.0, size=n)
    irregular = rng.random(n) < profile.irregular_pulse_probability
    # An irregular rhythm makes the monitor's pulse estimate jump.
    pulse = pulse + irregular * rng.normal(0.0, 8.0, size=n)
    systolic = np.round(systolic)
    diastolic = np.round(diastolic)
    mean_arterial = np.round(diastolic + (systolic - diastolic) / 3.0)
    return BloodPressureSeries(
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        mean_arterial_pressure_mmhg=mean_arterial,
        pulse_rate_bpm=np.round(np.clip(pulse, 35.0, 180.0)).astype(np.float64),
        irregular_pulse=irregular,
    )


# --------------------------------------------------------------------------------------------
# Glucose: Bergman minimal model + Hovorka gut and subcutaneous insulin + Roy & Parker exercise
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GlucoseModelParams:
    """Parameters of the extended minimal model (units in the names)."""

    body_mass_kg: float
    basal_glucose_mg_dl: float
    basal_insulin_uu_ml: float
    #: Glucose effectiveness p1 (1/min).
    glucose_effectiveness_per_min: float
    #: Remote-insulin decay p2 (1/min).
    insulin_action_decay_per_min: float
    #: Insulin sensitivity S_I = p3 / p2 (1/min per uU/mL).
    insulin_sensitivity_per_min_per_uu_ml: float
    #: Glucose distribution volume (dL/kg).
    glucose_volume_dl_per_kg: float
    #: Insulin distribution volume (L/kg).
    insulin_volume_l_per_kg: float
    #: Plasma insulin clearance (1/min).
    insulin_clearance_per_min: float
    #: Endogenous (pancreatic) secretion gain above the threshold (uU/mL/min per mg/dL).
    secretion_gain_uu_ml_per_min_per_mg_dl: float
    secretion_threshold_mg_dl: float
    #: Carbohydrate bioavailability (fraction).
    carb_bioavailability: float
    #: Time to maximum gut absorption (min).
    carb_absorption_peak_min: float
    #: Time to maximum subcutaneous insulin absorption (min).
    insulin_absorption_peak_min: float
    #: Extra insulin-independent uptake per unit exercise intensity (fraction of p1 per %VO2max).
    exercise_uptake_gain_per_pct_vo2max: float


#: A type 2 diabetic on metformin with mealtime rapid-acting insulin: reduced insulin sensitivity
#: (~1/4 of a healthy adult) and a blunted secretory response.
TYPE2_DIABETIC = GlucoseModelParams(
    body_mass_kg=88.0,
    basal_glucose_mg_dl=135.0,
    basal_insulin_uu_ml=14.0,
    glucose_effectiveness_per_min=0.012,
    insulin_action_decay_per_min=0.025,
    insulin_sensitivity_per_min_per_uu_ml=1.6e-4,
    glucose_volume_dl_per_kg=1.7,
    insulin_volume_l_per_kg=0.12,
    insulin_clearance_per_min=0.138,
    secretion_gain_uu_ml_per_min_per_mg_dl=0.0035,
    secretion_threshold_mg_dl=140.0,
    carb_bioavailability=0.8,
    carb_absorption_peak_min=55.0,
    insulin_absorption_peak_min=55.0,
    exercise_uptake_gain_per_pct_vo2max=0.04,
)


@dataclass(frozen=True, slots=True)
class MealIntake:
    """A meal: start time (min since the simulation start) and carbohydrate (g)."""

    at_min: float
    carbohydrate_g: float


@dataclass(frozen=True, slots=True)
class InsulinDose:
    """A subcutaneous rapid-acting insulin bolus: time (min) and dose (units)."""

    at_min: float
    insulin_units: float


@dataclass(frozen=True, slots=True)
class ExerciseBout:
    """Aerobic exercise: start (min), duration (min), intensity (% VO2max above rest)."""

    at_min: float
    duration_min: float
    intensity_pct_vo2max: float


@dataclass(frozen=True, slots=True)
class GlucoseTrace:
    """Plasma glucose and insulin, one value per ``step_min`` from t = 0."""

    time_min: FloatArray
    plasma_glucose_mg_dl: FloatArray
    plasma_insulin_uu_ml: FloatArray
    step_min: float

    def at(self, time_min: Sequence[float] | FloatArray) -> FloatArray:
        """Plasma glucose (mg/dL) interpolated at the given times (min)."""
        t = _as_float_array("time_min", time_min)
        return np.interp(t, self.time_min, self.plasma_glucose_mg_dl)


def simulate_glucose(
    *,
    duration_min: float,
    step_min: float,
    params: GlucoseModelParams,
    meals: Sequence[MealIntake],
    insulin: Sequence[InsulinDose],
    exercise: Sequence[ExerciseBout],
    rng: np.random.Generator,
    initial_glucose_mg_dl: float | None = None,
) -> GlucoseTrace:
    """Integrate the extended minimal model (fixed-step RK4) over ``duration_min`` minutes.

    State: G plasma glucose (mg/dL), X remote insulin action (1/min), I plasma insulin (uU/mL),
    gut compartments D1, D2 (mg/kg), subcutaneous insulin S1, S2 (mU/kg)::

        dG/dt  = -(p1 (1 + e(t)) + X) G + p1 Gb + Ra(t) / Vg          (Bergman 1979; Roy 2007)
        dX/dt  = -p2 X + p3 (I - Ib)
        dI/dt  = -n (I - Ib) + gamma max(G - h, 0) + Ui(t) / VI
        dD1/dt = Ag d(t) - D1 / tmaxG,  dD2/dt = (D1 - D2) / tmaxG,  Ra = D2 / tmaxG  (Hovorka)
        dS1/dt = u(t) - S1 / tmaxI,     dS2/dt = (S1 - S2) / tmaxI,  Ui = S2 / tmaxI

    ``rng`` adds a slow stochastic variation of insulin sensitivity (+-10 %, day to day), the main
    source of day-to-day variability in people with diabetes.
    """
    if duration_min <= 0 or step_min <= 0:
        raise ValueError("duration_min and step_min must be positive")
    p = params
    n_steps = math.ceil(duration_min / step_min)
    t = np.arange(n_steps + 1, dtype=np.float64) * step_min
    meal_input = np.zeros(n_steps + 1)  # mg/kg/min into D1
    for meal in meals:
        k = round(meal.at_min / step_min)
        if 0 <= k <= n_steps:
            meal_input[k] += meal.carbohydrate_g * 1000.0 / p.body_mass_kg / step_min
    insulin_input = np.zeros(n_steps + 1)  # mU/kg/min into S1
    for dose in insulin:
        k = round(dose.at_min / step_min)
        if 0 <= k <= n_steps:
            insulin_input[k] += dose.insulin_units * 1000.0 / p.body_mass_kg / step_min
    exercise_level = np.zeros(n_steps + 1)
    for bout in exercise:
        mask = (t >= bout.at_min) & (t < bout.at_min + bout.duration_min)
        exercise_level[mask] = np.maximum(exercise_level[mask], bout.intensity_pct_vo2max)
    # Day-to-day insulin-sensitivity variation: an AR(1) with a ~12 h time constant.
    phi = math.exp(-step_min / 720.0)
    sens = np.empty(n_steps + 1)
    sens[0] = rng.normal(0.0, 0.1)
    innovations = rng.normal(0.0, 0.1 * math.sqrt(1.0 - phi * phi), size=n_steps)
    for k in range(n_steps):
        sens[k + 1] = phi * sens[k] + innovations[k]
    p3_base = p.insulin_sensitivity_per_min_per_uu_ml * p.insulin_action_decay_per_min

    gb, ib = p.basal_glucose_mg_dl, p.basal_insulin_uu_ml
    p1, p2 = p.glucose_effectiveness_per_min, p.insulin_action_decay_per_min
    vg = p.glucose_volume_dl_per_kg
    vi_dl = p.insulin_volume_l_per_kg  # Ui mU/kg/min / (L/kg) = mU/L/min = uU/mL/min
    n_cl, gamma, h = (
        p.insulin_clearance_per_min,
        p.secretion_gain_uu_ml_per_min_per_mg_dl,
        p.secretion_threshold_mg_dl,
    )
    ag, tg, ti = p.carb_bioavailability, p.carb_absorption_peak_min, p.insulin_absorption_peak_min
    ex_gain = p.exercise_uptake_gain_per_pct_vo2max

    def deriv(
        state: tuple[float, ...], meal_in: float, ins_in: float, ex: float, p3: float
    ) -> tuple[float, ...]:
        g, x, i, d1, d2, s1, s2 = state
        ra = d2 / tg
        ui = s2 / ti
        dg = -(p1 * (1.0 + ex_gain * ex) + x) * g + p1 * gb + ra / vg
        dx = -p2 * x + p3 * (i - ib)
        di = -n_cl * (i - ib) + gamma * max(g - h, 0.0) + ui / vi_dl
        dd1 = ag * meal_in - d1 / tg
        dd2 = (d1 - d2) / tg
        ds1 = ins_in - s1 / ti
        ds2 = (s1 - s2) / ti
        return (dg, dx, di, dd1, dd2, ds1, ds2)

    g0 = gb if initial_glucose_mg_dl is None else float(initial_glucose_mg_dl)
    state: tuple[float, ...] = (g0, 0.0, ib, 0.0, 0.0, 0.0, 0.0)
    glucose = np.empty(n_steps + 1)
    insulin_conc = np.empty(n_steps + 1)
    glucose[0], insulin_conc[0] = state[0], state[2]
    dt = step_min
    for k in range(n_steps):
        m_in, u_in, ex = float(meal_input[k]), float(insulin_input[k]), float(exercise_level[k])
        p3 = p3_base * (1.0 + float(sens[k]))
        # Inputs are impulses spread over one step: hold them constant across the RK4 stages.
        k1 = deriv(state, m_in, u_in, ex, p3)
        s2_ = tuple(s + 0.5 * dt * d for s, d in zip(state, k1, strict=True))
        k2 = deriv(s2_, m_in, u_in, ex, p3)
        s3_ = tuple(s + 0.5 * dt * d for s, d in zip(state, k2, strict=True))
        k3 = deriv(s3_, m_in, u_in, ex, p3)
        s4_ = tuple(s + dt * d for s, d in zip(state, k3, strict=True))
        k4 = deriv(s4_, m_in, u_in, ex, p3)
        state = tuple(
            s + dt / 6.0 * (a + 2.0 * b + 2.0 * c + d)
            for s, a, b, c, d in zip(state, k1, k2, k3, k4, strict=True)
        )
        # Keep glucose physical (a hard floor, never reached with sane parameters).
        state = (max(state[0], 20.0), *state[1:])
        glucose[k + 1], insulin_conc[k + 1] = state[0], state[2]
    return GlucoseTrace(
        time_min=t,
        plasma_glucose_mg_dl=glucose,
        plasma_insulin_uu_ml=insulin_conc,
        step_min=float(step_min),
    )


@dataclass(frozen=True, slots=True)
class DiabetesSchedule:
    """A patient's meals, insulin and exercise over a simulation window (times in min)."""

    meals: tuple[MealIntake, ...]
    insulin: tuple[InsulinDose, ...]
    exercise: tuple[ExerciseBout, ...]


def daily_diabetes_schedule(
    *,
    start_local_hour: float,
    days: float,
    rng: np.random.Generator,
    insulin_units_per_10g_carb: float,
    exercise_days_per_week: float,
) -> DiabetesSchedule:
    """Three meals a day (breakfast ~07:30, lunch ~12:30, dinner ~19:00, +-30 min, varying carbs),
    a bolus with each meal per the insulin-to-carb ratio, a post-dinner walk on some days.

    ``start_local_hour`` is the device-local hour of day at t = 0.
    """
    if days <= 0:
        raise ValueError("days must be positive")
    meals: list[MealIntake] = []
    doses: list[InsulinDose] = []
    bouts: list[ExerciseBout] = []
    plan = ((7.5, 50.0), (12.5, 70.0), (19.0, 80.0))
    for day in range(math.ceil(days) + 1):
        for hour, carbs in plan:
            at = (day * 24.0 + hour - start_local_hour) * 60.0 + rng.normal(0.0, 20.0)
            if at < 0 or at > days * 1440.0:
                continue
            grams = max(10.0, carbs * rng.lognormal(0.0, 0.25))
            meals.append(MealIntake(at_min=at, carbohydrate_g=grams))
            if insulin_units_per_10g_carb > 0 and rng.random() > 0.05:  # a missed bolus, at times
                doses.append(
                    InsulinDose(
                        at_min=at - 10.0, insulin_units=grams / 10.0 * insulin_units_per_10g_carb
                    )
                )
        if rng.random() < exercise_days_per_week / 7.0:
            at = (day * 24.0 + 20.0 - start_local_hour) * 60.0 + rng.normal(0.0, 15.0)
            if 0 <= at <= days * 1440.0:
                bouts.append(
                    ExerciseBout(
                        at_min=at,
                        duration_min=float(rng.uniform(25.0, 50.0)),
                        intensity_pct_vo2max=float(rng.uniform(30.0, 55.0)),
                    )
                )
    return DiabetesSchedule(tuple(meals), tuple(doses), tuple(bouts))


def glucose_meter_error(
    true_mg_dl: Sequence[float] | FloatArray, *, rng: np.random.Generator
) -> FloatArray:
    """A blood-glucose meter's reading of capillary glucose, whole mg/dL.

    Error SD 4 mg/dL below 100 mg/dL and 4 % above: ~95 % of readings inside the ISO 15197:2013
    limits (+-15 mg/dL below 100 mg/dL, +-15 % above).
    """
    g = _as_float_array("true_mg_dl", true_mg_dl)
    sd = np.where(g < 100.0, 4.0, 0.04 * g)
    return np.clip(np.round(g + rng.normal(0.0, 1.0, size=g.size) * sd), 20.0, 600.0)


@dataclass(frozen=True, slots=True)
class CgmSeries:
    """CGM readings: one per ``interval_min``; NaN where the sensor dropped out."""

    time_min: FloatArray
    interstitial_mg_dl: FloatArray
    glucose_mg_dl: FloatArray
    trend_mg_dl_per_min: FloatArray
    quality_pct: FloatArray
    dropout: BoolArray


def cgm_from_plasma(
    trace: GlucoseTrace,
    *,
    interval_min: float,
    lag_time_constant_min: float,
    noise_sd_mg_dl: float,
    dropouts_per_day: float,
    rng: np.random.Generator,
) -> CgmSeries:
    """What a CGM reports from a plasma trace.

    Interstitial glucose follows plasma through a first-order lag (Rebrin 1999):
    ``dIG/dt = (G - IG) / tau``; the sensor adds AR(1) noise (correlation 0.7 per 5 min; Breton &
    Kovatchev 2008) and a small calibration gain error; drop-outs (signal loss, 15-60 min) happen
    at ``dropouts_per_day``. Trend is the slope of the reported values over the last 15 min.
    """
    if interval_min <= 0 or lag_time_constant_min <= 0:
        raise ValueError("interval_min and lag_time_constant_min must be positive")
    dt = trace.step_min
    g = trace.plasma_glucose_mg_dl
    ig = np.empty_like(g)
    ig[0] = g[0]
    alpha = dt / (lag_time_constant_min + dt)  # implicit Euler: stable for any step
    for k in range(1, g.size):
        ig[k] = ig[k - 1] + alpha * (g[k] - ig[k - 1])
    times = np.arange(0.0, trace.time_min[-1] + 1e-9, interval_min)
    ig_at = np.interp(times, trace.time_min, ig)
    rho = 0.7 ** (interval_min / 5.0)
    noise = np.empty(times.size)
    innovations = rng.normal(0.0, noise_sd_mg_dl * math.sqrt(1.0 - rho * rho), size=times.size)
    noise[0] = rng.normal(0.0, noise_sd_mg_dl)
    for k in range(1, times.size):
        noise[k] = rho * noise[k - 1] + innovations[k]
    gain = 1.0 + rng.normal(0.0, 0.03)
    reported = np.clip(np.round(ig_at * gain + noise), 40.0, 400.0)
    dropout = np.zeros(times.size, dtype=bool)
    total_days = trace.time_min[-1] / 1440.0
    for _ in range(int(rng.poisson(dropouts_per_day * total_days))):
        start = rng.uniform(0.0, trace.time_min[-1])
        length = rng.uniform(15.0, 60.0)
        dropout |= (times >= start) & (times < start + length)
    lag_steps = max(1, round(15.0 / interval_min))
    trend = np.full(times.size, np.nan)
    trend[lag_steps:] = (reported[lag_steps:] - reported[:-lag_steps]) / (lag_steps * interval_min)
    quality = np.clip(np.round(95.0 - np.abs(noise) * 2.0), 50.0, 100.0)
    glucose = np.where(dropout, np.nan, reported)
    return CgmSeries(
        time_min=times,
        interstitial_mg_dl=ig_at,
        glucose_mg_dl=glucose,
        trend_mg_dl_per_min=np.round(trend, 1),
        quality_pct=quality,
        dropout=dropout,
    )


# --------------------------------------------------------------------------------------------
# Heart rate, HRV, PPG, accelerometer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RrSeries:
    """Successive RR intervals (s); ``beat_times_s`` is the time of the beat ending each one."""

    rr_intervals_s: FloatArray
    beat_times_s: FloatArray
    ectopic: BoolArray


def rr_intervals(
    *,
    duration_s: float,
    mean_heart_rate_bpm: float,
    rng: np.random.Generator,
    respiratory_rate_hz: float = 0.25,
    rsa_amplitude_s: float = 0.03,
    lf_amplitude_s: float = 0.02,
    lf_frequency_hz: float = 0.1,
    noise_sd_s: float = 0.01,
    ectopic_probability: float = 0.002,
) -> RrSeries:
    """An RR-interval series with heart-rate variability (McSharry 2003 bimodal model).

    RR(t) = 60/HR + RSA sin(2 pi f_resp t) + LF sin(2 pi f_LF t) + AR(1) noise, sampled beat by
    beat; an ectopic (premature) beat comes 30 % early and is followed by a compensatory pause,
    so the pair spans two normal intervals.
    """
    if duration_s <= 0 or not 20.0 <= mean_heart_rate_bpm <= 250.0:
        raise ValueError("duration_s must be positive and mean_heart_rate_bpm in 20..250")
    base_s = 60.0 / mean_heart_rate_bpm
    phase_resp, phase_lf = rng.uniform(0.0, 2.0 * math.pi, size=2)
    rr: list[float] = []
    ectopic: list[bool] = []
    t = 0.0
    noise = 0.0
    pending_pause: float | None = None
    while t < duration_s:
        if pending_pause is not None:
            interval, is_ectopic, pending_pause = pending_pause, False, None
        else:
            noise = 0.6 * noise + rng.normal(0.0, noise_sd_s * 0.8)
            interval = (
                base_s
                + rsa_amplitude_s * math.sin(2.0 * math.pi * respiratory_rate_hz * t + phase_resp)
                + lf_amplitude_s * math.sin(2.0 * math.pi * lf_frequency_hz * t + phase_lf)
                + noise
            )
            interval = min(max(interval, 0.25), 2.0)
            is_ectopic = bool(rng.random() < ectopic_probability)
            if is_ectopic:
                pending_pause = interval * 1.3
                interval *= 0.7
        t += interval
        rr.append(interval)
        ectopic.append(is_ectopic)
    rr_arr = np.asarray(rr)
    return RrSeries(
        rr_intervals_s=rr_arr,
        beat_times_s=np.cumsum(rr_arr),
        ectopic=np.asarray(ectopic, dtype=bool),
    )


@dataclass(frozen=True, slots=True)
class AccelerometerSignal:
    """A wrist accelerometer, in g, shape (n, 3); ``moving`` marks motion episodes."""

    acceleration_g: FloatArray
    moving: BoolArray
    sampling_rate_hz: float


def simulate_accelerometer(
    *,
    duration_s: float,
    sampling_rate_hz: float,
    rng: np.random.Generator,
    motion_fraction: float = 0.15,
) -> AccelerometerSignal:
    """Gravity on a slowly turning wrist, sensor noise, and walking episodes (~1.8-2.2 Hz steps
    with harmonics) covering about ``motion_fraction`` of the time."""
    if duration_s <= 0 or sampling_rate_hz <= 0:
        raise ValueError("duration_s and sampling_rate_hz must be positive")
    n = round(duration_s * sampling_rate_hz)
    t = np.arange(n) / sampling_rate_hz
    tilt = 0.3 * np.sin(2.0 * math.pi * 0.01 * t + rng.uniform(0, 2 * math.pi))
    acc = np.stack([np.sin(tilt), 0.1 * np.cos(tilt), np.cos(tilt)], axis=1)
    acc += rng.normal(0.0, 0.01, size=(n, 3))
    moving = np.zeros(n, dtype=bool)
    expected_bouts = motion_fraction * duration_s / 20.0
    bouts = int(rng.poisson(max(expected_bouts, 0.0)))
    if motion_fraction > 0.0:
        bouts = max(bouts, 1)  # a short recording with motion asked for still has some
    for _ in range(bouts):
        start = rng.uniform(0.0, duration_s)
        length = rng.uniform(5.0, 35.0)
        moving |= (t >= start) & (t < start + length)
    cadence_hz = rng.uniform(1.8, 2.2)
    gait = np.stack(
        [
            0.35 * np.sin(2 * math.pi * cadence_hz * t)
            + 0.1 * np.sin(4 * math.pi * cadence_hz * t),
            0.25 * np.sin(2 * math.pi * cadence_hz / 2.0 * t + 0.5),
            0.4 * np.sin(2 * math.pi * cadence_hz * t + 1.0),
        ],
        axis=1,
    )
    acc += gait * moving[:, None]
    return AccelerometerSignal(
        acceleration_g=acc, moving=moving, sampling_rate_hz=float(sampling_rate_hz)
    )


@dataclass(frozen=True, slots=True)
class PpgSignal:
    """A PPG waveform (arbitrary units, ~0..1 pulse amplitude) with its accelerometer."""

    ppg: FloatArray
    accelerometer: AccelerometerSignal
    sampling_rate_hz: float
    beat_times_s: FloatArray
    #: True where motion corrupts the PPG.
    motion_artifact: BoolArray


def simulate_ppg(
    rr: RrSeries,
    *,
    sampling_rate_hz: float,
    rng: np.random.Generator,
    motion_fraction: float = 0.15,
    motion_artifact_gain: float = 1.5,
    noise_sd: float = 0.01,
) -> PpgSignal:
    """A PPG waveform for the beats of ``rr`` at ``sampling_rate_hz`` (64-256 Hz typical).

    Each beat (onset at the previous beat time) is a systolic Gaussian at 25 % of the interval plus
    a smaller reflected wave at 55 %, widths scaled with the interval; respiration modulates the
    baseline (0.25 Hz); motion adds the accelerometer's dynamic component, times a gain, plus
    a random-walk offset while moving.
    """
    if sampling_rate_hz <= 0:
        raise ValueError("sampling_rate_hz must be positive")
    duration_s = float(rr.beat_times_s[-1])
    n = round(duration_s * sampling_rate_hz)
    t = np.arange(n) / sampling_rate_hz
    ppg = np.zeros(n)
    onsets = np.concatenate([[0.0], rr.beat_times_s[:-1]])
    for onset, interval in zip(onsets, rr.rr_intervals_s, strict=True):
        lo = int(onset * sampling_rate_hz)
        hi = min(n, int((onset + 1.5 * interval) * sampling_rate_hz) + 1)
        seg = t[lo:hi] - onset
        ppg[lo:hi] += np.exp(-(((seg - 0.25 * interval) / (0.09 * interval)) ** 2) / 2.0)
        ppg[lo:hi] += 0.4 * np.exp(-(((seg - 0.55 * interval) / (0.12 * interval)) ** 2) / 2.0)
    ppg += 0.1 * np.sin(2.0 * math.pi * 0.25 * t + rng.uniform(0.0, 2.0 * math.pi))
    accel = simulate_accelerometer(
        duration_s=duration_s,
        sampling_rate_hz=sampling_rate_hz,
        rng=rng,
        motion_fraction=motion_fraction,
    )
    dynamic = accel.acceleration_g - np.mean(accel.acceleration_g, axis=0)
    magnitude = np.linalg.norm(dynamic, axis=1)
    wander = np.cumsum(rng.normal(0.0, 0.02, size=n)) * accel.moving
    ppg += motion_artifact_gain * magnitude * accel.moving + wander
    ppg += rng.normal(0.0, noise_sd, size=n)
    return PpgSignal(
        ppg=ppg,
        accelerometer=accel,
        sampling_rate_hz=float(sampling_rate_hz),
        beat_times_s=rr.beat_times_s,
        motion_artifact=accel.moving.copy(),
    )


# --------------------------------------------------------------------------------------------
# SpO2, temperature, weight
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spo2Series:
    """SpO2 (whole %), pulse rate and perfusion index at the requested times."""

    spo2_pct: FloatArray
    pulse_rate_bpm: FloatArray
    perfusion_index_pct: FloatArray
    desaturation: BoolArray


def spo2(
    time_s: Sequence[float] | FloatArray,
    *,
    baseline_pct: float,
    pulse_rate_bpm: float,
    desaturations_per_hour: float,
    rng: np.random.Generator,
) -> Spo2Series:
    """SpO2 at the given times (s): baseline +-1 %, with desaturation episodes of 4-10 % lasting
    30-90 s arriving as a Poisson process (``desaturations_per_hour``)."""
    t = _as_float_array("time_s", time_s)
    if not 50.0 <= baseline_pct <= 100.0:
        raise ValueError("baseline_pct must be in 50..100")
    value = baseline_pct + rng.normal(0.0, 0.7, size=t.size)
    desat = np.zeros(t.size, dtype=bool)
    if t.size:
        span_h = max((float(t.max()) - float(t.min())) / 3600.0, 1e-9)
        for _ in range(int(rng.poisson(desaturations_per_hour * span_h))):
            start = rng.uniform(float(t.min()), float(t.max()) + 1.0)
            length = rng.uniform(30.0, 90.0)
            depth = rng.uniform(4.0, 10.0)
            inside = (t >= start) & (t < start + length)
            shape = np.sin(math.pi * np.clip((t - start) / length, 0.0, 1.0))
            value -= depth * shape * inside
            desat |= inside
    pulse = pulse_rate_bpm + rng.normal(0.0, 3.0, size=t.size) + 6.0 * desat
    perfusion = np.round(
        np.clip(rng.lognormal(math.log(3.0), 0.4, size=t.size), 0.2, 20.0), 1
    ).astype(np.float64)
    return Spo2Series(
        spo2_pct=np.clip(np.round(value), 70.0, 100.0),
        pulse_rate_bpm=np.round(pulse),
        perfusion_index_pct=perfusion,
        desaturation=desat,
    )


def body_temperature_c(
    local_hour_of_day: Sequence[float] | FloatArray,
    *,
    rng: np.random.Generator,
    mean_c: float = 36.8,
    fever_c: float = 0.0,
) -> FloatArray:
    """Oral/ear temperature (degC, 0.1 resolution): circadian cosine with its nadir at 04:30 and a
    0.25 degC amplitude, thermometer noise SD 0.1, plus ``fever_c``."""
    hour = _as_float_array("local_hour_of_day", local_hour_of_day)
    circadian = -0.25 * np.cos(2.0 * math.pi * (hour - 4.5) / 24.0)
    return np.round(mean_c + fever_c + circadian + rng.normal(0.0, 0.1, size=hour.size), 1)


def body_weight_kg(
    day: Sequence[float] | FloatArray,
    *,
    rng: np.random.Generator,
    baseline_kg: float,
    trend_kg_per_day: float = 0.0,
) -> FloatArray:
    """Morning body weight on the given days: trend plus daily water-balance noise (SD 0.35 kg),
    quantised to the 0.005 kg resolution of the Weight Scale Service."""
    d = _as_float_array("day", day)
    weight = baseline_kg + trend_kg_per_day * d + rng.normal(0.0, 0.35, size=d.size)
    return np.round(weight / 0.005) * 0.005
