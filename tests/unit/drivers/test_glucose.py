"""Glucose Measurement (0x2A18), Glucose Measurement Context (0x2A34), Glucose Feature (0x2A51).

Vectors worked out by hand from the GSS "Glucose Measurement" / "Glucose Measurement Context"
definitions (GLS v1.0 section 3). Type-Sample Location: Type in bits 0-3, Sample Location in
bits 4-7. Units: kg/L (mg/dL = kg/L * 1e5) or mol/L (mg/dL = mol/L * 1000 * 18.016).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from vitalgate.drivers import glucose as g
from vitalgate.drivers import ieee11073
from vitalgate.drivers.glucose import (
    CarbohydrateId,
    ConcentrationUnit,
    GlucoseFeature,
    GlucoseFeatureFlag,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    HealthCode,
    MealCode,
    MedicationId,
    SampleLocation,
    SampleType,
    SensorStatus,
)
from vitalgate.errors import ParseError
from vitalgate.readings import Meal

T = datetime(2026, 11, 25, 7, 30, 0)
T_HEX = "ea070b19071e00"


def _m(**kwargs: object) -> GlucoseMeasurement:
    base: dict[str, object] = {"sequence_number": 5, "base_time": T}
    base.update(kwargs)
    return GlucoseMeasurement(**base)  # type: ignore[arg-type]


def _kg(value: float, **kwargs: object) -> GlucoseMeasurement:
    return _m(
        concentration_as_sent=value,
        concentration_unit=ConcentrationUnit.KG_PER_L,
        sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
        sample_location=SampleLocation.FINGER,
        **kwargs,
    )


MEASUREMENTS = [
    pytest.param(f"00 0500 {T_HEX}", _m(), True, id="GSS GLM flags 0x00 sequence + base time"),
    pytest.param(
        f"01 0500 {T_HEX} 3c00", _m(time_offset_min=60), True, id="GSS GLM flags 0x01 offset +60"
    ),
    pytest.param(
        f"01 0500 {T_HEX} e2ff", _m(time_offset_min=-30), True, id="GSS GLM flags 0x01 offset -30"
    ),
    pytest.param(
        f"02 0500 {T_HEX} 0cc0 11", _kg(0.0012), True, id="GSS GLM flags 0x02 120 mg/dL as kg/L"
    ),
    pytest.param(
        f"06 0500 {T_HEX} 37c0 12",
        _m(
            concentration_as_sent=0.0055,
            concentration_unit=ConcentrationUnit.MOL_PER_L,
            sample_type=SampleType.CAPILLARY_PLASMA,
            sample_location=SampleLocation.FINGER,
        ),
        True,
        id="GSS GLM flags 0x06 5.5 mmol/L as mol/L, capillary plasma",
    ),
    pytest.param(
        f"08 0500 {T_HEX} 0100",
        _m(sensor_status=SensorStatus.DEVICE_BATTERY_LOW),
        True,
        id="GSS GLM flags 0x08 sensor status battery low",
    ),
    pytest.param(
        f"10 0500 {T_HEX}", _m(context_follows=True), True, id="GSS GLM flags 0x10 context follows"
    ),
    pytest.param(
        f"1b ffff {T_HEX} 0000 0cc0 11 ff0f",
        _kg(
            0.0012,
            sequence_number=0xFFFF,
            time_offset_min=0,
            sensor_status=SensorStatus(0x0FFF),
            context_follows=True,
        ),
        True,
        id="GSS GLM flags 0x1B all fields, all 12 status bits",
    ),
    pytest.param(
        f"02 0500 {T_HEX} 0cc0 4a",
        _m(
            concentration_as_sent=0.0012,
            concentration_unit=ConcentrationUnit.KG_PER_L,
            sample_type=SampleType.CONTROL_SOLUTION,
            sample_location=SampleLocation.CONTROL_SOLUTION,
        ),
        True,
        id="GSS GLM type 10 control solution (low nibble), location 4 (high nibble)",
    ),
    pytest.param(
        f"02 0500 {T_HEX} 0cc0 f9",
        _m(
            concentration_as_sent=0.0012,
            concentration_unit=ConcentrationUnit.KG_PER_L,
            sample_type=SampleType.INTERSTITIAL_FLUID,
            sample_location=SampleLocation.NOT_AVAILABLE,
        ),
        True,
        id="GSS GLM type 9 ISF, location 15 not available",
    ),
    pytest.param(f"00 0500 {'00' * 7}", _m(base_time=None), True, id="GSS GLM base time not known"),
    pytest.param(f"e0 0500 {T_HEX}", _m(), False, id="GSS GLM reserved flag bits b5-b7 ignored"),
    pytest.param(
        f"08 0500 {T_HEX} 00f0",
        _m(sensor_status=SensorStatus(0xF000)),
        True,
        id="GSS GLM reserved status bits 12-15 kept",
    ),
]


@pytest.mark.parametrize(("hex_data", "expected", "canonical"), MEASUREMENTS)
def test_measurement_vectors(hex_data: str, expected: GlucoseMeasurement, canonical: bool) -> None:
    data = bytes.fromhex(hex_data)
    assert g.parse_measurement(data) == expected
    if canonical:
        assert g.encode_measurement(expected) == data


@pytest.mark.parametrize(
    ("hex_sfloat", "unit_flag", "mg_dl"),
    [
        ("0cc0", 0x02, 120.0),  # 12e-4 kg/L
        ("09c0", 0x02, 90.0),  # 9e-4 kg/L = 90 mg/dL
        ("37c0", 0x06, 99.088),  # 55e-4 mol/L = 5.5 mmol/L = 99.088 mg/dL
        ("01d0", 0x06, 18.016),  # 1e-3 mol/L = 1 mmol/L
    ],
    ids=["kg/L 120", "kg/L 90", "mol/L 5.5 mmol", "mol/L 1 mmol"],
)
def test_glucose_mg_dl_conversion(hex_sfloat: str, unit_flag: int, mg_dl: float) -> None:
    data = bytes.fromhex(f"{unit_flag:02x} 0500 {T_HEX} {hex_sfloat} 11")
    assert g.parse_measurement(data).glucose_mg_dl == mg_dl


def test_nibble_order_type_low_location_high() -> None:
    # 0x1A: type 10 (control solution) in the low nibble, location 1 (finger) in the high one.
    m = g.parse_measurement(bytes.fromhex(f"02 0500 {T_HEX} 0cc0 1a"))
    assert m.sample_type is SampleType.CONTROL_SOLUTION
    assert m.sample_location is SampleLocation.FINGER
    assert m.is_control_solution
    # 0x41: type 1 capillary whole blood, location 4 control solution.
    m = g.parse_measurement(bytes.fromhex(f"02 0500 {T_HEX} 0cc0 41"))
    assert m.sample_type is SampleType.CAPILLARY_WHOLE_BLOOD
    assert m.sample_location is SampleLocation.CONTROL_SOLUTION
    assert m.is_control_solution
    assert not g.parse_measurement(bytes.fromhex(f"02 0500 {T_HEX} 0cc0 11")).is_control_solution


def test_reserved_type_and_location_are_kept() -> None:
    m = g.parse_measurement(bytes.fromhex(f"02 0500 {T_HEX} 0cc0 5b"))
    assert (int(m.sample_type or 0), int(m.sample_location or 0)) == (11, 5)
    assert g.encode_measurement(m).endswith(b"\x5b")


def test_user_facing_time_and_absent_concentration() -> None:
    m = g.parse_measurement(bytes.fromhex(f"01 0500 {T_HEX} e2ff"))
    assert m.user_facing_time == T - timedelta(minutes=30)
    assert m.glucose_mg_dl is None
    assert not m.is_control_solution


FULL = bytes.fromhex(f"1b ffff {T_HEX} 0000 0cc0 11 ff0f")


@pytest.mark.parametrize("cut", range(len(FULL)), ids=lambda n: f"first-{n}-bytes")
def test_truncated_measurement(cut: int) -> None:
    with pytest.raises(ParseError) as info:
        g.parse_measurement(FULL[:cut])
    assert info.value.profile == "glucose"


def test_over_long_measurement() -> None:
    with pytest.raises(ParseError, match="trailing"):
        g.parse_measurement(FULL + b"\x00")


def test_measurement_validation() -> None:
    with pytest.raises(ValueError):
        _m(concentration_as_sent=0.0012)  # without unit / type / location
    with pytest.raises(ValueError):
        _m(sequence_number=0x10000)
    with pytest.raises(ValueError):
        _m(time_offset_min=0x8000)


# --- Context -----------------------------------------------------------------------------------


def _c(**kwargs: object) -> GlucoseMeasurementContext:
    return GlucoseMeasurementContext(sequence_number=5, **kwargs)  # type: ignore[arg-type]


CONTEXTS = [
    pytest.param("00 0500", _c(), id="GSS GLMC flags 0x00"),
    pytest.param(
        "01 0500 01 05e0",
        _c(carbohydrate_id=CarbohydrateId.BREAKFAST, carbohydrate_g=50.0),
        id="GSS GLMC flags 0x01 breakfast 50 g (0.05 kg)",
    ),
    pytest.param("02 0500 02", _c(meal=MealCode.POSTPRANDIAL), id="GSS GLMC flags 0x02 meal"),
    pytest.param(
        "04 0500 51",
        _c(tester=g.TesterCode.SELF, health=HealthCode.NO_HEALTH_ISSUES),
        id="GSS GLMC flags 0x04 tester self (low nibble), health 5 (high nibble)",
    ),
    pytest.param(
        "08 0500 0807 32",
        _c(exercise_duration_s=1800, exercise_intensity_pct=50),
        id="GSS GLMC flags 0x08 exercise 1800 s at 50 %",
    ),
    pytest.param(
        "10 0500 01 02a0",
        _c(medication_id=MedicationId.RAPID_ACTING_INSULIN, medication_mg=2.0),
        id="GSS GLMC flags 0x10 medication 2 mg (2e-6 kg)",
    ),
    pytest.param(
        "30 0500 04 01c0",
        _c(medication_id=MedicationId.LONG_ACTING_INSULIN, medication_ml=0.1),
        id="GSS GLMC flags 0x30 medication 0.1 mL (1e-4 L)",
    ),
    pytest.param("40 0500 41f0", _c(hba1c_pct=6.5), id="GSS GLMC flags 0x40 HbA1c 6.5 %"),
    pytest.param("80 0500 00", _c(extended_flags=0), id="GSS GLMC flags 0x80 extended flags"),
    pytest.param(
        "ff 0500 00 01 05e0 02 51 0807 32 01 01c0 41f0",
        _c(
            extended_flags=0,
            carbohydrate_id=CarbohydrateId.BREAKFAST,
            carbohydrate_g=50.0,
            meal=MealCode.POSTPRANDIAL,
            tester=g.TesterCode.SELF,
            health=HealthCode.NO_HEALTH_ISSUES,
            exercise_duration_s=1800,
            exercise_intensity_pct=50,
            medication_id=MedicationId.RAPID_ACTING_INSULIN,
            medication_ml=0.1,
            hba1c_pct=6.5,
        ),
        id="GSS GLMC flags 0xFF every field, extended flags right after the sequence number",
    ),
    pytest.param(
        "0c 0500 ff ffff ff",
        _c(
            tester=g.TesterCode.NOT_AVAILABLE,
            health=HealthCode.NOT_AVAILABLE,
            exercise_duration_s=0xFFFF,
            exercise_intensity_pct=0xFF,
        ),
        id="GSS GLMC not-available tester/health, exercise overrun",
    ),
]


@pytest.mark.parametrize(("hex_data", "expected"), CONTEXTS)
def test_context_vectors(hex_data: str, expected: GlucoseMeasurementContext) -> None:
    data = bytes.fromhex(hex_data)
    assert g.parse_context(data) == expected
    assert g.encode_context(expected) == data


def test_context_meal_maps_to_reading_meal() -> None:
    for code, meal in zip(MealCode, Meal, strict=True):
        assert _c(meal=code).reading_meal is meal
    assert _c(meal=MealCode(9)).reading_meal is None
    assert _c().reading_meal is None


def test_context_exercise_overrun() -> None:
    assert _c(exercise_duration_s=0xFFFF, exercise_intensity_pct=1).exercise_duration_overrun


CONTEXT_FULL = bytes.fromhex("ff 0500 00 01 05e0 02 51 0807 32 01 01c0 41f0")


@pytest.mark.parametrize("cut", range(len(CONTEXT_FULL)), ids=lambda n: f"first-{n}-bytes")
def test_truncated_context(cut: int) -> None:
    with pytest.raises(ParseError):
        g.parse_context(CONTEXT_FULL[:cut])


def test_over_long_context() -> None:
    with pytest.raises(ParseError):
        g.parse_context(CONTEXT_FULL + b"\x00")


def test_context_validation() -> None:
    with pytest.raises(ValueError):
        _c(carbohydrate_g=1.0)  # without id
    with pytest.raises(ValueError):
        _c(medication_id=MedicationId.RAPID_ACTING_INSULIN, medication_mg=1.0, medication_ml=1.0)
    with pytest.raises(ValueError):
        _c(tester=g.TesterCode(16), health=HealthCode.NOT_AVAILABLE)


# --- Feature -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_data", "flags"),
    [
        ("0000", GlucoseFeatureFlag(0)),
        ("ff07", GlucoseFeatureFlag(0x07FF)),
        ("0004", GlucoseFeatureFlag.MULTIPLE_BOND),
        ("0200", GlucoseFeatureFlag.SENSOR_MALFUNCTION_DETECTION),
    ],
    ids=["none", "b0-b10 all", "b10 multiple bond", "b1 malfunction"],
)
def test_feature_vectors(hex_data: str, flags: GlucoseFeatureFlag) -> None:
    # GSS Glucose Feature (0x2A51), u16.
    feature = g.parse_feature(bytes.fromhex(hex_data))
    assert feature == GlucoseFeature(flags=flags)
    assert g.encode_feature(feature) == bytes.fromhex(hex_data)


@pytest.mark.parametrize("hex_data", ["", "00", "000000"], ids=["empty", "short", "long"])
def test_feature_bad_length(hex_data: str) -> None:
    with pytest.raises(ParseError):
        g.parse_feature(bytes.fromhex(hex_data))


def test_racp_is_re_exported() -> None:
    assert g.encode_request(g.report_from_sequence(42)) == bytes.fromhex("0103012a00")
    assert g.parse_response(bytes.fromhex("06000101")).is_success


def test_unit_helpers() -> None:
    assert g.mg_dl_from_kg_per_l(0.0012) == 120.0
    assert g.kg_per_l_from_mg_dl(120.0) == 0.0012
    assert g.mg_dl_from_mol_per_l(0.0055) == 99.088
    assert g.mol_per_l_from_mg_dl(99.088) == pytest.approx(0.0055)
    assert math.isnan(g.mg_dl_from_kg_per_l(math.nan))


# --- properties --------------------------------------------------------------------------------

SPECIAL = {0x7FE, 0x7FF, 0x800, 0x801, 0x802}
sfloats = st.one_of(
    st.integers(0, 0xFFFF)
    .filter(lambda raw: raw & 0x0FFF not in SPECIAL)
    .map(ieee11073.decode_sfloat),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
finite_sfloats = (
    st.integers(0, 0xFFFF)
    .filter(lambda raw: raw & 0x0FFF not in SPECIAL)
    .map(ieee11073.decode_sfloat)
)
device_times = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    concentration = draw(st.booleans())
    return GlucoseMeasurement(
        sequence_number=draw(st.integers(0, 0xFFFF)),
        base_time=draw(st.none() | device_times),
        time_offset_min=draw(st.none() | st.integers(-0x8000, 0x7FFF)),
        concentration_as_sent=draw(sfloats) if concentration else None,
        concentration_unit=draw(st.sampled_from(list(ConcentrationUnit)))
        if concentration
        else None,
        sample_type=SampleType(draw(st.integers(0, 15))) if concentration else None,
        sample_location=SampleLocation(draw(st.integers(0, 15))) if concentration else None,
        sensor_status=draw(st.none() | st.integers(0, 0xFFFF).map(SensorStatus)),
        context_follows=draw(st.booleans()),
    )


@given(measurements())
@settings(max_examples=400)
def test_measurement_round_trip(m: GlucoseMeasurement) -> None:
    assert g.parse_measurement(g.encode_measurement(m)) == m


def _scaled(factor: int) -> st.SearchStrategy[float]:
    # Values a device can send: an SFLOAT (kg or L) converted the way the codec converts.
    return finite_sfloats.map(lambda v: g._convert(v, factor))


@st.composite
def contexts(draw: st.DrawFn) -> GlucoseMeasurementContext:
    carb = draw(st.booleans())
    tester = draw(st.booleans())
    exercise = draw(st.booleans())
    medication = draw(st.sampled_from(["none", "mg", "ml"]))
    return GlucoseMeasurementContext(
        sequence_number=draw(st.integers(0, 0xFFFF)),
        extended_flags=draw(st.none() | st.integers(0, 0xFF)),
        carbohydrate_id=CarbohydrateId(draw(st.integers(0, 0xFF))) if carb else None,
        carbohydrate_g=draw(_scaled(1000)) if carb else None,
        meal=draw(st.none() | st.integers(0, 0xFF).map(MealCode)),
        tester=g.TesterCode(draw(st.integers(0, 15))) if tester else None,
        health=HealthCode(draw(st.integers(0, 15))) if tester else None,
        exercise_duration_s=draw(st.integers(0, 0xFFFF)) if exercise else None,
        exercise_intensity_pct=draw(st.integers(0, 0xFF)) if exercise else None,
        medication_id=MedicationId(draw(st.integers(0, 0xFF))) if medication != "none" else None,
        medication_mg=draw(_scaled(1_000_000)) if medication == "mg" else None,
        medication_ml=draw(_scaled(1000)) if medication == "ml" else None,
        hba1c_pct=draw(st.none() | sfloats),
    )


@given(contexts())
@settings(max_examples=400)
def test_context_round_trip(context: GlucoseMeasurementContext) -> None:
    assert g.parse_context(g.encode_context(context)) == context


@given(st.integers(0, 0xFFFF))
def test_feature_round_trip(raw: int) -> None:
    feature = GlucoseFeature(flags=GlucoseFeatureFlag(raw))
    assert g.parse_feature(g.encode_feature(feature)) == feature


@seed(2018)
@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=24))
def test_fuzz_only_parse_error(data: bytes) -> None:
    for parse in (g.parse_measurement, g.parse_context, g.parse_feature):
        try:
            parse(data)
        except ParseError:
            pass
