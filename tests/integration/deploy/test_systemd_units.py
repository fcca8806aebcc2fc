"""deploy/systemd: the units parse (``systemd-analyze verify``) with only their binary swapped.

The test machines run no systemd, so the services are not started; verify checks every
directive and its value. The executable is replaced by /bin/true (the real one lives in
/opt/vitalgate/venv on the target) and the gateway's dependency on bluetooth.service, which
does not exist here, is the only complaint accepted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.deploy.support import DEPLOY

UNITS = ("vitalgate-gateway.service", "vitalgate-ingest@.service", "vitalgate-dashboard.service")


def test_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    paths = []
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "/opt/vitalgate/venv/bin/vitalgate" in text
        name = unit.replace("@.service", "@1.service")
        path = tmp_path / name
        path.write_text(text.replace("/opt/vitalgate/venv/bin/vitalgate", "/bin/true"))
        paths.append(str(path))
    done = subprocess.run(
        [analyze, "verify", *paths], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "bluetooth.service not found" not in line
    ]
    assert complaints == [], complaints


def test_gateway_unit_matches_the_one_docs_gateway_md_installs() -> None:
    shipped = (DEPLOY / "systemd" / "vitalgate-gateway.service").read_text()
    documented = (DEPLOY.parent / "docs" / "vitalgate.service").read_text()

    def directives(text: str) -> list[str]:
        return [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.startswith("#") and not line.startswith("Documentation=")
        ]

    assert directives(shipped) == directives(documented)


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above has teeth: a misspelt directive is reported."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = (DEPLOY / "systemd" / "vitalgate-dashboard.service").read_text()
    broken = tmp_path / "vitalgate-dashboard.service"
    broken.write_text(
        text.replace("/opt/vitalgate/venv/bin/vitalgate", "/bin/true").replace(
            "RestartSec=", "RestartSecs="
        )
    )
    done = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "RestartSecs" in done.stdout + done.stderr
