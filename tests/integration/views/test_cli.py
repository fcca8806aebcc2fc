"""The views' CLI commands end to end: users add, report, export fhir."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from vitalgate.cli import main
from vitalgate.views.auth import UserStore, verify_password

from .conftest import Site


def test_users_add_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "users.json"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    rc = main(["users", "add", "--users", str(users), "--username", "nurse", "--role", "patient",
               "--patient", "p-001", "--password-stdin"])  # fmt: skip
    assert rc == 0
    user = UserStore(users).get("nurse")
    assert user is not None and verify_password(user, "a-long-password")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    rc = main(["users", "add", "--users", str(users), "--username", "x", "--role", "doctor",
               "--password-stdin"])  # fmt: skip
    assert rc == 1


@pytest.mark.parametrize("kind", ["agp", "bp"])
@pytest.mark.parametrize("suffix", ["pdf", "png"])
def test_report(site: Site, tmp_path: Path, kind: str, suffix: str) -> None:
    out = tmp_path / f"r.{suffix}"
    rc = main(["report", "--store", f"sqlite://{site.store_path}", "--patients",
               str(site.patients), "--patient", "p-001", "--from", "2026-11-07", "--to",
               "2026-11-20", "--kind", kind, "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert out.read_bytes()[:4] in (b"%PDF", b"\x89PNG")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_report_rejects_unknown_format(site: Site, tmp_path: Path) -> None:
    out = str(tmp_path / "r.doc")
    rc = main(["report", "--store", f"sqlite://{site.store_path}", "--patient", "p-001",
               "--from", "2026-11-07", "--to", "2026-11-20", "--out", out])  # fmt: skip
    assert rc == 1


def test_export_fhir(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    rc = main(["export", "fhir", "--store", f"sqlite://{site.store_path}", "--patients",
               str(site.patients), "--patient", "p-002", "--from", "2026-11-19", "--to",
               "2026-11-20", "--out", str(out)])  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    Bundle.model_validate(doc)
    patient = doc["entry"][0]["resource"]
    assert patient["name"] == [{"text": "Grace Hopper"}]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
