"""(Re)build the seed corpus under ``tests/fuzz/corpus/<harness>/``.

Run ``.venv/bin/python -m tests.fuzz.make_corpus``. Seeds written here are deterministic:

* codec harnesses: every hex literal of the driver's unit tests (the GSS / spec byte vectors,
  valid and invalid ones) is written once per codec target that accepts it (the selector byte
  first, see :mod:`tests.fuzz.codecs`), or for the first target when no target accepts it, plus
  encoder outputs for the modules whose tests keep their vectors elsewhere;
* the schema harness: a valid payload of every kind on its topic, payloads that break one rule
  each (wrong gateway, wrong kind, NaN, a wrong client, truncated JSON, ...), and mutation
  programs over the templates.

Existing files are kept: the corpus also holds the inputs libFuzzer found to reach new code,
merged in with ``python -m tests.fuzz.run_all --merge``.
"""

from __future__ import annotations

import ast
import hashlib
import re
from datetime import datetime
from pathlib import Path

from tests.fuzz.codecs import HARNESSES
from tests.fuzz.payloads import GATEWAY, KINDS, OTHER_GATEWAY, TOPIC_CASES, template_payload
from vitalgate.cloud_sync.schema import topic_readings
from vitalgate.drivers import battery, device_information, ieee11073, ppg_stream
from vitalgate.errors import ParseError
from vitalgate.readings import ReadingKind

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
UNIT_TESTS = ROOT.parent / "unit" / "drivers"
_HEX = re.compile(r"(?:[0-9a-fA-F]{2} ?)+")


def _write(harness: str, data: bytes, prefix: str = "spec") -> None:
    directory = CORPUS / harness
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}-{hashlib.sha1(data).hexdigest()[:16]}.bin"
    if not path.exists():
        path.write_bytes(data)


def _hex_literals(test_file: Path) -> list[bytes]:
    out: list[bytes] = []
    for node in ast.walk(ast.parse(test_file.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            if len(text) >= 2 and _HEX.fullmatch(text) and len(text.replace(" ", "")) % 2 == 0:
                out.append(bytes.fromhex(text))
    return out


def _codec_seeds(harness: str, vectors: list[bytes]) -> None:
    targets = HARNESSES[harness]
    for vector in vectors:
        accepted = False
        for index, target in enumerate(targets):
            try:
                target.parse(vector)
            except ParseError:
                continue
            accepted = True
            _write(harness, bytes((index,)) + vector)
        if not accepted:
            _write(harness, b"\x00" + vector)


def _extra_vectors() -> dict[str, list[bytes]]:
    dis = device_information
    return {
        "battery": [battery.encode_battery_level(p) for p in (0, 1, 50, 100)] + [b"\x65", b""],
        "device_information": [
            dis.encode_string("Acme Medical"),
            b"Acme\x00\x00",
            b"\xff\xfe",
            bytes.fromhex("05040302010c0b0a"),
            bytes.fromhex("010d0001001001"),
            # a mapping program: [uuid index][length][value]...
            bytes((0, 4)) + b"Acme" + bytes((6, 8)) + bytes.fromhex("05040302010c0b0a"),
        ],
        "ieee11073": [
            ieee11073.encode_date_time(datetime(2026, 11, 25, 7, 30)),
            bytes(7),
            bytes.fromhex("ea070d19071e00"),
            *(
                ieee11073.encode_sfloat(v, e).to_bytes(2, "little")
                for v, e in ((114.0, 0), (36.6, -1), (-3.5, -1), (float("nan"), 0))
            ),
            *(raw.to_bytes(2, "little") for raw in (0x07FE, 0x0800, 0x0801, 0x0802)),
            *(
                ieee11073.encode_float(v, e).to_bytes(4, "little")
                for v, e in ((36.6, -1), (98.6, -1), (float("inf"), 0))
            ),
        ],
        "ppg_stream": [
            ppg_stream.encode_config(ppg_stream.PpgStreamConfig(rate))
            for rate in (ppg_stream.MIN_SAMPLING_RATE_HZ, ppg_stream.DEFAULT_SAMPLING_RATE_HZ)
        ],
    }


def _schema_seeds() -> None:
    topic_index = {case: i for i, case in enumerate(TOPIC_CASES)}
    for kind in KINDS:
        raw = topic_index[(topic_readings(GATEWAY, kind), None)] << 1
        authed = topic_index[(topic_readings(GATEWAY, kind), GATEWAY)] << 1
        payload = template_payload(kind)
        _write("schema", bytes((raw,)) + payload, "valid")
        _write("schema", bytes((authed,)) + template_payload(kind, count=5), "valid")
        # one rule broken per seed
        broken = [
            payload.replace(GATEWAY.encode(), OTHER_GATEWAY.encode(), 1),
            payload[: len(payload) // 2],
            payload.replace(b'"readings":[', b'"readings":[1,', 1),
            payload.replace(b"vitalgate.readings/1", b"vitalgate.readings/2"),
            payload.replace(b'"values":{"', b'"values":{"bogus_mg":NaN,"', 1),
            payload.replace(b'"values":{"', b'"values":{"', 1).replace(b".0,", b"e400,", 1),
            payload.replace(b'Z"', b'+00:00"', 1),
            b"[]",
            b"",
            b"\xff\xfe{}",
        ]
        for data in broken:
            _write("schema", bytes((raw,)) + data, "invalid")
        # mutation programs (odd selector): a few edits each
        for program in (b"\x00\x05\x00\x03", b"\x02\x03\x00\x01", b"\x04\x02\x00\x01\x05\x09\x00"):
            _write("schema", bytes((raw | 1,)) + program, "mutate")
    # regression: boundary timestamps the validator accepted although no store can hold them
    # (SqliteStore.write: OverflowError, which then ended the ingest worker)
    bp_raw = topic_index[(topic_readings(GATEWAY, ReadingKind.BLOOD_PRESSURE), None)] << 1
    bp = template_payload(ReadingKind.BLOOD_PRESSURE, count=1)
    for year in (b"9999-12-31T23:59:59", b"0001-01-01T00:00:00"):
        data = bp.replace(b'"measured_at":"2026-11-24T07:30:00', b'"measured_at":"' + year, 1)
        assert data != bp
        _write("schema", bytes((bp_raw,)) + data, "regression-measured-at")
    other = topic_index[(topic_readings(OTHER_GATEWAY, ReadingKind.BLOOD_PRESSURE), None)] << 1
    _write("schema", bytes((other,)) + template_payload(ReadingKind.BLOOD_PRESSURE), "invalid")


def main() -> None:
    extra = _extra_vectors()
    for harness in HARNESSES:
        vectors = list(extra.get(harness, []))
        test_file = UNIT_TESTS / f"test_{harness}.py"
        if test_file.exists():
            vectors += _hex_literals(test_file)
        _codec_seeds(harness, vectors)
    _schema_seeds()
    for directory in sorted(CORPUS.iterdir()):
        print(f"{directory.name}: {len(list(directory.iterdir()))} seeds")


if __name__ == "__main__":
    main()
