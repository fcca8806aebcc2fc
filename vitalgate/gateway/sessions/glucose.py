"""Glucose meter: RACP "report stored records >= last + 1", join contexts, disconnect.

The first sync asks for all records. Measurements (0x2A18) and their contexts (0x2A34) arrive as
notifications before the RACP response indication; a context is joined to its measurement by
sequence number. Records are delivered in batches while the download runs (so a download larger
than the buffer works), and the sync point -- the highest sequence number received -- is
recorded only after the procedure succeeded and everything was delivered. A download cut short
(the gateway killed, the link lost) leaves the sync point where it was: the next sync asks again,
and the records already in the outbox come back with the same reading ids and are ignored.

A meter whose memory was reset (its sequence numbers restarted below the sync point) answers
"no records found" forever; the session detects it by asking for the last record and, when its
sequence number is below the sync point, downloads everything again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from vitalgate.drivers import glucose as codec
from vitalgate.drivers import racp, uuids
from vitalgate.errors import DeviceError, ParseError
from vitalgate.gateway.link import first_error
from vitalgate.gateway.pipeline import Rejected
from vitalgate.gateway.registry import SyncPoint
from vitalgate.gateway.sessions.base import (
    Inbox,
    SessionEnv,
    SessionResult,
    deliver,
    parse_reason,
)
from vitalgate.gateway.sessions.racp import Progress, RacpChannel
from vitalgate.readings import Reading

__all__ = ["run_glucose"]

_log = logging.getLogger(__name__)

#: Seconds between deliveries during a long download.
FLUSH_S = 1.0

_MEASUREMENT = b"m"
_CONTEXT = b"c"


class _Download:
    """Collects one RACP download, joining contexts, delivering in batches."""

    def __init__(self, env: SessionEnv, result: SessionResult, *, store: bool = True) -> None:
        self.env = env
        self.store = store  # False for a probe: only the sequence numbers matter
        self.result = result
        self.measurements: dict[int, tuple[datetime, codec.GlucoseMeasurement]] = {}
        self.contexts: dict[int, codec.GlucoseMeasurementContext] = {}
        self.max_seq: int | None = None
        self.undecodable = 0

    def take(self, received_at: datetime, data: bytes) -> None:
        tag, payload = data[:1], data[1:]
        try:
            if tag == _MEASUREMENT:
                m = codec.parse_measurement(payload)
                self.measurements[m.sequence_number] = (received_at, m)
                if self.max_seq is None or m.sequence_number > self.max_seq:
                    self.max_seq = m.sequence_number
            else:
                c = codec.parse_context(payload)
                self.contexts[c.sequence_number] = c
        except ParseError as exc:
            what = "glucose measurement" if tag == _MEASUREMENT else "glucose context"
            self.result.rejected.append(parse_reason(what, exc))
            self.undecodable += 1

    async def flush(self, *, final: bool) -> None:
        seqs = sorted(self.measurements)
        if not self.store:
            self.measurements.clear()
            self.contexts.clear()
            return
        if not final:
            # The newest measurement's context may still be on its way.
            seqs = seqs[:-1]
        items: list[Reading | Rejected] = []
        for seq in seqs:
            received_at, m = self.measurements.pop(seq)
            items.append(self.env.builder.glucose(m, self.contexts.pop(seq, None), received_at))
        if final and self.contexts:
            self.result.rejected.append(
                f"{len(self.contexts)} glucose context(s) without a measurement"
            )
            self.contexts.clear()
        await deliver(self.env, items, self.result)


async def _run_procedure(
    env: SessionEnv,
    *,
    channel: RacpChannel,
    inbox: Inbox,
    progress: Progress,
    request: racp.RacpRequest,
    download: _Download,
) -> racp.RacpResponse:
    """Run one RACP request while a consumer drains the inbox into the download."""
    finished = asyncio.Event()

    loop = asyncio.get_running_loop()

    async def consume() -> None:
        last_flush = loop.time()
        while True:
            got = await inbox.get(0.05)
            if got is None:
                if finished.is_set() and inbox.empty():
                    return
            else:
                download.take(*got)
            # Deliver every ``limits.download_batch`` records or every FLUSH_S seconds, so a
            # download cut short (a killed gateway) has kept nearly everything it received.
            if len(download.measurements) > env.limits.download_batch or (
                len(download.measurements) > 1 and loop.time() - last_flush >= FLUSH_S
            ):
                await download.flush(final=False)
                last_flush = loop.time()

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(consume())
            try:
                response = await channel.request(
                    request, progress=progress, idle_timeout_s=env.limits.procedure_timeout_s
                )
            finally:
                finished.set()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    await download.flush(final=True)
    return response


async def run_glucose(env: SessionEnv) -> SessionResult:
    result = SessionResult()
    link = env.link
    inbox = Inbox(env.clock, env.limits.stream_buffer)
    progress = Progress()

    def on_measurement(data: bytes) -> None:
        progress.touch()
        inbox.push(_MEASUREMENT + data)

    def on_context(data: bytes) -> None:
        progress.touch()
        inbox.push(_CONTEXT + data)

    await link.subscribe(uuids.GLUCOSE_MEASUREMENT, on_measurement)
    if link.has(uuids.GLUCOSE_MEASUREMENT_CONTEXT):
        await link.subscribe(uuids.GLUCOSE_MEASUREMENT_CONTEXT, on_context)
    channel = RacpChannel(link)
    await channel.open()

    last = env.builder.record.sync.last_racp_seq
    request = racp.report_all() if last is None else racp.report_from_sequence(last + 1)
    if last is not None and last >= 0xFFFF:
        request = racp.report_all()  # the u16 sequence space is exhausted: ask for everything
    download = _Download(env, result)
    response = await _run_procedure(
        env, channel=channel, inbox=inbox, progress=progress, request=request, download=download
    )
    code = response.response_code
    if code == racp.ResponseCode.NO_RECORDS_FOUND and last is not None:
        probe = _Download(env, result, store=False)
        probe_request = racp.report_records(racp.Operator.LAST_RECORD)
        probe_response = await _run_procedure(
            env,
            channel=channel,
            inbox=inbox,
            progress=progress,
            request=probe_request,
            download=probe,
        )
        if (
            probe_response.response_code == racp.ResponseCode.SUCCESS
            and probe.max_seq is not None
            and probe.max_seq < last
        ):
            _log.warning("%s: glucose meter memory was reset; downloading all", link.address)
            await asyncio.to_thread(env.registry.reset_sync, link.address)
            download = _Download(env, result)
            response = await _run_procedure(
                env,
                channel=channel,
                inbox=inbox,
                progress=progress,
                request=racp.report_all(),
                download=download,
            )
            code = response.response_code
    result.dropped = inbox.dropped
    if code not in (racp.ResponseCode.SUCCESS, racp.ResponseCode.NO_RECORDS_FOUND):
        raise DeviceError(f"{link.address}: RACP report refused: {code!r}")
    # An undecodable record has an unknown sequence number: moving the sync point past it could
    # skip it for good, so the sync point stays and the next sync asks again (records already
    # stored come back with the same ids and are ignored).
    if inbox.dropped == 0 and download.undecodable == 0 and download.max_seq is not None:
        result.sync = SyncPoint(last_racp_seq=download.max_seq)
        await env.advance_sync(result.sync)
    return result
