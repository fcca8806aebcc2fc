"""Replay the whole seed corpus through the fuzz harness functions (part of ``make test``).

Every file under ``tests/fuzz/corpus/<harness>/`` goes through the same function the atheris
harness calls, so an input that once crashed a codec or the validator stays a regression test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.codecs import HARNESSES, run_codec_harness
from tests.fuzz.payloads import run_schema_harness

CORPUS = Path(__file__).resolve().parent / "corpus"
HARNESS_NAMES = (*HARNESSES, "schema")


def _run(harness: str, data: bytes) -> None:
    if harness == "schema":
        run_schema_harness(data)
    else:
        run_codec_harness(harness, data)


@pytest.mark.parametrize("harness", HARNESS_NAMES)
def test_corpus_exists(harness: str) -> None:
    files = list((CORPUS / harness).glob("*.bin"))
    assert len(files) >= 3, f"the {harness} harness needs a seed corpus"
    assert any(f.name.startswith("spec-") or f.name.startswith("valid-") for f in files)


@pytest.mark.parametrize("harness", HARNESS_NAMES)
def test_corpus_replays_cleanly(harness: str) -> None:
    failures = []
    for path in sorted((CORPUS / harness).glob("*.bin")):
        try:
            _run(harness, path.read_bytes())
        except Exception as exc:  # collect all, report each with its file
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_schema_corpus_has_accepted_and_rejected_payloads() -> None:
    """The schema seeds reach both sides of the validator (a corpus of only junk tests little)."""
    from tests.fuzz.payloads import TOPIC_CASES
    from vitalgate.cloud_sync import schema
    from vitalgate.errors import SchemaError

    accepted = rejected = 0
    for path in sorted((CORPUS / "schema").glob("*.bin")):
        data = path.read_bytes()
        if not data or data[0] & 1:
            continue
        topic, client = TOPIC_CASES[(data[0] >> 1) % len(TOPIC_CASES)]
        try:
            schema.decode_batch(topic, data[1:], client_gateway_id=client)
        except SchemaError:
            rejected += 1
        else:
            accepted += 1
    assert accepted >= 7 and rejected >= 50
