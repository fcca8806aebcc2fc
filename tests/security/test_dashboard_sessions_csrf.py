"""Dashboard: sessions expire (idle and absolute) and every POST form resists CSRF.

The app runs in-process (httpx over ASGI) on a seeded site. Each CSRF check is made three ways
on the same form: no token -> 403, a wrong or another session's token -> 403, the right token ->
accepted, so the test shows the token is what decides.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration.views.conftest import DOCTOR, Site, build_site
from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.views.alerts_store import AlertStore
from vitalgate.views.app import DashboardConfig, create_app
from vitalgate.views.auth import UserStore
from vitalgate.views.patients import load_patients

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(tmp_path_factory.mktemp("security-dashboard"))


@asynccontextmanager
async def dashboard(
    site: Site, *, idle_s: float = 1800.0, absolute_s: float = 43200.0
) -> AsyncIterator[httpx.AsyncClient]:
    store = SqliteStore(site.store_path)
    alerts = AlertStore(site.alerts)
    app = create_app(
        DashboardConfig(
            store=store,
            users=UserStore(site.users),
            alerts=alerts,
            patients=load_patients(site.patients),
            session_idle_s=idle_s,
            session_absolute_s=absolute_s,
        )
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            yield c
    finally:
        alerts.close()
        store.close()


async def _login(c: httpx.AsyncClient, user: tuple[str, str] = DOCTOR) -> None:
    page = await c.get("/login")
    token = CSRF.search(page.text)
    assert token is not None
    r = await c.post(
        "/login",
        data={"username": user[0], "password": user[1], "csrf": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


async def _signed_in(c: httpx.AsyncClient) -> bool:
    r = await c.get("/", follow_redirects=False)
    if r.status_code == 200:
        return True
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    return False


async def _page_token(c: httpx.AsyncClient) -> str:
    page = await c.get("/")
    token = CSRF.search(page.text)
    assert token is not None, "the signed-in page carries no CSRF token"
    return token.group(1)


async def test_session_expires_after_idle_time(site: Site) -> None:
    async with dashboard(site, idle_s=1.0) as c:
        await _login(c)
        assert await _signed_in(c)
        for _ in range(4):  # use within the idle window keeps it alive past idle_s
            await asyncio.sleep(0.4)
            assert await _signed_in(c)
        await asyncio.sleep(1.3)
        assert not await _signed_in(c), "an idle session outlived session_idle_s"


async def test_session_expires_at_absolute_lifetime_even_when_used(site: Site) -> None:
    loop = asyncio.get_running_loop()
    async with dashboard(site, idle_s=60.0, absolute_s=4.0) as c:
        signed_in_at = loop.time()
        await _login(c)
        while loop.time() - signed_in_at < 2.5:
            assert await _signed_in(c)
            await asyncio.sleep(0.3)
        await asyncio.sleep(max(0.0, 4.3 - (loop.time() - signed_in_at)))
        assert not await _signed_in(c), "a busy session outlived session_absolute_s"


async def test_session_cookie_is_not_accepted_by_another_app_instance(site: Site) -> None:
    """Sessions are server-side random tokens: a cookie means nothing to a fresh table."""
    async with dashboard(site) as c:
        await _login(c)
        cookie = c.cookies.get("vg_session")
        assert cookie and len(cookie) >= 32
    async with dashboard(site) as other:
        other.cookies.set("vg_session", cookie)
        assert not await _signed_in(other)


async def test_login_form_needs_its_csrf_token(site: Site) -> None:
    async with dashboard(site) as c:
        page = await c.get("/login")
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        creds = {"username": DOCTOR[0], "password": DOCTOR[1], "next": "/"}
        assert (await c.post("/login", data=creds)).status_code == 403
        assert (await c.post("/login", data={**creds, "csrf": "forged"})).status_code == 403
        r = await c.post("/login", data={**creds, "csrf": token}, follow_redirects=False)
        assert r.status_code == 303


async def test_logout_form_needs_the_sessions_csrf_token(site: Site) -> None:
    async with dashboard(site) as a, dashboard(site) as b:
        await _login(a)
        await _login(b)
        token_a = await _page_token(a)
        token_b = await _page_token(b)
        assert token_a != token_b
        assert (await a.post("/logout", data={})).status_code == 403
        assert (await a.post("/logout", data={"csrf": "x" * len(token_a)})).status_code == 403
        assert (await a.post("/logout", data={"csrf": token_b})).status_code == 403
        assert await _signed_in(a), "a refused logout must leave the session alone"
        r = await a.post("/logout", data={"csrf": token_a}, follow_redirects=False)
        assert r.status_code == 303
        assert not await _signed_in(a)


async def test_alert_acknowledgement_needs_the_sessions_csrf_token(site: Site) -> None:
    alerts = AlertStore(site.alerts)
    try:
        open_alerts = alerts.list("p-001", open_only=True)
        assert open_alerts, "the seeded site has an open BP-crisis alert"
        alert_id = open_alerts[0].alert.alert_id
    finally:
        alerts.close()
    async with dashboard(site) as a, dashboard(site) as b:
        await _login(a)
        await _login(b)
        token_b = await _page_token(b)
        url = f"/alerts/{alert_id}/ack"
        assert (await a.post(url, data={})).status_code == 403
        assert (await a.post(url, data={"csrf": ""})).status_code == 403
        assert (await a.post(url, data={"csrf": token_b})).status_code == 403
        check = AlertStore(site.alerts)
        try:
            assert check.list("p-001", open_only=True), "a forged POST acknowledged the alert"
        finally:
            check.close()
        r = await a.post(url, data={"csrf": await _page_token(a)}, follow_redirects=False)
        assert r.status_code == 303


def test_state_files_of_the_dashboard_are_private(site: Site) -> None:
    for path in (site.users, site.store_path, site.alerts):
        assert Path(path).stat().st_mode & 0o777 == 0o600, path
