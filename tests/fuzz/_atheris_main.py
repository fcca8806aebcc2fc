"""The shared atheris entry point of every harness (``tests/fuzz/fuzz_<harness>.py``).

Run one harness with libFuzzer flags and corpus directories, for example::

    .venv/bin/python -m tests.fuzz.fuzz_glucose -runs=100000 /tmp/new tests/fuzz/corpus/glucose

(the first directory receives new interesting inputs; keep the repository corpus read-only by
putting it second). ``python -m tests.fuzz.run_all`` runs every harness this way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]


def fuzz(harness: str) -> None:
    """Instrument vitalgate, then fuzz ``harness`` (a codec module name or ``schema``)."""
    with atheris.instrument_imports(include=["vitalgate"]):
        if harness == "schema":
            from tests.fuzz.payloads import run_schema_harness

            target: Callable[[bytes], None] = run_schema_harness
        else:
            from tests.fuzz.codecs import HARNESSES, run_codec_harness

            if harness not in HARNESSES:
                raise SystemExit(f"unknown harness {harness!r}")

            def target(data: bytes) -> None:
                run_codec_harness(harness, data)

    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
