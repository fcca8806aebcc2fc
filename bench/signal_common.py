"""Shared helpers of the signal benchmarks: best-of timing and the bench/README.md section."""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).with_name("README.md")


def best_of(fn: Callable[[], object], *, repeat: int, number: int = 1) -> float:
    """Fastest mean seconds per call over ``repeat`` rounds of ``number`` calls (the machine is
    shared: the least disturbed round is the one that measures the code)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def footer() -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Measured {now}, Python {platform.python_version()}, {platform.machine()}."


def write_section(heading: str, body: str) -> None:
    """Replace the ``## heading`` section of bench/README.md (up to the next ``## ``) or append
    it, leaving the other sections intact."""
    section = f"## {heading}\n\n{body.rstrip()}\n"
    marker = f"## {heading}\n"
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n"
    if marker in text:
        head, _, rest = text.partition(marker)
        next_heading = rest.find("\n## ")
        tail = rest[next_heading + 1 :] if next_heading >= 0 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text, encoding="utf-8")
