"""Spot-measurement devices that indicate and go quiet: thermometer, scale, pulse oximeter.

Like the BP monitor: subscribe to the measurement characteristics, collect until the device is
quiet for ``quiet_period_s`` or drops the link, deliver. These devices keep no sequence
numbers; their readings' ids come from the device time and values, so a re-sent record is the
same reading. A pulse oximeter's continuous measurements (0x2A5F) are taken too while connected.
"""

from __future__ import annotations

from datetime import datetime

from vitalgate.drivers import pulse_oximeter as plx
from vitalgate.drivers import thermometer, uuids, weight_scale
from vitalgate.gateway.pipeline import Rejected
from vitalgate.gateway.sessions.base import SessionEnv, SessionResult, collect_until_quiet
from vitalgate.readings import Reading

__all__ = ["run_pulse_oximeter", "run_thermometer", "run_weight_scale"]


async def run_thermometer(env: SessionEnv) -> SessionResult:
    result = SessionResult()
    site: int | None = None
    if env.link.has(uuids.TEMPERATURE_TYPE):
        site = int(thermometer.parse_temperature_type(await env.link.read(uuids.TEMPERATURE_TYPE)))

    def handle(received_at: datetime, data: bytes) -> Reading | Rejected:
        m = thermometer.parse_measurement(data)
        return env.builder.temperature(m, received_at, site=site)

    await collect_until_quiet(
        env, {uuids.TEMPERATURE_MEASUREMENT: ("temperature measurement", handle)}, result
    )
    return result


async def run_weight_scale(env: SessionEnv) -> SessionResult:
    result = SessionResult()

    def handle(received_at: datetime, data: bytes) -> Reading | Rejected:
        return env.builder.weight(weight_scale.parse_measurement(data), received_at)

    await collect_until_quiet(
        env, {uuids.WEIGHT_MEASUREMENT: ("weight measurement", handle)}, result
    )
    return result


async def run_pulse_oximeter(env: SessionEnv) -> SessionResult:
    result = SessionResult()

    def spot(received_at: datetime, data: bytes) -> Reading | Rejected:
        return env.builder.spot_check(plx.parse_spot_check_measurement(data), received_at)

    def continuous(received_at: datetime, data: bytes) -> Reading | Rejected:
        return env.builder.continuous_oximetry(plx.parse_continuous_measurement(data), received_at)

    await collect_until_quiet(
        env,
        {
            uuids.PLX_SPOT_CHECK_MEASUREMENT: ("PLX spot-check measurement", spot),
            uuids.PLX_CONTINUOUS_MEASUREMENT: ("PLX continuous measurement", continuous),
        },
        result,
    )
    return result
