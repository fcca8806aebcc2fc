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

A meter numbers its records +1 each (GLS 3.1.1.1) and, when its memory is full, overwrites the
oldest. So when "report >= last + 1" brings records but some sequence numbers between the sync
point and the newest record never arrive, those records were overwritten (or deleted on the
meter) before the gateway could fetch them: they cannot be fetched any more, and the session
says so -- an ERROR log line and a problem in the session result (the registry's last error),
never silently. The sync point still moves on, as asking again cannot bring them back.
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
        #: Sequence numbers of the measurements received (to find records the meter lost).
        self.received: set[int] = set()
        #: The newest measurement, held back at the end because the context it announced had
        #: not arrived (a record the meter sent live as a procedure ended): fetched again.
        self.held: int | None = None
        self.undecodable = 0

    def take(self, received_at: datetime, data: bytes) -> None:
        tag, payload = data[:1], data[1:]
        try:
            if tag == _MEASUREMENT:
                m = codec.parse_measurement(payload)
                self.measurements[m.sequence_number] = (received_at, m)
                self.received.add(m.sequence_number)
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
        newest = seqs[-1] if seqs else None
        for seq in seqs:
            received_at, m = self.measurements.pop(seq)
            context = self.contexts.pop(seq, None)
            if final and seq == newest and m.context_follows and context is None:
                # Its context is still on its way: delivering it now would store the record
                # without its meal and carbohydrates for good (the reading id is the same).
                self.held = seq
                continue
            items.append(self.env.builder.glucose(m, context, received_at))
        if final and self.contexts:
            self.result.rejected.append(
                f"{len(self.contexts)} glucose context(s) without a measurement"
            )
            self.contexts.clear()
        await deliver(self.env, items, self.result)


def missing_sequence_ranges(
    first_expected: int, received: set[int], newest: int
) -> list[tuple[int, int]]:
    """The runs ``(first, last)`` of sequence numbers in ``first_expected..newest`` not received.

    Sequence numbers are u16 and the caller only asks this below the wrap (``newest`` is the
    largest number received, ``first_expected <= newest + 1``).
    """
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for seq in range(first_expected, newest + 1):
        if seq in received:
            if start is not None:
                runs.append((start, seq - 1))
                start = None
        elif start is None:
            start = seq
    if start is not None:
        runs.append((start, newest))
    return runs


def _describe(runs: list[tuple[int, int]]) -> str:
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:5])
    return shown + (f" and {len(runs) - 5} more run(s)" if len(runs) > 5 else "")


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
    # The first sequence number this download must bring if the meter lost nothing. None asks
    # for everything: the first sync (records from before the pairing are not the gateway's to
    # miss) and an exhausted u16 sequence space.
    expected_first = None if last is None or last >= 0xFFFF else last + 1
    request = (
        racp.report_all() if expected_first is None else racp.report_from_sequence(expected_first)
    )
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
            expected_first = None
            last = None
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
        if expected_first is not None and code == racp.ResponseCode.SUCCESS:
            _report_missing(link.address, expected_first, download, result)
        newest = download.max_seq if download.held is None else download.held - 1
        if newest >= 0 and (last is None or newest > last):
            result.sync = SyncPoint(last_racp_seq=newest)
            await env.advance_sync(result.sync)
    return result


def _report_missing(
    address: str, first_expected: int, download: _Download, result: SessionResult
) -> None:
    """Say (ERROR, and a session problem) which records the meter lost before we fetched them."""
    assert download.max_seq is not None
    runs = missing_sequence_ranges(first_expected, download.received, download.max_seq)
    if not runs:
        return
    count = sum(b - a + 1 for a, b in runs)
    message = (
        f"{count} glucose record(s) lost on the meter before the gateway could fetch them "
        f"(overwritten or deleted; sequence numbers {_describe(runs)})"
    )
    _log.error("%s: %s", address, message)
    result.lost_on_device.append(message)
