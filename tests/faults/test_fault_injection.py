"""Whole-chain fault injection: seeded kills, restarts and partitions; nothing lost or doubled.

One chain (devices, gateway, broker, ingest, SQLite store; see :mod:`tests.faults.chain`) runs
for the whole module at 600x simulated time. Each seeded run draws 2-3 faults from
{gateway kill -9, ingest kill -9, broker restart, gateway-broker partition} at
random points of a 4 s window, heals them, and then waits until the invariant holds for every
record the devices made up to the end of the run: stored exactly once by reading_id, nothing
stored that no device measured, nothing from the unregistered device, nothing stuck in the
outbox. ``make test`` runs 20 runs in a row; ``make faults`` runs ``VITALGATE_FAULT_RUNS``
(default there: 100).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.faults.chain import (
    FAULT_KINDS,
    Chain,
    check_invariant,
    fault_schedule,
    read_outbox,
    read_store,
    read_truth,
    running_chain,
    settle,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(1800)]

RUNS = int(os.environ.get("VITALGATE_FAULT_RUNS", "20"))
KINDS = tuple(
    k for k in os.environ.get("VITALGATE_FAULT_KINDS", ",".join(FAULT_KINDS)).split(",") if k
)
SETTLE_TIMEOUT_S = 45.0


@pytest.fixture(scope="module")
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    with running_chain(request, seed=int(os.environ.get("VITALGATE_FAULT_SEED", "1"))) as c:
        yield c


def _ensure_running(chain: Chain) -> None:
    for proc in (chain.gateway, chain.ingest, chain.devices):
        assert proc.alive, f"{proc.name} died on its own:\n{chain.logs()}"


def test_seeded_faults_lose_and_duplicate_nothing(chain: Chain) -> None:
    first = settle(chain, SETTLE_TIMEOUT_S)
    assert first.ok, f"before any fault: {first.problems[:20]}\n{chain.logs()}"
    history = []
    for run in range(RUNS):
        faults = fault_schedule(1000 + run, kinds_from=KINDS)
        chain.run_schedule(faults)
        report = settle(chain, SETTLE_TIMEOUT_S)
        history.append((run, faults, report.truth_checked, report.stored))
        assert report.ok, (
            f"run {run} (faults {faults}) broke the invariant at {report.cutoff}:\n"
            + "\n".join(report.problems[:30])
            + f"\n{chain.logs()}"
        )
        _ensure_running(chain)
    kinds = {f.kind for _, faults, _, _ in history for f in faults}
    assert {"gateway_kill", "partition"} <= kinds or RUNS < 5, kinds
    assert history[-1][2] > first.truth_checked, "no new readings flowed during the runs"


def test_outbox_drains_when_the_devices_stop(chain: Chain) -> None:
    """After the last run: devices off (final truth written), everything else keeps going;
    the outbox empties and the store equals the truth up to the moment the devices stopped."""
    cutoff = chain.sim_now()
    chain.devices.signal(signal.SIGTERM)
    assert chain.devices.proc is not None
    chain.devices.proc.wait(30)
    outbox = chain.state_dir / "outbox.sqlite3"
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while read_outbox(outbox) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_outbox(outbox) == [], "readings stuck in the outbox"
    # readings still in a device's memory when it stopped were never the chain's to lose
    report = check_invariant(
        read_truth(chain.truth_path),
        read_store(chain.store_path),
        [],
        cutoff=cutoff - timedelta(seconds=5 * chain.speed),  # 5 real s for the last syncs
    )
    assert report.ok, "\n".join(report.problems[:30])
