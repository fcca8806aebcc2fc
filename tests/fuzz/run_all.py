"""``make fuzz``: run every atheris harness for at least 100k inputs; fail on any crash.

Usage::

    .venv/bin/python -m tests.fuzz.run_all [--runs N] [--only NAME ...] [--merge]

Each harness runs in its own process (``tests/fuzz/fuzz_<name>.py``) over a scratch corpus seeded
from ``tests/fuzz/corpus/<name>/`` (the repository corpus is only read). A crash leaves its input
as ``<artifacts>/<name>-crash-*``; replay it with
``.venv/bin/python -m tests.fuzz.fuzz_<name> <file>`` and add it to the corpus with a regression
test. ``--merge`` folds the inputs that reached new code back into the repository corpus
(libFuzzer ``-merge=1``), which the corpus replay in ``make test`` then covers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.codecs import HARNESSES

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
REPO = ROOT.parent.parent
NAMES: tuple[str, ...] = (*HARNESSES, "schema")
MIN_RUNS = 100_000


def run_harness(name: str, runs: int, scratch: Path, artifacts: Path) -> tuple[bool, str]:
    """Fuzz one harness; ``(passed, summary)``."""
    new = scratch / name
    new.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        f"tests.fuzz.fuzz_{name}",
        f"-runs={runs}",
        "-max_len=4096",
        "-timeout=20",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{name}-",
        str(new),
        str(CORPUS / name),
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    log = proc.stdout + proc.stderr
    done = [line for line in log.splitlines() if line.startswith("Done ")]
    summary = f"{name:20s} {elapsed:6.1f}s {done[-1] if done else '(no Done line)'}"
    if proc.returncode != 0:
        tail = "\n".join(log.splitlines()[-40:])
        return False, f"{summary}\n  CRASH (exit {proc.returncode}):\n{tail}"
    return True, summary


def merge(name: str, scratch: Path) -> int:
    """Copy the inputs this run found to reach new code into the repository corpus.

    libFuzzer keeps only coverage-increasing inputs in the scratch corpus, so this is a small
    set; (libFuzzer's own ``-merge=1`` re-executes ``argv[0]``, which a ``python -m`` harness
    cannot be). Returns the number of files added.
    """
    added = 0
    existing = {hashlib.sha1(p.read_bytes()).hexdigest() for p in (CORPUS / name).iterdir()}
    for path in sorted((scratch / name).iterdir()):
        data = path.read_bytes()
        digest = hashlib.sha1(data).hexdigest()
        if digest in existing or len(data) > 4096:
            continue
        (CORPUS / name / f"found-{digest[:16]}.bin").write_bytes(data)
        existing.add(digest)
        added += 1
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=int(os.environ.get("VITALGATE_FUZZ_RUNS", MIN_RUNS))
    )
    parser.add_argument("--only", nargs="*", choices=NAMES, default=list(NAMES))
    parser.add_argument("--merge", action="store_true", help="grow the repository corpus")
    parser.add_argument("--artifacts", type=Path, default=REPO / "build" / "fuzz-artifacts")
    args = parser.parse_args(argv)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vitalgate-fuzz-") as tmp:
        scratch = Path(tmp)
        for name in args.only:
            ok, summary = run_harness(name, args.runs, scratch, args.artifacts)
            print(summary, flush=True)
            if not ok:
                failed.append(name)
            elif args.merge:
                print(f"  merged {merge(name, scratch)} new inputs into {CORPUS / name}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (inputs under {args.artifacts})")
        return 1
    print(f"all {len(args.only)} harnesses passed {args.runs} inputs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
