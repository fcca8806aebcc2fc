"""The device side of the Record Access Control Point (0x2A52), shared by the glucose meter and
the CGM (GLS 3.6 / GLP 4.9, CGMS 3.6).

Requests are parsed by :func:`vitalgate.drivers.racp.parse_request`, whose
:class:`~vitalgate.drivers.racp.RacpRequestError` carries the Response Code to indicate
(opcode not supported, invalid operator, invalid operand, operand not supported). Then:

* Report Stored Records: the selected records go out as notifications (``send``), then the
  Response Code "success" is indicated, or "no records found";
* Delete Stored Records: removes them, "success" / "no records found";
* Report Number of Stored Records: the Number of Stored Records Response;
* Abort Operation: stops a running report (no response for the interrupted report) and
  indicates "success" for the abort.

A write while a procedure runs gets the ATT error 0x80 (Procedure Already In Progress), a write
before the central enabled RACP indications 0x81 (CCCD Improperly Configured); CGMS uses
the common codes 0xFE / 0xFD instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from bumble.gatt import Characteristic

from vitalgate.drivers import racp
from vitalgate.firmware_sim.devices.common import (
    ATT_CCCD_IMPROPERLY_CONFIGURED,
    ATT_PROCEDURE_ALREADY_IN_PROGRESS,
    SimHealthDevice,
    TransferInterrupted,
)
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected, SimAttError

__all__ = ["RacpServer"]

_R = TypeVar("_R")


class RacpServer(Generic[_R]):
    """RACP procedures over a device's record store.

    Args:
        device: The device (for spawning, indications and subscription state).
        records: Returns the stored records, oldest first.
        sequence_key: The filter-type-1 key of a record (sequence number / CGM time offset).
        time_key: The user-facing time of a record (filter type 2), or ``None`` if the device
            does not support that filter (its requests get "operand not supported").
        send: Sends one record (notifications); returns False if the central is not subscribed.
        delete: Removes the given records from the store.
        busy_error / cccd_error: ATT errors for a write during a procedure / before indications
            were enabled (GLS: 0x80 / 0x81; CGMS uses the common codes 0xFE / 0xFD).
    """

    def __init__(
        self,
        device: SimHealthDevice,
        *,
        records: Callable[[], Sequence[_R]],
        sequence_key: Callable[[_R], int],
        time_key: Callable[[_R], datetime | None] | None,
        send: Callable[[_R], Awaitable[bool]],
        delete: Callable[[Sequence[_R]], None],
        busy_error: int = ATT_PROCEDURE_ALREADY_IN_PROGRESS,
        cccd_error: int = ATT_CCCD_IMPROPERLY_CONFIGURED,
    ) -> None:
        self._busy_error = busy_error
        self._cccd_error = cccd_error
        self.device = device
        self._records = records
        self._sequence_key = sequence_key
        self._time_key = time_key
        self._send = send
        self._delete = delete
        self.characteristic: Characteristic[bytes] | None = None
        self._procedure: asyncio.Task[None] | None = None
        self._abort = False

    @property
    def busy(self) -> bool:
        return self._procedure is not None and not self._procedure.done()

    def make_characteristic(self) -> Characteristic[bytes]:
        self.characteristic = self.device.make_characteristic(
            "2A52", write=self.on_write, indicate=True
        )
        return self.characteristic

    def run_exclusive(self, records: Sequence[_R]) -> asyncio.Task[None] | None:
        """Send live records (not a RACP procedure) unless a procedure is running.

        Returns the sending task (None when a procedure kept the records back): a device that
        awaits it before sleeping on a stepped clock sends its live values at the simulated
        instant it took them, as a real device does.
        """
        if self.busy:
            return None
        task = self.device.spawn(self._report(list(records), respond=False))
        self._procedure = task
        return task

    def on_write(self, data: bytes) -> None:
        assert self.characteristic is not None
        if not self.device.is_subscribed(self.characteristic):
            raise SimAttError(self._cccd_error, "RACP indications not enabled")
        try:
            request = racp.parse_request(data)
        except racp.RacpRequestError as exc:
            if self.busy:
                raise SimAttError(self._busy_error) from exc
            self._procedure = self.device.spawn(self._indicate(exc.response()))
            return
        if request.opcode is racp.Opcode.ABORT_OPERATION:
            self._abort = True
            self.device.spawn(self._abort_running(self._procedure))
            return
        if self.busy:
            raise SimAttError(self._busy_error, "a RACP procedure is running")
        self._abort = False
        self._procedure = self.device.spawn(self._run(request), name=f"{self.device.serial}-racp")

    async def _abort_running(self, running: asyncio.Task[None] | None) -> None:
        if running is not None and not running.done():
            await asyncio.wait({running}, timeout=5.0)
        await self._indicate(
            racp.RacpResponse.for_request(racp.Opcode.ABORT_OPERATION, racp.ResponseCode.SUCCESS)
        )

    async def _indicate(self, response: racp.RacpResponse) -> None:
        assert self.characteristic is not None
        try:
            await self.device.indicate(self.characteristic, racp.encode_response(response))
        except PeripheralNotConnected:
            pass

    def select(self, request: racp.RacpRequest) -> list[_R]:
        """The stored records a request addresses, oldest first."""
        records = list(self._records())
        op = request.operator
        if op is racp.Operator.ALL_RECORDS:
            return records
        if op is racp.Operator.FIRST_RECORD:
            return records[:1]
        if op is racp.Operator.LAST_RECORD:
            return records[-1:]
        keyed: list[tuple[int | datetime, _R]] = []
        for record in records:
            if request.filter_type is racp.FilterType.SEQUENCE_NUMBER:
                keyed.append((self._sequence_key(record), record))
            else:
                assert self._time_key is not None
                moment = self._time_key(record)
                if moment is not None:
                    keyed.append((moment, record))
        if op is racp.Operator.LESS_THAN_OR_EQUAL_TO:
            return [r for k, r in keyed if k <= request.values[0]]  # type: ignore[operator]
        if op is racp.Operator.GREATER_THAN_OR_EQUAL_TO:
            return [r for k, r in keyed if k >= request.values[0]]  # type: ignore[operator]
        low, high = request.values
        return [r for k, r in keyed if low <= k <= high]  # type: ignore[operator]

    async def _run(self, request: racp.RacpRequest) -> None:
        if request.filter_type is racp.FilterType.USER_FACING_TIME and self._time_key is None:
            await self._indicate(
                racp.RacpResponse.for_request(
                    request.opcode, racp.ResponseCode.OPERAND_NOT_SUPPORTED
                )
            )
            return
        selected = self.select(request)
        if request.opcode is racp.Opcode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self._indicate(racp.RacpResponse.count(len(selected)))
            return
        if not selected:
            await self._indicate(
                racp.RacpResponse.for_request(request.opcode, racp.ResponseCode.NO_RECORDS_FOUND)
            )
            return
        if request.opcode is racp.Opcode.DELETE_STORED_RECORDS:
            self._delete(selected)
            await self._indicate(
                racp.RacpResponse.for_request(request.opcode, racp.ResponseCode.SUCCESS)
            )
            return
        await self._report(selected, respond=True)

    async def _report(self, selected: list[_R], *, respond: bool) -> None:
        try:
            for record in selected:
                if self._abort:
                    return  # the Abort's own response ends the procedure
                if not await self._send(record):
                    break
                # Let incoming requests (an Abort) in between records, as a device's radio
                # schedule does; without it a whole report goes out in one loop iteration.
                await asyncio.sleep(0)
        except (TransferInterrupted, PeripheralNotConnected):
            return
        if respond and not self._abort:
            await self._indicate(
                racp.RacpResponse.for_request(
                    racp.Opcode.REPORT_STORED_RECORDS, racp.ResponseCode.SUCCESS
                )
            )
