"""The dashboard app in-process (httpx over ASGI): sign-in, sessions, CSRF, access control,
pages, downloads, alert acknowledgement."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.views.alerts_store import AlertStore
from vitalgate.views.app import DashboardConfig, create_app
from vitalgate.views.auth import UserStore
from vitalgate.views.patients import load_patients

from .conftest import DOCTOR, PATIENT, Site

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    store = SqliteStore(site.store_path)
    alerts = AlertStore(site.alerts)
    app = create_app(
        DashboardConfig(
            store=store,
            users=UserStore(site.users),
            alerts=alerts,
            patients=load_patients(site.patients),
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c
    alerts.close()
    store.close()


async def login(c: httpx.AsyncClient, user: tuple[str, str]) -> str:
    page = await c.get("/login")
    token = CSRF.search(page.text)
    assert token
    r = await c.post(
        "/login",
        data={"username": user[0], "password": user[1], "csrf": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


async def test_pages_need_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/", "/patients/p-001", "/patients/p-001/fhir.json", "/api/patients/p-001/page"):
        r = await client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_login_rejects_bad_password_and_missing_csrf(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = await client.post("/login", data={"username": DOCTOR[0], "password": "nope", "csrf": token})
    assert r.status_code == 401 and "wrong password" in r.text
    r = await client.post(
        "/login", data={"username": DOCTOR[0], "password": DOCTOR[1], "csrf": "x"}
    )
    assert r.status_code == 403


async def test_session_cookie_flags(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = await client.post(
        "/login",
        data={"username": DOCTOR[0], "password": DOCTOR[1], "csrf": token},
        follow_redirects=False,
    )
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and "vg_session" in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "default-src 'self'" in r.headers["content-security-policy"]


async def test_doctor_sees_list_and_patient_page(client: httpx.AsyncClient) -> None:
    await login(client, DOCTOR)
    r = await client.get("/")
    assert r.status_code == 200
    assert "Ada Lovelace" in r.text and "Grace Hopper" in r.text
    assert r.headers["cache-control"] == "no-store"
    r = await client.get("/patients/p-001?from=2026-11-07&to=2026-11-20")
    assert r.status_code == 200
    data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', r.text, re.S)
    assert data
    page = orjson.loads(data.group(1))
    assert page["range"] == {
        "from": "2026-11-07",
        "to": "2026-11-20",
        "days": 14,
        "x": page["range"]["x"],
    }
    assert page["bp"]["n"] > 40 and len(page["cgm"]["agp"]["p50"]) == 288
    assert "/static/plotly.min.js" in r.text and "cdn" not in r.text.lower()


async def test_plotly_served_locally(client: httpx.AsyncClient) -> None:
    r = await client.get("/static/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert r.headers["content-type"].startswith("text/javascript")


async def test_bad_range_is_400(client: httpx.AsyncClient) -> None:
    await login(client, DOCTOR)
    assert (await client.get("/patients/p-001?from=2026-11-20&to=2026-11-01")).status_code == 400
    assert (await client.get("/patients/p-001?from=yesterday")).status_code == 400
    assert (await client.get("/patients/p-001?from=2020-01-01&to=2026-01-01")).status_code == 400


async def test_patient_sees_only_own_data(client: httpx.AsyncClient) -> None:
    assert await login(client, PATIENT) == "/"
    r = await client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/patients/p-001"
    assert (await client.get("/patients/p-001")).status_code == 200
    for path in (
        "/patients/p-002",
        "/patients/p-002/fhir.json",
        "/patients/p-002/report.pdf?kind=agp",
        "/api/patients/p-002/page",
    ):
        assert (await client.get(path)).status_code == 403, path


async def test_downloads(client: httpx.AsyncClient) -> None:
    await login(client, DOCTOR)
    q = "from=2026-11-14&to=2026-11-20"
    pdf = await client.get(f"/patients/p-001/report.pdf?kind=agp&{q}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    png = await client.get(f"/patients/p-001/report.png?kind=bp&{q}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    fhir = await client.get(f"/patients/p-001/fhir.json?{q}")
    assert fhir.status_code == 200
    assert orjson.loads(fhir.content)["resourceType"] == "Bundle"
    assert (await client.get(f"/patients/p-001/report.doc?{q}")).status_code == 404


async def test_acknowledge_alert_needs_csrf_and_doctor(
    client: httpx.AsyncClient, site: Site
) -> None:
    alerts = AlertStore(site.alerts)
    (record,) = [a for a in alerts.list("p-001") if a.alert.rule == "bp_crisis"]
    alert_id = record.alert.alert_id
    # a patient may not acknowledge
    await login(client, PATIENT)
    page = await client.get("/patients/p-001")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert (await client.post(f"/alerts/{alert_id}/ack", data={"csrf": token})).status_code == 403
    client.cookies.clear()
    await login(client, DOCTOR)
    page = await client.get("/patients/p-001")
    assert "186/104 mmHg" in page.text and "Acknowledge" in page.text
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert (
        await client.post(f"/alerts/{alert_id}/ack", data={"csrf": "forged"})
    ).status_code == 403
    assert alerts.list("p-001", open_only=True)
    r = await client.post(f"/alerts/{alert_id}/ack", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    (after,) = [a for a in alerts.list("p-001") if a.alert.alert_id == alert_id]
    assert after.acked_by == DOCTOR[0] and after.acked_at is not None
    assert (await client.post("/alerts/unknown/ack", data={"csrf": token})).status_code == 404
    alerts.close()


async def test_logout_ends_session(client: httpx.AsyncClient) -> None:
    await login(client, DOCTOR)
    page = await client.get("/")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert (await client.post("/logout", data={"csrf": "bad"})).status_code == 403
    r = await client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert (await client.get("/", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example"])
async def test_no_open_redirect_after_sign_in(client: httpx.AsyncClient, target: str) -> None:
    page = await client.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = await client.post(
        "/login",
        data={"username": DOCTOR[0], "password": DOCTOR[1], "csrf": token, "next": target},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
