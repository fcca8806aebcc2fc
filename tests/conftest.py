"""Shared fixtures.

Server URLs come from the state file that ``make test`` writes (``VITALGATE_TEST_SERVERS``). When
pytest runs without it (a developer running one test), the session starts its own servers. A test
that needs a server never skips: a missing server is an error.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import servers as srv

pytest_plugins = ["vitalgate.firmware_sim.pytest_plugin"]

logging.getLogger("bumble").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def server_urls() -> Iterator[dict[str, Any]]:
    state_file = os.environ.get(srv.STATE_ENV)
    if state_file:
        path = Path(state_file)
        if not path.exists():
            raise srv.ServerError(f"{srv.STATE_ENV}={state_file} but the file does not exist")
        yield json.loads(path.read_text())
        return
    root = Path(tempfile.mkdtemp(prefix="vitalgate-servers-"))
    os.chmod(root, 0o755)
    state = srv.start_all(root)
    try:
        yield state
    finally:
        srv.stop_all(state)


@pytest.fixture(scope="session")
def mqtt_url(server_urls: dict[str, Any]) -> str:
    return str(server_urls["mosquitto"]["url"])


@pytest.fixture(scope="session")
def victoria_metrics_url(server_urls: dict[str, Any]) -> str:
    return str(server_urls["victoria_metrics"]["url"])


@pytest.fixture(scope="session")
def influxdb_url(server_urls: dict[str, Any]) -> str:
    return str(server_urls["influxdb"]["url"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API keeps an event loop running in the
    main thread for as long as its (session-scoped) browser lives, which would break every
    asyncio test collected after it."""
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/"))
