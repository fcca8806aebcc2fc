"""``vitalgate run --sim-info`` with the gateway's own resource samples, for the soak.

Usage::

    python -m tests.faults.gateway_proc run --config C --info I --stats-file S

Runs exactly what ``vitalgate run --config C --sim-info I`` runs (the same code path:
:func:`vitalgate.gateway.cli._run`) and, beside it in the same event loop, appends once a second
a JSON line with the process's RSS, open file descriptors and ``asyncio`` tasks to ``S`` -- the
task count can only be read from inside the process. Logging goes to stderr at INFO, as a
deployment logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

from vitalgate.gateway.cli import _run
from vitalgate.gateway.config import load_config


async def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    run_args = argparse.Namespace(sim_info=Path(args.info), sim_radio=None)
    sampler = asyncio.create_task(_sample_stats(Path(args.stats_file)))
    try:
        return await _run(run_args, config, publish=True)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


async def _sample_stats(path: Path) -> None:
    """Every second: RSS, open files and asyncio tasks of this process, as JSON lines."""
    import psutil  # type: ignore[import-untyped]

    me = psutil.Process()
    with path.open("a", encoding="utf-8") as out:
        while True:
            sample = {
                "t": time.time(),
                "rss": me.memory_info().rss,
                "fds": me.num_fds(),
                "tasks": len(asyncio.all_tasks()),
            }
            out.write(json.dumps(sample) + "\n")
            out.flush()
            await asyncio.sleep(1.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["run"])
    p.add_argument("--config", required=True)
    p.add_argument("--info", required=True)
    p.add_argument("--stats-file", required=True)
    return p


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    sys.exit(asyncio.run(main(_parser().parse_args())))
