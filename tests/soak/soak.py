"""Soak the gateway: N devices for D simulated days, sampling its RSS, open files and tasks.

The chain of the fault suite (:mod:`tests.faults.chain`) runs a household scenario scaled to
``devices`` devices (groups of four per patient: BP monitor, glucose meter, CGM, thermometer)
at ``speed`` x real time; the gateway process samples ``psutil`` RSS, open file descriptors
and ``asyncio.all_tasks()`` once a second (``gateway_proc run --stats-file``). The verdict:

* RSS flat: the largest RSS of the last quarter of the run is less than 10 % above the median
  RSS of the quarter after the warm-up (the first quarter);
* open files and tasks do not grow: the largest count of the last quarter is at most the
  largest count of the second quarter plus a small slack (sessions come and go);
* and the store holds the devices' ground truth (the fault suite's invariant).

``python -m bench.soak`` runs the full soak (20 devices, 7 days); the test suite runs a short
one (``tests/soak/test_soak.py``).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.faults.chain import STRANGER_SERIAL, Chain, InvariantReport, settle

_GROUP = (
    ("bp_monitor", "BP", "BP7310", 246810, ""),
    ("glucose_meter", "GM", "GlucoCheck 502", 135790, ""),
    ("cgm", "CGM", "Sense14", 112233, "options = { e2e_crc = true, interval_min = 5 }"),
    ("thermometer", "TH", "Therm 1", 424242, ""),
)
_PROFILES = ("hypertensive", "type2_diabetic_hypertensive", "type2_diabetic", "normotensive")


def soak_scenario(*, devices: int, speed: float, seed: int = 5) -> str:
    """A scenario of ``devices`` devices (a multiple of 4 rounds up) plus the stranger."""
    patients = max(1, -(-devices // len(_GROUP)))
    parts = [
        f'seed = {seed}\ntimezone = "Europe/Berlin"\nstart = "2026-11-20T05:00:00Z"\n'
        f"speed = {speed}\ndays = 60\n"
    ]
    for p in range(patients):
        parts.append(f'[[patients]]\nid = "p{p}"\nprofile = "{_PROFILES[p % len(_PROFILES)]}"\n')
    n = 0
    for p in range(patients):
        for kind, prefix, model, passkey, options in _GROUP:
            if n == devices:
                break
            n += 1
            parts.append(
                f'[[devices]]\nkind = "{kind}"\nserial = "{prefix}-SOAK-{p}"\nmodel = "{model}"\n'
                f'manufacturer = "Sim Health"\nfirmware = "1.0"\npasskey = {passkey + p}\n'
                f'patient = "p{p}"\n{options}\n'
            )
    parts.append(
        f'[[devices]]\nkind = "glucose_meter"\nserial = "{STRANGER_SERIAL}"\n'
        'model = "GlucoCheck 502"\nmanufacturer = "Sim Health"\nfirmware = "3.0.1"\n'
        'passkey = 999999\npatient = "p0"\n'
    )
    return "\n".join(parts)


def _patients_toml(devices: int) -> str:
    patients = max(1, -(-devices // len(_GROUP)))
    return "".join(
        f'\n[[patients]]\nid = "p{p}"\ntimezone = "Europe/Berlin"\n' for p in range(patients)
    )


@dataclass
class SoakResult:
    devices: int
    days: float
    speed: float
    samples: list[dict[str, Any]]
    invariant: InvariantReport
    problems: list[str] = field(default_factory=list)

    def quarter(self, i: int) -> list[dict[str, Any]]:
        n = len(self.samples)
        return self.samples[i * n // 4 : (i + 1) * n // 4]

    def summary(self) -> dict[str, float]:
        q1, q3 = self.quarter(1), self.quarter(3)
        base_rss = statistics.median(s["rss"] for s in q1)
        return {
            "samples": len(self.samples),
            "rss_base_mib": base_rss / 2**20,
            "rss_last_max_mib": max(s["rss"] for s in q3) / 2**20,
            "rss_growth_pct": 100 * (max(s["rss"] for s in q3) / base_rss - 1),
            "fds_q2_max": max(s["fds"] for s in self.quarter(2)),
            "fds_last_max": max(s["fds"] for s in q3),
            "tasks_q2_max": max(s["tasks"] for s in self.quarter(2)),
            "tasks_last_max": max(s["tasks"] for s in q3),
            "readings_checked": self.invariant.truth_checked,
        }


def verdict(result: SoakResult, *, fd_slack: int = 4, task_slack: int = 8) -> list[str]:
    s = result.summary()
    problems = []
    if s["samples"] < 12:
        problems.append(f"only {s['samples']} samples")
    if s["rss_growth_pct"] >= 10.0:
        problems.append(f"RSS grew {s['rss_growth_pct']:.1f} % after warm-up")
    if s["fds_last_max"] > s["fds_q2_max"] + fd_slack:
        problems.append(f"open files grew {s['fds_q2_max']} -> {s['fds_last_max']}")
    if s["tasks_last_max"] > s["tasks_q2_max"] + task_slack:
        problems.append(f"asyncio tasks grew {s['tasks_q2_max']} -> {s['tasks_last_max']}")
    problems += [f"invariant: {p}" for p in result.invariant.problems[:10]]
    return problems


def run_soak(root: Path, *, devices: int, days: float, speed: float) -> SoakResult:
    """Run the soak in ``root``; returns the samples and the final invariant check."""
    chain = Chain(
        root,
        speed=speed,
        scenario_text=soak_scenario(devices=devices, speed=speed),
        gateway_stats=True,
        # every CGM keeps its link (live stream) and the others need a free one to sync
        max_connections=min(devices, devices // len(_GROUP) + 3),
    )
    chain.config_path.write_text(
        chain.config_path.read_text().split("[[patients]]", 1)[0].rstrip()
        + "\n"
        + _patients_toml(devices)
        + "\n[broker]"
        + chain.config_path.read_text().split("[broker]", 1)[1]
    )
    try:
        chain.start()
        began = chain.sim_now()
        end_real = time.monotonic() + days * 86400 / speed
        while time.monotonic() < end_real:
            time.sleep(1.0)
            for proc in (chain.gateway, chain.ingest, chain.devices):
                if not proc.alive:
                    raise AssertionError(f"{proc.name} died during the soak:\n{chain.logs()}")
        invariant = settle(chain, timeout_s=60.0)
    finally:
        chain.close()
    samples = [json.loads(line) for line in chain.stats_path.read_text().splitlines() if line]
    result = SoakResult(devices, days, speed, samples, invariant)
    result.problems = verdict(result)
    _ = began, datetime.now(UTC)
    return result
