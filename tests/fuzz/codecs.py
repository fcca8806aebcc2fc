"""Fuzz targets for the GATT codecs: one harness per module of ``vitalgate/drivers``.

A harness input is one selector byte followed by the characteristic value: the selector picks
which parse function of the module receives the rest (``data[0] % len(targets)``), so one corpus
and one libFuzzer run cover a whole profile. For every target the contract checked is

* the parser raises nothing but :class:`~vitalgate.errors.ParseError` (any other exception is a
  crash: a bug in the codec);
* where the codec round-trips, ``parse -> encode -> parse`` is stable: the second parse equals the
  first (compared by ``repr`` so NaN fields compare equal) and re-encoding the second parse gives
  the same bytes as encoding the first.

These functions are plain Python: the atheris entry points (``tests/fuzz/fuzz_*.py``), the
hypothesis tests and the corpus replay in ``make test`` all call them, so a crash found by one is
reproduced by the others.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vitalgate.drivers import (
    battery,
    blood_pressure,
    cgm,
    current_time,
    device_information,
    glucose,
    heart_rate,
    ieee11073,
    ppg_stream,
    pulse_oximeter,
    racp,
    thermometer,
    weight_scale,
)
from vitalgate.errors import ParseError

__all__ = ["HARNESSES", "CodecTarget", "RoundTripError", "run_codec_harness"]


class RoundTripError(AssertionError):
    """A parsed value that does not survive encode -> parse (a codec bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class CodecTarget:
    """One parse function and, when the codec goes both ways, its encoder."""

    name: str
    parse: Callable[[bytes], Any]
    encode: Callable[[Any], bytes] | None = None


def _same(a: object, b: object) -> bool:
    # repr equality: dataclasses, enums, lists and floats with NaN ('nan' == 'nan').
    return repr(a) == repr(b)


def check_target(target: CodecTarget, payload: bytes) -> None:
    """Run one target on one payload; raise on anything but a clean ParseError."""
    try:
        first = target.parse(payload)
    except ParseError:
        return
    if target.encode is None:
        return
    try:
        encoded = target.encode(first)
    except Exception as exc:
        raise RoundTripError(
            f"{target.name}: parsed {payload.hex()} to {first!r}, which the encoder refuses: "
            f"{exc!r}"
        ) from exc
    try:
        second = target.parse(encoded)
    except ParseError as exc:
        raise RoundTripError(
            f"{target.name}: parsed {payload.hex()} to {first!r}; its encoding "
            f"{encoded.hex()} does not parse: {exc}"
        ) from exc
    if not _same(first, second):
        raise RoundTripError(
            f"{target.name}: {payload.hex()} -> {first!r} -> {encoded.hex()} -> {second!r}"
        )
    again = target.encode(second)
    if again != encoded:
        raise RoundTripError(
            f"{target.name}: encoding is not stable: {encoded.hex()} then {again.hex()}"
        )


# --- per-module target tables ------------------------------------------------------------------


def _both(name: str, parse: Callable[..., Any], encode: Callable[..., bytes]) -> list[CodecTarget]:
    """The two E2E-CRC variants of a CGM characteristic."""
    return [
        CodecTarget(
            f"{name}[crc={crc}]",
            functools.partial(parse, e2e_crc=crc),
            functools.partial(encode, e2e_crc=crc),
        )
        for crc in (False, True)
    ]


@dataclass(frozen=True, slots=True)
class _Number:
    """A decoded (S)FLOAT with the exponent it travelled with (0 for the special values)."""

    value: float
    exponent: int


def _number_parser(size: int, mantissa_bits: int) -> Callable[[bytes], _Number]:
    decode = ieee11073.decode_sfloat if size == 2 else ieee11073.decode_float

    def parse(data: bytes) -> _Number:
        if len(data) != size:
            raise ParseError("ieee11073", f"needs {size} bytes", payload=data)
        raw = int.from_bytes(data, "little")
        value = decode(raw)
        if not math.isfinite(value):
            return _Number(value, 0)
        exponent_bits = size * 8 - mantissa_bits
        return _Number(value, ieee11073._signed(raw >> mantissa_bits, exponent_bits))

    return parse


def _number_encoder(size: int) -> Callable[[_Number], bytes]:
    encode = ieee11073.encode_sfloat if size == 2 else ieee11073.encode_float

    def encode_number(number: _Number) -> bytes:
        return encode(number.value, number.exponent).to_bytes(size, "little")

    return encode_number


def _dis_mapping(data: bytes) -> Mapping[str, bytes]:
    """Split a payload into DIS characteristic values: [uuid index][len][bytes]..."""
    uuids = [*sorted(device_information.STRING_CHARACTERISTICS)]
    uuids += [device_information.SYSTEM_ID_UUID, device_information.PNP_ID_UUID]
    uuids.append("00002a2a-0000-1000-8000-00805f9b34fb")  # IEEE regulatory list: ignored
    values: dict[str, bytes] = {}
    i = 0
    while i + 2 <= len(data):
        uuid = uuids[data[i] % len(uuids)]
        n = data[i + 1] % 32
        values[uuid.upper() if data[i] & 0x80 else uuid] = data[i + 2 : i + 2 + n]
        i += 2 + n
    return values


HARNESSES: dict[str, list[CodecTarget]] = {
    "battery": [
        CodecTarget("battery_level", battery.parse_battery_level, battery.encode_battery_level),
    ],
    "blood_pressure": [
        CodecTarget(
            "measurement", blood_pressure.parse_measurement, blood_pressure.encode_measurement
        ),
        CodecTarget(
            "intermediate_cuff_pressure",
            blood_pressure.parse_intermediate_cuff_pressure,
            blood_pressure.encode_measurement,
        ),
        CodecTarget("feature", blood_pressure.parse_feature, blood_pressure.encode_feature),
    ],
    "cgm": [
        *_both("measurements", cgm.parse_measurements, cgm.encode_measurements),
        CodecTarget("feature", cgm.parse_feature, cgm.encode_feature),
        *_both("status", cgm.parse_status, cgm.encode_status),
        *_both("session_start_time", cgm.parse_session_start_time, cgm.encode_session_start_time),
        *_both("session_run_time", cgm.parse_session_run_time, cgm.encode_session_run_time),
        *_both("socp_request", cgm.parse_socp_request, cgm.encode_socp),
        *_both("socp_response", cgm.parse_socp_response, cgm.encode_socp),
    ],
    "current_time": [
        CodecTarget(
            "current_time", current_time.parse_current_time, current_time.encode_current_time
        ),
        CodecTarget(
            "local_time_information",
            current_time.parse_local_time_information,
            current_time.encode_local_time_information,
        ),
    ],
    "device_information": [
        CodecTarget("string", device_information.parse_string, device_information.encode_string),
        CodecTarget(
            "system_id", device_information.parse_system_id, device_information.encode_system_id
        ),
        CodecTarget("pnp_id", device_information.parse_pnp_id, device_information.encode_pnp_id),
        CodecTarget(
            "device_information",
            lambda d: device_information.parse_device_information(_dis_mapping(d)),
        ),
    ],
    "glucose": [
        CodecTarget("measurement", glucose.parse_measurement, glucose.encode_measurement),
        CodecTarget("context", glucose.parse_context, glucose.encode_context),
        CodecTarget("feature", glucose.parse_feature, glucose.encode_feature),
    ],
    "heart_rate": [
        CodecTarget("measurement", heart_rate.parse_measurement, heart_rate.encode_measurement),
        CodecTarget(
            "body_sensor_location",
            heart_rate.parse_body_sensor_location,
            heart_rate.encode_body_sensor_location,
        ),
        CodecTarget(
            "control_point", heart_rate.parse_control_point, heart_rate.encode_control_point
        ),
    ],
    "ieee11073": [
        CodecTarget("date_time", ieee11073.parse_date_time, ieee11073.encode_date_time),
        CodecTarget("sfloat", _number_parser(2, 12), _number_encoder(2)),
        CodecTarget("float", _number_parser(4, 24), _number_encoder(4)),
    ],
    "ppg_stream": [
        CodecTarget("ppg_packet", ppg_stream.parse_ppg_packet, ppg_stream.encode_ppg_packet),
        CodecTarget("accel_packet", ppg_stream.parse_accel_packet, ppg_stream.encode_accel_packet),
        CodecTarget("config", ppg_stream.parse_config, ppg_stream.encode_config),
    ],
    "pulse_oximeter": [
        CodecTarget(
            "spot_check_measurement",
            pulse_oximeter.parse_spot_check_measurement,
            pulse_oximeter.encode_spot_check_measurement,
        ),
        CodecTarget(
            "continuous_measurement",
            pulse_oximeter.parse_continuous_measurement,
            pulse_oximeter.encode_continuous_measurement,
        ),
        CodecTarget("features", pulse_oximeter.parse_features, pulse_oximeter.encode_features),
    ],
    "racp": [
        CodecTarget("request", racp.parse_request, racp.encode_request),
        CodecTarget("response", racp.parse_response, racp.encode_response),
    ],
    "thermometer": [
        CodecTarget("measurement", thermometer.parse_measurement, thermometer.encode_measurement),
        CodecTarget(
            "temperature_type",
            thermometer.parse_temperature_type,
            thermometer.encode_temperature_type,
        ),
        CodecTarget(
            "measurement_interval",
            thermometer.parse_measurement_interval,
            thermometer.encode_measurement_interval,
        ),
    ],
    "weight_scale": [
        CodecTarget("measurement", weight_scale.parse_measurement, weight_scale.encode_measurement),
        CodecTarget("feature", weight_scale.parse_feature, weight_scale.encode_feature),
    ],
}


def run_codec_harness(harness: str, data: bytes) -> None:
    """The fuzz entry of one codec harness: selector byte, then the characteristic value."""
    if not data:
        return
    targets = HARNESSES[harness]
    check_target(targets[data[0] % len(targets)], data[1:])
