"""The CGM session's back-fill ranges and live-stream contiguity (pure helpers)."""

from __future__ import annotations

import pytest

from vitalgate.gateway.sessions.cgm import _chunks, _contiguous


@pytest.mark.parametrize(
    ("low", "high", "span", "expected"),
    [
        (0, 9, 5, [(0, 4), (5, 9)]),
        (0, 10, 5, [(0, 4), (5, 9), (10, 10)]),
        (7, 7, 1024, [(7, 7)]),
        (8, 7, 1024, []),  # nothing exists yet above the sync point
        (11511, 14000, 1024, [(11511, 12534), (12535, 13558), (13559, 14000)]),
    ],
    ids=["even", "remainder", "one", "empty", "eight-days-in"],
)
def test_chunks_cover_the_range_once_in_order(
    low: int, high: int, span: int, expected: list[tuple[int, int]]
) -> None:
    assert _chunks(low, high, span) == expected
    covered = [o for a, b in expected for o in range(a, b + 1)]
    assert covered == list(range(low, high + 1))


def test_contiguous_stops_at_a_gap_wider_than_the_interval() -> None:
    assert _contiguous(10, {15, 20, 30, 35}, 5) == 20
    assert _contiguous(None, {15, 20, 30}, 5) == 20
    assert _contiguous(None, set(), 5) is None
