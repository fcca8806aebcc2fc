"""Record Access Control Point procedures shared by the glucose meter and the CGM."""

from __future__ import annotations

import asyncio

from vitalgate.drivers import racp, uuids
from vitalgate.errors import DeviceError, ParseError
from vitalgate.gateway.link import (
    ATT_PROCEDURE_ALREADY_IN_PROGRESS,
    GattProtocolError,
    Link,
    TransientDeviceError,
)

__all__ = ["Progress", "RacpChannel"]


#: "Procedure Already In Progress": 0xFE (CSS common profile error), 0x80 (GLS/PLXS application
#: error with the same meaning).
_BUSY_CODES = frozenset({ATT_PROCEDURE_ALREADY_IN_PROGRESS, 0x80})
_BUSY_ATTEMPTS = 4


class RacpChannel:
    """Writes RACP requests and waits for their response indications (one at a time)."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._responses: asyncio.Queue[racp.RacpResponse | ParseError] = asyncio.Queue(8)

    async def open(self) -> None:
        await self._link.subscribe(uuids.RECORD_ACCESS_CONTROL_POINT, self._on_indication)

    def _on_indication(self, data: bytes) -> None:
        try:
            item: racp.RacpResponse | ParseError = racp.parse_response(data)
        except ParseError as exc:
            item = exc
        try:
            self._responses.put_nowait(item)
        except asyncio.QueueFull:
            pass  # only one procedure runs at a time: a flood of responses is a device fault

    async def _abort(self, timeout_s: float) -> None:
        """Abort the running procedure and wait (bounded) for the abort's response."""
        try:
            await self._link.write(
                uuids.RECORD_ACCESS_CONTROL_POINT, racp.encode_request(racp.abort())
            )
        except GattProtocolError:
            return  # the device refuses the abort: the retries will tell
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    item = await self._responses.get()
                    if (
                        isinstance(item, racp.RacpResponse)
                        and item.request_opcode == racp.Opcode.ABORT_OPERATION
                    ):
                        return
        except TimeoutError:
            raise TransientDeviceError(f"{self._link.address}: RACP abort not answered") from None

    async def request(
        self, request: racp.RacpRequest, *, progress: Progress, idle_timeout_s: float
    ) -> racp.RacpResponse:
        """Write ``request`` and return its response, waiting while records keep arriving.

        The caller touches ``progress`` whenever a record arrives; the procedure fails as
        transient when neither a record nor the response came for ``idle_timeout_s``.
        """
        while not self._responses.empty():
            self._responses.get_nowait()  # a stale response from an aborted procedure
        progress.touch()
        data = racp.encode_request(request)
        for attempt in range(_BUSY_ATTEMPTS):
            try:
                await self._link.write(uuids.RECORD_ACCESS_CONTROL_POINT, data)
                break
            except GattProtocolError as exc:
                if exc.code not in _BUSY_CODES or attempt + 1 == _BUSY_ATTEMPTS:
                    raise
                # A procedure of an earlier connection (or a timed-out one) is still
                # running: abort it, give the device a moment, then ask again.
                if attempt == 0:
                    await self._abort(idle_timeout_s)
                await asyncio.sleep(0.05 * 2**attempt)
                progress.touch()
        poll_s = max(0.01, min(idle_timeout_s / 4, 0.5))
        while True:
            try:
                async with asyncio.timeout(poll_s):
                    item = await self._responses.get()
            except TimeoutError:
                if not self._link.is_connected:
                    raise TransientDeviceError(
                        f"{self._link.address}: link lost during RACP"
                    ) from None
                if progress.idle_s() >= idle_timeout_s:
                    raise TransientDeviceError(
                        f"{self._link.address}: RACP procedure stalled for {idle_timeout_s:.1f} s"
                    ) from None
                continue
            if isinstance(item, ParseError):
                raise DeviceError(f"{self._link.address}: undecodable RACP response: {item.reason}")
            if item.opcode == racp.Opcode.RESPONSE_CODE and item.request_opcode != request.opcode:
                continue  # the answer to some earlier request
            return item


class Progress:
    """When the last record of a procedure arrived (event-loop time)."""

    def __init__(self) -> None:
        self._last = asyncio.get_running_loop().time()

    def touch(self) -> None:
        self._last = asyncio.get_running_loop().time()

    def idle_s(self) -> float:
        return asyncio.get_running_loop().time() - self._last
