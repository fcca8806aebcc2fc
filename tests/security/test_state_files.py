"""Files holding health data are created 0600 whatever the umask: outbox, registry, stores,
bond store (and their SQLite -wal/-shm companions), the gateway state directory 0700.

Each test runs under ``umask 000``: a file that is private only because the umask was kind
would show up as world-readable here, so the check fails when a control (the explicit mode)
is removed.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.payloads import sample_readings
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.firmware_sim.world import _PrivateJsonKeyStore
from vitalgate.gateway.registry import DeviceRegistry


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(directory: Path, stem: str) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.name.startswith(stem))
    assert files, f"nothing named {stem}* in {directory}"
    for p in files:
        assert mode(p) == 0o600, f"{p.name} has mode {mode(p):o}"
    return files


def test_outbox_and_its_wal_are_private(tmp_path: Path) -> None:
    from vitalgate.readings import ReadingKind

    outbox = Outbox(tmp_path / "outbox.sqlite3")
    try:
        outbox.add(sample_readings(ReadingKind.GLUCOSE))
        files = assert_private(tmp_path, "outbox.sqlite3")
        assert any(p.name.endswith("-wal") for p in files), [p.name for p in files]
    finally:
        outbox.close()


def test_registry_is_private(tmp_path: Path) -> None:
    with DeviceRegistry(tmp_path / "registry.sqlite3") as registry:
        assert registry is not None
        assert_private(tmp_path, "registry.sqlite3")


def test_sqlite_store_is_private(tmp_path: Path) -> None:
    from tests.fuzz.payloads import GATEWAY, template_payload
    from vitalgate.cloud_sync.schema import decode_batch, topic_readings
    from vitalgate.readings import ReadingKind

    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        kind = ReadingKind.BLOOD_PRESSURE
        store.write(decode_batch(topic_readings(GATEWAY, kind), template_payload(kind)))
        assert_private(tmp_path, "store.sqlite3")
    finally:
        store.close()


def test_bond_store_is_private(tmp_path: Path) -> None:
    path = tmp_path / "bonds.json"
    keystore = _PrivateJsonKeyStore(None, str(path))
    asyncio.run(keystore.save({"__DEFAULT__": {"AA:BB:CC:DD:EE:FF/P": {"ltk": {"value": "00"}}}}))
    assert path.exists()
    assert_private(tmp_path, "bonds.json")


def test_the_umask_is_not_what_makes_them_private() -> None:
    """The control of the tests above: a plain file under umask 000 IS world-readable."""
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"vg-umask-probe-{os.getpid()}"
    try:
        probe.write_text("x")
        assert mode(probe) & 0o066, "the umask fixture is not in effect"
    finally:
        probe.unlink(missing_ok=True)
