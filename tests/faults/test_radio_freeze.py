"""The radio freezes (every BLE link stalls at once, as under 2.4 GHz interference) while the
other faults of the suite strike too.

The devices' process is stopped with SIGSTOP for 0.3-1.5 s and continued, at seeded points, in
every run, together with up to two of {gateway kill -9, ingest kill -9, broker restart,
gateway-broker partition}; afterwards the store must still equal the devices' ground truth.
Its own chain, so a failure here does not spoil the runs of test_fault_injection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.faults.chain import FAULT_KINDS, Chain, Fault, fault_schedule, running_chain, settle

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(900)]

RUNS = int(os.environ.get("VITALGATE_RADIO_FREEZE_RUNS", "5"))


@pytest.fixture(scope="module")
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    with running_chain(request, seed=2, prefix="vg-radio-") as c:
        yield c


def schedule(run: int) -> list[Fault]:
    faults = fault_schedule(2000 + run, kinds_from=(*FAULT_KINDS, "radio_freeze"))
    if not any(f.kind == "radio_freeze" for f in faults):
        freeze = fault_schedule(3000 + run, kinds_from=("radio_freeze",))[0]
        faults = sorted([*faults[:2], freeze], key=lambda f: f.at_s)
    return faults


def test_radio_freezes_lose_nothing(chain: Chain) -> None:
    first = settle(chain)
    assert first.ok, first.problems[:20]
    for run in range(RUNS):
        faults = schedule(run)
        chain.run_schedule(faults)
        report = settle(chain)
        assert report.ok, (
            f"run {run} (faults {faults}) broke the invariant at {report.cutoff}:\n"
            + "\n".join(report.problems[:30])
            + f"\n{chain.logs()}"
        )
