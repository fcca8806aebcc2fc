"""Blood pressure: take the stored measurements the monitor indicates, until it goes quiet.

A monitor advertises after a measurement; once the gateway subscribes to Blood Pressure
Measurement (0x2A35) it indicates its stored records, oldest first (and typically deletes each
once confirmed, then drops the link). The session collects them until ``quiet_period_s`` passes
without one or the monitor disconnects, delivers them, and records the newest device timestamp
as the sync point. A monitor that re-sends its whole memory produces the same reading ids, which
the outbox ignores.
"""

from __future__ import annotations

from datetime import datetime

from vitalgate.drivers import blood_pressure as codec
from vitalgate.drivers import uuids
from vitalgate.gateway.pipeline import Rejected
from vitalgate.gateway.registry import SyncPoint
from vitalgate.gateway.sessions.base import SessionEnv, SessionResult, collect_until_quiet
from vitalgate.readings import BloodPressureReading, Reading

__all__ = ["run_blood_pressure"]


async def run_blood_pressure(env: SessionEnv) -> SessionResult:
    result = SessionResult()

    def handle(received_at: datetime, data: bytes) -> Reading | Rejected:
        return env.builder.blood_pressure(codec.parse_measurement(data), received_at)

    delivered = await collect_until_quiet(
        env, {uuids.BLOOD_PRESSURE_MEASUREMENT: ("blood pressure measurement", handle)}, result
    )
    stamps = [
        r.device_time
        for r in delivered
        if isinstance(r, BloodPressureReading) and r.device_time is not None
    ]
    if result.dropped == 0 and stamps:
        result.sync = SyncPoint(last_bp_time=max(stamps))
        await env.advance_sync(result.sync)
    return result
