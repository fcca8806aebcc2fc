"""The short soak of ``make test``: 8 devices, one simulated day at 2400x (36 s).

RSS flat after warm-up (< 10 % growth), no growth in open files or asyncio tasks, and the store
equal to the ground truth. The full soak (20 devices, 7 simulated days) is ``python -m
bench.soak`` (see tests/soak/soak.py).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.soak.soak import run_soak

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(600)]


def test_short_soak_resources_stay_flat() -> None:
    root = Path(tempfile.mkdtemp(prefix="vg-soak-"))
    root.chmod(0o755)
    result = run_soak(root, devices=8, days=1.0, speed=2400.0)
    summary = result.summary()
    assert not result.problems, f"{result.problems}\n{summary}\nkept in {root}"
    assert summary["readings_checked"] > 100, summary
    shutil.rmtree(root, ignore_errors=True)
