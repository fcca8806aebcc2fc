"""Run a bumble procedure while a connection lives, and tell a dropped link from a cancellation.

bumble ends pending GATT requests on a disconnection by *cancelling* their futures, so the caller
sees a bare :class:`asyncio.CancelledError` although nobody cancelled it. :func:`while_connected`
runs the procedure as a child task, watches the connection's ``disconnection`` event, and raises
:class:`LinkLost` instead, while a real cancellation of the caller still propagates unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from bumble.device import Connection

__all__ = ["LinkLost", "while_connected"]

_T = TypeVar("_T")


class LinkLost(Exception):
    """The connection went down while a procedure was running; ``reason`` is the HCI code."""

    def __init__(self, reason: int | None) -> None:
        self.reason = reason
        text = "unknown reason" if reason is None else f"HCI reason 0x{reason:02X}"
        super().__init__(f"connection lost ({text})")


async def while_connected(connection: Connection, coro: Coroutine[Any, Any, _T]) -> _T:
    """Await ``coro``; raise :class:`LinkLost` if ``connection`` disconnects first."""
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[int | None] = loop.create_future()

    def on_disconnection(reason: int | None = None, *_: Any) -> None:
        if not lost.done():
            lost.set_result(reason)

    connection.on(connection.EVENT_DISCONNECTION, on_disconnection)
    task = asyncio.ensure_future(coro)
    try:
        waiting: set[asyncio.Future[Any]] = {task, lost}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and not task.cancelled():
            return task.result()
        # Either the disconnection event came first, or bumble cancelled the pending request
        # from inside (a disconnection whose event we have not seen yet): a lost link.
        raise LinkLost(lost.result() if lost.done() else None)
    finally:
        connection.remove_listener(connection.EVENT_DISCONNECTION, on_disconnection)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        elif not task.cancelled():
            task.exception()  # mark retrieved: the error (if any) is reported as LinkLost
