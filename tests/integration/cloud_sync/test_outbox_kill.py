"""kill -9 of a process in the middle of an add loop: every add that returned is on disk, and
no add is half-written (each call's readings are all there or none of them)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.cloud_sync.test_schema import sample_readings
from vitalgate.cloud_sync.outbox import Outbox

CHUNK = 25

CHILD = f"""
import sys
from pathlib import Path
from tests.unit.cloud_sync.test_schema import sample_readings
from vitalgate.cloud_sync.outbox import Outbox

ob = Outbox(Path(sys.argv[1]))
i = 0
while True:
    ob.add(sample_readings({CHUNK}, start=i * {CHUNK}))
    print(i, flush=True)  # only after add returned
    i += 1
"""


@pytest.mark.parametrize("kill_after_adds", [5, 40])
def test_kill_9_mid_add_loop_loses_no_returned_add(tmp_path: Path, kill_after_adds: int) -> None:
    db = tmp_path / "outbox.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.stdout is not None
    confirmed = -1
    deadline = time.monotonic() + 60
    try:
        while confirmed < kill_after_adds and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "child exited early"
            confirmed = int(line)
        # Kill it while it is busy with the next adds (no clean shutdown of any kind).
        time.sleep(0.013)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # Lines the child managed to write before dying also count as returned adds.
        for line in proc.stdout.read().split():
            confirmed = int(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = {row[0] for row in conn.execute("SELECT reading_id FROM outbox")}
    n_calls = confirmed + 2  # at most one more add may have committed without printing
    for call in range(n_calls + 1):
        chunk = {r.reading_id for r in sample_readings(CHUNK, start=call * CHUNK)}
        present = len(chunk & ids)
        if call <= confirmed:
            assert present == CHUNK, f"add #{call} returned but {CHUNK - present} readings are lost"
        else:
            assert present in (0, CHUNK), f"add #{call} is half-written ({present}/{CHUNK})"
    assert len(ids) % CHUNK == 0
    # The outbox reopens and replays everything.
    with Outbox(db) as ob:
        assert ob.pending_count() == len(ids)
