"""write_private: mode 0600 whatever was there, content replaced whole, no temp file left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vitalgate.files import write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_is_0600(tmp_path: Path) -> None:
    target = tmp_path / "info.json"
    write_private(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert _mode(target) == 0o600
    assert list(tmp_path.iterdir()) == [target]


def test_existing_world_readable_file_becomes_0600(tmp_path: Path) -> None:
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old content that is longer")
    os.chmod(target, 0o644)
    write_private(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o600


def test_stale_temp_file_with_open_mode_is_not_reused_open(tmp_path: Path) -> None:
    target = tmp_path / "truth.jsonl"
    stale = tmp_path / "truth.jsonl.tmp"
    stale.write_text("stale")
    os.chmod(stale, 0o666)
    write_private(target, "fresh", sync=False)
    assert target.read_text() == "fresh"
    assert _mode(target) == 0o600
    assert not stale.exists()


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_private(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert not (tmp_path / "keep.json.tmp").exists()
