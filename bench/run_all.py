"""Run every benchmark and collect its figures: ``make bench`` = ``python -m bench.run_all``.

A benchmark is a ``bench/<name>.py`` module that defines ``main()`` (or runs from an
``if __name__ == "__main__":`` block); helpers such as ``signal_common.py`` define neither and
are skipped. Each benchmark runs as ``python -m bench.<name>`` in its own process, one after the
other (they share the machine's cores and would disturb each other's figures), with its output
streamed to the terminal. A benchmark measures its own same-run baseline and maintains its own
``## ...`` section of bench/README.md; this runner then

* rewrites the index at the top of bench/README.md (the text between ``# Benchmarks`` and the
  first section: what each benchmark measures is in its section, the index says which command
  made which section, when, and whether it passed) and keeps every other section as it is;
* prints the sections of this run together (one page of figures), and with ``--json FILE``
  writes the per-benchmark outcome for scripts;
* exits 1 when any benchmark failed or timed out.

Options: ``--index-only`` (rewrite the index from the sections as they are, run nothing),
``--only NAME`` / ``--skip NAME`` (repeatable), ``--list``, ``--timeout-s S`` per benchmark
(default 1,800), ``--no-readme`` (passed on to every benchmark that has the option; the index
is then not rewritten either).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
TITLE = "# Benchmarks"
_EXCLUDED = frozenset({"__init__", "run_all"})


@dataclass
class Outcome:
    """One benchmark's run."""

    name: str
    command: str
    status: str = "not run"  # "ok" | "failed (exit N)" | "timed out" | "not run"
    seconds: float = 0.0
    sections: list[str] = field(default_factory=list)  # README headings it wrote

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def is_benchmark(path: Path) -> bool:
    """A module with a top-level ``main`` function or an ``if __name__ == "__main__"`` block."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main":
            return True
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return True
    return False


def discover(bench_dir: Path = BENCH_DIR) -> list[str]:
    """Names of the benchmark modules in ``bench_dir``, sorted."""
    return sorted(
        p.stem
        for p in bench_dir.glob("*.py")
        if p.stem not in _EXCLUDED and not p.stem.startswith("_") and is_benchmark(p)
    )


def split_readme(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(the text before the first ``## `` heading, [(heading line, section text), ...])."""
    starts = [m.start() for m in re.finditer(r"^## ", text, re.M)]
    if not starts:
        return text, []
    head = text[: starts[0]]
    sections = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        body = text[start:end]
        sections.append((body.splitlines()[0], body))
    return head, sections


def sections_of(text: str) -> dict[str, str]:
    return dict(split_readme(text)[1])


def owner_of(section: str, names: list[str]) -> str | None:
    """The benchmark whose ``python -m bench.<name>`` command a README section names."""
    for name in names:
        if re.search(rf"python -m bench\.{re.escape(name)}\b", section):
            return name
    return None


def _stream(proc: subprocess.Popen[str], name: str, sink: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line)
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


def accepts_no_readme(name: str, bench_dir: Path = BENCH_DIR) -> bool:
    """Whether a benchmark has a ``--no-readme`` option (not every one does)."""
    return "--no-readme" in (bench_dir / f"{name}.py").read_text(encoding="utf-8")


def run_one(name: str, *, timeout_s: float, no_readme: bool) -> Outcome:
    argv = [sys.executable, "-m", f"bench.{name}"]
    if no_readme and accepts_no_readme(name):
        argv.append("--no-readme")
    outcome = Outcome(name=name, command=f"python -m bench.{name}")
    before = sections_of(README.read_text(encoding="utf-8")) if README.exists() else {}
    print(f"=== {outcome.command}", flush=True)
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    lines: list[str] = []
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    reader = threading.Thread(target=_stream, args=(proc, name, lines), daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
        outcome.status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the benchmark and any server it started
        proc.wait()
        outcome.status = f"timed out after {timeout_s:.0f} s"
    reader.join(timeout=10)
    outcome.seconds = time.monotonic() - t0
    after = sections_of(README.read_text(encoding="utf-8")) if README.exists() else {}
    outcome.sections = [h for h, body in after.items() if before.get(h) != body]
    print(f"=== {outcome.command}: {outcome.status} in {outcome.seconds:.1f} s", flush=True)
    return outcome


def render_index(outcomes: list[Outcome], all_names: list[str], text: str) -> str:
    """The README intro: how to run the benchmarks and the index of the last full run."""
    _, sections = split_readme(text)
    by_name = {o.name: o for o in outcomes}
    rows = []
    for name in all_names:
        headings = [h[3:] for h, body in sections if owner_of(body, [name]) == name]
        outcome = by_name.get(name)
        status = "not run" if outcome is None else outcome.status
        seconds = "" if outcome is None or outcome.status == "not run" else f"{outcome.seconds:.0f}"
        where = ", ".join(headings) if headings else "(no section yet)"
        rows.append(f"| `python -m bench.{name}` | {where} | {status} | {seconds} |")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        TITLE,
        "",
        "Speed targets of vitalgate live here, never in timed unit tests. Every benchmark is a",
        "plain script, `python -m bench.<name>`, that measures its figures next to a baseline",
        "measured in the same run on the same machine (absolute numbers move with the machine;",
        "the ratio to the same-run baseline is what to compare) and replaces its own section",
        "below. `make bench` (`python -m bench.run_all`) runs them all, one after the other, and",
        "rewrites this index; `python -m bench.run_all --only NAME` runs one. Benchmarks that",
        "need servers start their own (tests/support/servers.py; `make servers` installs them).",
        "The figures below were measured on a shared 2-core x86_64 machine.",
        "",
        "| benchmark | section | last `make bench` | seconds |",
        "|---|---|---|---:|",
        *rows,
        "",
        f"Index written {now} by `python -m bench.run_all`, Python {platform.python_version()}.",
        "",
    ]
    return "\n".join(lines)


def rewrite_index(outcomes: list[Outcome], all_names: list[str]) -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else TITLE + "\n"
    _, sections = split_readme(text)
    previous = {o.name: o for o in _previous_outcomes(text)}
    merged = {**previous, **{o.name: o for o in outcomes}}
    ordered = [merged[n] for n in all_names if n in merged]
    head = render_index(ordered, all_names, text)
    README.write_text(
        head.rstrip("\n") + "\n\n" + "".join(body for _, body in sections).rstrip("\n") + "\n",
        encoding="utf-8",
    )


def _previous_outcomes(text: str) -> list[Outcome]:
    """The statuses in the current index, so a partial run (``--only``) keeps the others."""
    head, _ = split_readme(text)
    out = []
    for m in re.finditer(
        r"^\| `python -m bench\.(\w+)` \| [^|]* \| ([^|]*) \| ([^|]*) \|$", head, re.M
    ):
        name, status, seconds = m.group(1), m.group(2).strip(), m.group(3).strip()
        out.append(
            Outcome(
                name=name,
                command=f"python -m bench.{name}",
                status=status,
                seconds=float(seconds) if seconds else 0.0,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--index-only", action="store_true", help="rewrite the README index, run nothing"
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per benchmark")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    parser.add_argument("--json", default=None, metavar="FILE", help="write outcomes as JSON")
    args = parser.parse_args(argv)

    names = discover()
    unknown = sorted(set(args.only + args.skip) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; there are {names}")
    if args.list:
        print("\n".join(names))
        return 0
    if args.index_only:
        rewrite_index([], names)
        return 0
    chosen = [n for n in names if (not args.only or n in args.only) and n not in args.skip]
    outcomes = [run_one(n, timeout_s=args.timeout_s, no_readme=args.no_readme) for n in chosen]
    if not args.no_readme:
        rewrite_index(outcomes, names)

    print("\n" + "=" * 72 + "\nFigures of this run\n" + "=" * 72)
    current = sections_of(README.read_text(encoding="utf-8")) if README.exists() else {}
    for o in outcomes:
        for heading in o.sections:
            print("\n" + current.get(heading, "").rstrip())
        if not o.sections:
            print(f"\n{o.command}: no README section changed (its output is above)")
    print("\n| benchmark | status | seconds |\n|---|---|---:|")
    for o in outcomes:
        print(f"| {o.command} | {o.status} | {o.seconds:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
