"""The sessions' bounded inbox: a flood of raw stream data never crowds out a measurement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from vitalgate.gateway.sessions.base import Inbox

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW


async def test_bulk_data_has_its_own_bound_and_order_is_kept() -> None:
    inbox = Inbox(_Clock(), 2, bulk_maxsize=3)  # type: ignore[arg-type]
    for i in range(10):
        inbox.push_bulk(b"p%d" % i)  # PPG packets: only three fit
    inbox.push(b"hr1")  # measurements still fit
    inbox.push(b"hr2")
    inbox.push(b"hr3")  # this one does not: the measurement bound is full
    assert (inbox.bulk_dropped, inbox.dropped, inbox.received) == (7, 1, 13)
    got = []
    while (item := inbox.get_nowait()) is not None:
        got.append(item[1])
    assert got == [b"p0", b"p1", b"p2", b"hr1", b"hr2"]
    # Taking items frees their room again, each under its own bound.
    inbox.push(b"hr4")
    inbox.push_bulk(b"p10")
    assert await inbox.get(0.1) == (NOW, b"hr4")
    assert await inbox.get(0.1, closed=lambda: False) == (NOW, b"p10")
    assert await inbox.get(0.01) is None
    assert inbox.empty()
    await asyncio.sleep(0)
