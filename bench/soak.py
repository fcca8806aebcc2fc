"""Soak: the gateway with 20 simulated devices over 7 simulated days (``python -m bench.soak``).

Runs the whole chain (devices in their own process, the gateway daemon, Mosquitto, the ingest,
a SQLite store) through :func:`tests.soak.soak.run_soak` and reports the gateway's RSS, open
files and asyncio tasks; the baseline is the same run's post-warm-up quarter. Pass criteria:
RSS growth < 10 % after warm-up, no growth in open files or tasks, the store equal to the
devices' ground truth. Options: ``--devices``, ``--days``, ``--speed`` (simulated seconds per
real second; the default runs 7 days in 5 minutes).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.signal_common import footer, write_section
from tests.soak.soak import run_soak


def problem_counts(problems: list[str]) -> str:
    """``"27 (lost glucose 27)"``: the invariant's problems counted by what and reading kind.

    The verdict lists only the first ten; the counts tell a loss of one kind from a general one.
    """
    counts: collections.Counter[str] = collections.Counter()
    for problem in problems:
        what, _, rest = problem.partition(": ")
        words = rest.split()
        if what in ("lost", "duplicated") and len(words) > 1:
            what = f"{what} {words[1]}"  # "lost: GM-SOAK-1 glucose at ..." -> "lost glucose"
        counts[what] += 1
    if not counts:
        return "0"
    return f"{len(problems)} (" + ", ".join(f"{k} {n}" for k, n in counts.most_common()) + ")"


_SYNCED = re.compile(r" ([0-9A-F:]{17}): synced \(")


def syncs_by_kind(root: Path) -> str:
    """``"glucose_meter 255, ..."``: the most syncs one device of each kind had (gateway log).

    A simulated peripheral must survive any number of connections (the soak once lost every
    glucose record after a meter's 240th connection used up its advertising handles).
    """
    info = json.loads((root / "devices.json").read_text())
    kind_of = {d["address"]: d["kind"] for d in info["devices"]}
    per_device = collections.Counter(
        m.group(1) for m in _SYNCED.finditer((root / "gateway.log").read_text(errors="replace"))
    )
    most: dict[str, int] = {}
    for address, n in per_device.items():
        kind = kind_of.get(address, "?")
        most[kind] = max(most.get(kind, 0), n)
    return ", ".join(f"{k} {n}" for k, n in sorted(most.items())) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--speed", type=float, default=2016.0)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="vg-bench-soak-"))
    root.chmod(0o755)
    t0 = time.monotonic()
    result = run_soak(root, devices=args.devices, days=args.days, speed=args.speed)
    elapsed = time.monotonic() - t0
    s = result.summary()
    syncs = syncs_by_kind(root)
    verdict = "pass" if not result.problems else "FAIL: " + "; ".join(result.problems)
    body = (
        f"`python -m bench.soak`: the gateway process with {args.devices} simulated devices "
        f"for {args.days:g} simulated days at {args.speed:g}x ({elapsed:.0f} s real), sampled "
        "once a second. Baseline: the same run's second quarter (after warm-up).\n\n"
        "| figure | after warm-up (baseline) | last quarter (max) | change |\n"
        "|---|---:|---:|---:|\n"
        f"| RSS (MiB) | {s['rss_base_mib']:.1f} | {s['rss_last_max_mib']:.1f} | "
        f"{s['rss_growth_pct']:+.1f} % |\n"
        f"| open files | {s['fds_q2_max']} | {s['fds_last_max']} | "
        f"{s['fds_last_max'] - s['fds_q2_max']:+d} |\n"
        f"| asyncio tasks | {s['tasks_q2_max']} | {s['tasks_last_max']} | "
        f"{s['tasks_last_max'] - s['tasks_q2_max']:+d} |\n\n"
        f"Readings checked against the ground truth: {s['readings_checked']}; "
        f"invariant problems: {problem_counts(result.invariant.problems)}. "
        f"Most syncs of one device, by kind: {syncs}. "
        f"Verdict: {verdict}.\n\n{footer()}\n"
    )
    print(body)
    write_section("soak: gateway resources over simulated days", body)
    if not result.problems:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept {root}")
    return 0 if not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
