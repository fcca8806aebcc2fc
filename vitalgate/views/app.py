"""The dashboard web app (Starlette): sign-in, patient list, patient page, reports, FHIR, alerts.

Pages are rendered on the server with the chart data embedded as compact JSON; the browser draws
it with plotly.js, which the app serves itself (``/static/plotly.min.js`` from the plotly
package): nothing is loaded from a CDN, so it works in an offline clinic. Store queries and
computation run in worker threads (``asyncio.to_thread``).

Security: sessions and CSRF as in :mod:`vitalgate.views.auth`; cookies are ``HttpOnly`` and
``SameSite=Strict`` (``Secure`` with ``secure_cookies``); a strict Content-Security-Policy (scripts
only from the app itself); responses holding health data are ``Cache-Control: no-store``. A
patient account gets 403 for any other patient. Nothing with health values is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vitalgate.cloud_sync.store import DeviceLatest, ReadingStore
from vitalgate.views.alerts_store import AlertRecord, AlertStore
from vitalgate.views.auth import (
    LoginThrottle,
    Role,
    Session,
    SessionTable,
    User,
    UserStore,
    csrf_ok,
    verify_password,
)
from vitalgate.views.pagedata import page_data, patient_status
from vitalgate.views.patients import PatientInfo

__all__ = ["DashboardConfig", "create_app"]

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "vg_session"
LOGIN_COOKIE: Final = "vg_login"
MAX_RANGE_DAYS: Final = 366
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_RULE_LABELS: Final = {
    "bp_crisis": "BP crisis",
    "glucose_severe_low": "Severe low glucose (meter)",
    "cgm_low_sustained": "Sustained low glucose (CGM)",
    "spo2_low_sustained": "Sustained low SpO2",
}


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """What the dashboard needs; ``patients`` maps ids to names and zones."""

    store: ReadingStore
    users: UserStore
    alerts: AlertStore
    patients: Mapping[str, PatientInfo] = field(default_factory=dict)
    session_idle_s: float = 30 * 60.0
    session_absolute_s: float = 12 * 3600.0
    secure_cookies: bool = False
    default_days: int = 14


def _templates() -> Environment:
    path = Path(str(files("vitalgate.views").joinpath("templates")))
    env = Environment(
        loader=FileSystemLoader(path), autoescape=select_autoescape(["html"]), auto_reload=False
    )
    env.filters["fmt"] = lambda v, nd=0: "-" if v is None else f"{v:.{nd}f}"
    env.filters["rule"] = lambda r: _RULE_LABELS.get(str(r), str(r))
    env.globals["timedelta_days"] = lambda n: timedelta(days=n)
    return env


def _json_for_html(data: object) -> str:
    """JSON safe to embed in ``<script type="application/json">`` (no ``</script>`` breakout)."""
    raw = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a date (YYYY-MM-DD)") from None


class Dashboard:
    """Request handlers bound to one configuration."""

    def __init__(self, config: DashboardConfig) -> None:
        self.cfg = config
        self.sessions = SessionTable(
            idle_s=config.session_idle_s, absolute_s=config.session_absolute_s
        )
        self.throttle = LoginThrottle()
        self.env = _templates()
        self.plotly_js = Path(str(files("plotly").joinpath("package_data", "plotly.min.js")))

    # -- helpers -----------------------------------------------------------------------------

    def render(self, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status_code, headers=_NO_STORE)

    def patient(self, patient_id: str) -> PatientInfo:
        info = self.cfg.patients.get(patient_id)
        return info if info is not None else PatientInfo.unknown(patient_id)

    def current(self, request: Request) -> tuple[Session, User] | None:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        user = self.cfg.users.get(session.username)
        if user is None:  # the account was removed
            self.sessions.drop_user(session.username)
            return None
        return session, user

    def require(self, request: Request) -> tuple[Session, User]:
        found = self.current(request)
        if found is None:
            raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"})
        return found

    def require_patient(self, request: Request, patient_id: str) -> tuple[Session, User]:
        session, user = self.require(request)
        if not user.may_see(patient_id):
            raise HTTPException(403, "this account may not see that patient")
        return session, user

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.cfg.secure_cookies,
            path="/",
        )

    def day_range(self, request: Request, newest: date | None) -> tuple[date, date]:
        to = _parse_day(request.query_params.get("to"), "to")
        frm = _parse_day(request.query_params.get("from"), "from")
        if to is None:
            to = newest or datetime.now(UTC).date()
        if frm is None:
            frm = to - timedelta(days=self.cfg.default_days - 1)
        if frm > to:
            raise HTTPException(400, "'from' is after 'to'")
        if (to - frm).days + 1 > MAX_RANGE_DAYS:
            raise HTTPException(400, f"the range may span at most {MAX_RANGE_DAYS} days")
        return frm, to

    def newest_day(
        self, info: PatientInfo, latest: Sequence[DeviceLatest] | None = None
    ) -> date | None:
        """The patient's local date of the newest reading (the default end of the range)."""
        if latest is None:
            latest = self.cfg.store.latest(info.patient_id)
        if not latest:
            return None
        return max(d.measured_at for d in latest).astimezone(info.tz).date()

    # -- pages -------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if self.current(request) is not None:
            return RedirectResponse("/", 303)
        token = secrets.token_urlsafe(32)
        response = self.render(
            "login.html", csrf=token, error=None, next=request.query_params.get("next", "/")
        )
        self.set_cookie(response, LOGIN_COOKIE, token, 600)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:1024]
        nxt = _local_path(str(form.get("next", "/")), "/")
        if not csrf_ok(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf")):
            raise HTTPException(403, "the sign-in form expired; reload the page")

        def fail(message: str) -> Response:
            token = secrets.token_urlsafe(32)
            response = self.render("login.html", 401, csrf=token, error=message, next=nxt)
            self.set_cookie(response, LOGIN_COOKIE, token, 600)
            return response

        if self.throttle.blocked(username):
            return fail("Too many failed attempts. Try again in a few minutes.")
        user = self.cfg.users.get(username)
        ok = await asyncio.to_thread(_check_password, user, password)
        if user is None or not ok:
            self.throttle.failed(username)
            log.warning("failed dashboard sign-in")
            return fail("Unknown user or wrong password.")
        self.throttle.succeeded(username)
        token, _ = self.sessions.create(user.username)
        response = RedirectResponse(nxt, 303)
        self.set_cookie(response, SESSION_COOKIE, token, int(self.cfg.session_absolute_s))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        session, _ = self.require(request)
        form = await request.form()
        if not csrf_ok(session.csrf_token, form.get("csrf")):
            raise HTTPException(403, "invalid CSRF token")
        self.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def index(self, request: Request) -> Response:
        session, user = self.require(request)
        if user.role is Role.PATIENT:
            return RedirectResponse(f"/patients/{user.patient_id}", 303)

        def rows() -> tuple[list[Any], dict[str, int]]:
            ids = sorted(set(self.cfg.store.patients()) | set(self.cfg.patients))
            today = datetime.now(UTC).date()
            out = []
            for pid in ids:
                info = self.patient(pid)
                newest = self.newest_day(info) or today
                out.append(patient_status(self.cfg.store, info, newest))
            return out, self.cfg.alerts.open_counts()

        statuses, open_alerts = await asyncio.to_thread(rows)
        statuses.sort(key=lambda s: (-open_alerts.get(s.patient.patient_id, 0), -len(s.flags)))
        return self.render(
            "patients.html", user=user, csrf=session.csrf_token, rows=statuses, alerts=open_alerts
        )

    async def patient_page(self, request: Request) -> Response:
        pid = request.path_params["patient_id"]
        session, user = self.require_patient(request, pid)
        info = self.patient(pid)

        def compute() -> tuple[dict[str, Any], list[AlertRecord], date, date]:
            latest = self.cfg.store.latest(pid)
            frm, to = self.day_range(request, self.newest_day(info, latest))
            data = page_data(self.cfg.store, info, frm, to, latest=latest)
            return data, self.cfg.alerts.list(pid, limit=50), frm, to

        data, alerts, frm, to = await asyncio.to_thread(compute)
        return self.render(
            "patient.html",
            user=user,
            csrf=session.csrf_token,
            p=info,
            d=data,
            data_json=_json_for_html(data),
            alerts=alerts,
            frm=frm,
            to=to,
            tz=info.tz,
            query=f"from={frm.isoformat()}&to={to.isoformat()}",
        )

    async def report(self, request: Request) -> Response:
        pid = request.path_params["patient_id"]
        fmt = request.path_params["fmt"]
        kind = request.query_params.get("kind", "agp")
        if fmt not in ("pdf", "png") or kind not in ("agp", "bp"):
            raise HTTPException(404)
        self.require_patient(request, pid)
        info = self.patient(pid)

        def build() -> bytes:
            from vitalgate.views.reports import render_report

            frm, to = self.day_range(request, self.newest_day(info))
            return render_report(self.cfg.store, info, frm, to, kind=kind, fmt=fmt)  # type: ignore[arg-type]

        body = await asyncio.to_thread(build)
        media = "application/pdf" if fmt == "pdf" else "image/png"
        name = f"{kind}-{pid}.{fmt}"
        return Response(
            body,
            media_type=media,
            headers={**_NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def fhir(self, request: Request) -> Response:
        pid = request.path_params["patient_id"]
        self.require_patient(request, pid)
        info = self.patient(pid)

        def build() -> bytes:
            from vitalgate.views.fhir import export_bundle

            frm, to = self.day_range(request, self.newest_day(info))
            bundle = export_bundle(self.cfg.store, info, frm, to)
            return orjson.dumps(bundle)

        body = await asyncio.to_thread(build)
        return Response(
            body,
            media_type="application/fhir+json",
            headers={
                **_NO_STORE,
                "Content-Disposition": f'attachment; filename="fhir-{pid}.json"',
            },
        )

    async def data(self, request: Request) -> Response:
        """The page's chart data as JSON (for scripts and the benchmark)."""
        pid = request.path_params["patient_id"]
        self.require_patient(request, pid)
        info = self.patient(pid)

        def compute() -> bytes:
            frm, to = self.day_range(request, self.newest_day(info))
            return orjson.dumps(page_data(self.cfg.store, info, frm, to))

        body = await asyncio.to_thread(compute)
        return Response(body, media_type="application/json", headers=_NO_STORE)

    async def acknowledge(self, request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        session, user = self.require(request)
        form = await request.form()
        if not csrf_ok(session.csrf_token, form.get("csrf")):
            raise HTTPException(403, "invalid CSRF token")
        if user.role is not Role.DOCTOR:
            raise HTTPException(403, "only a doctor acknowledges alerts")
        pid = await asyncio.to_thread(self.cfg.alerts.patient_of, alert_id)
        if pid is None:
            raise HTTPException(404, "no such alert")
        await asyncio.to_thread(
            self.cfg.alerts.acknowledge, alert_id, user.username, datetime.now(UTC)
        )
        back = _local_path(str(form.get("next", "")), f"/patients/{pid}")
        return RedirectResponse(back, 303)

    async def plotly(self, request: Request) -> Response:
        return FileResponse(
            self.plotly_js,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")


_NO_STORE: Final = {"Cache-Control": "no-store"}


def _local_path(target: str, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 0x20 for ch in target)
    ):
        return default
    return target


def _check_password(user: User | None, password: str) -> bool:
    if user is None:
        # Spend the same time as for a real account so response times do not reveal users.
        from vitalgate.views.auth import hash_password

        hash_password(password, b"\0" * 16)
        return False
    return verify_password(user, password)


def create_app(config: DashboardConfig) -> Starlette:
    """The ASGI app of the dashboard."""
    d = Dashboard(config)
    static = Path(str(files("vitalgate.views").joinpath("static")))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (301, 302, 303, 307) and exc.headers:
            return RedirectResponse(exc.headers["Location"], exc.status_code)
        if request.url.path.endswith((".json", ".pdf", ".png")) or "/api/" in request.url.path:
            return JSONResponse({"error": exc.detail}, exc.status_code)
        return d.render("error.html", exc.status_code, status=exc.status_code, detail=exc.detail)

    routes = [
        Route("/", d.index),
        Route("/login", d.login_form, methods=["GET"]),
        Route("/login", d.login, methods=["POST"]),
        Route("/logout", d.logout, methods=["POST"]),
        Route("/patients/{patient_id}", d.patient_page),
        Route("/patients/{patient_id}/report.{fmt}", d.report),
        Route("/patients/{patient_id}/fhir.json", d.fhir),
        Route("/api/patients/{patient_id}/page", d.data),
        Route("/alerts/{alert_id}/ack", d.acknowledge, methods=["POST"]),
        Route("/static/plotly.min.js", d.plotly),
        Route("/healthz", d.health),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    app.state.dashboard = d
    app.add_middleware(_HeadersMiddleware)
    return app


class _HeadersMiddleware:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", _CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
