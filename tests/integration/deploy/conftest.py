"""Fixtures: servers started from the production configs in deploy/ (see support.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.deploy.support import DeployedInfluxDB1, DeployedMosquitto


@pytest.fixture(scope="module")
def deployed_broker() -> Iterator[DeployedMosquitto]:
    root = server_dir("mosquitto")
    broker = DeployedMosquitto(data_dir=root)
    try:
        broker.start()
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture(scope="module")
def deployed_influxdb() -> Iterator[DeployedInfluxDB1]:
    server = DeployedInfluxDB1(data_dir=server_dir("influxdb"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def server_dir(name: str) -> Path:
    """A fresh directory the broker's unprivileged user can reach (pytest's tmp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix=f"vg-deploy-{name}-"))
    root.chmod(0o755)
    return root
