"""CLI: `dashboard`, `report`, `export fhir` and `users` (dashboard accounts)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from vitalgate.errors import ConfigError
from vitalgate.files import write_private

__all__ = ["register"]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _patients_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--patients",
        metavar="FILE",
        help="patients config (TOML: [[patient]] id, name, timezone)",
    )


def _range_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, metavar="URL", help="reading store URL")
    p.add_argument("--patient", required=True, metavar="ID")
    p.add_argument("--from", dest="first", required=True, type=_day, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="last", required=True, type=_day, metavar="YYYY-MM-DD")
    _patients_arg(p)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dash = subparsers.add_parser("dashboard", help="serve the web dashboard")
    dash.add_argument("--store", required=True, metavar="URL", help="reading store URL")
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=int, default=8080)
    dash.add_argument("--users", required=True, metavar="FILE", help="accounts (vitalgate users)")
    dash.add_argument(
        "--alerts", metavar="FILE", help="alerts database (default: alerts.db beside --users)"
    )
    _patients_arg(dash)
    dash.add_argument("--session-minutes", type=float, default=30.0, help="idle session timeout")
    dash.add_argument(
        "--secure-cookies", action="store_true", help="mark cookies Secure (behind HTTPS)"
    )
    dash.add_argument(
        "--mqtt",
        metavar="URL",
        help="broker to receive the gateways' alerts from (mqtt:// or mqtts://)",
    )
    dash.add_argument("--mqtt-client-id", default="vitalgate-dashboard", metavar="ID")
    dash.add_argument("--mqtt-username", metavar="NAME")
    dash.add_argument("--mqtt-ca-file", metavar="FILE")
    dash.set_defaults(func=_dashboard)

    report = subparsers.add_parser("report", help="write an AGP or BP report (PDF or PNG)")
    _range_args(report)
    report.add_argument("--kind", choices=("agp", "bp"), default="agp")
    report.add_argument("--out", required=True, metavar="FILE.pdf|FILE.png")
    report.set_defaults(func=_report)

    export = subparsers.add_parser("export", help="export readings")
    export_sub = export.add_subparsers(dest="format", metavar="FORMAT", required=True)
    fhir = export_sub.add_parser("fhir", help="a FHIR R4 Bundle (collection) of one patient")
    _range_args(fhir)
    fhir.add_argument("--out", metavar="FILE", help="output file (default: stdout)")
    fhir.add_argument(
        "--no-cgm-readings",
        action="store_true",
        help="export the CGM summary only, not every sensor reading",
    )
    fhir.set_defaults(func=_export_fhir)

    users = subparsers.add_parser("users", help="manage dashboard accounts")
    users_sub = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = users_sub.add_parser("add", help="add or replace a doctor or patient account")
    add.add_argument("--users", required=True, metavar="FILE")
    add.add_argument("--username", required=True)
    add.add_argument("--role", choices=("doctor", "patient"), required=True)
    add.add_argument("--patient", metavar="ID", help="the patient a patient account may see")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(func=_users_add)


def _patient(args: argparse.Namespace) -> Any:
    from vitalgate.views.patients import PatientInfo, load_patients

    patients = load_patients(args.patients)
    return patients.get(args.patient) or PatientInfo.unknown(args.patient)


def _report(args: argparse.Namespace) -> int:
    from vitalgate.cloud_sync.stores import open_store
    from vitalgate.views.reports import render_report

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("pdf", "png"):
        raise ConfigError("out", "must end in .pdf or .png")
    patient = _patient(args)
    store = open_store(args.store)
    try:
        data = render_report(
            store,
            patient,
            args.first,
            args.last,
            kind=args.kind,
            fmt="pdf" if fmt == "pdf" else "png",
        )
    finally:
        store.close()
    write_private(out, data)
    return 0


def _export_fhir(args: argparse.Namespace) -> int:
    import orjson

    from vitalgate.cloud_sync.stores import open_store
    from vitalgate.views.fhir import export_bundle

    patient = _patient(args)
    store = open_store(args.store)
    try:
        bundle = export_bundle(
            store, patient, args.first, args.last, cgm_readings=not args.no_cgm_readings
        )
    finally:
        store.close()
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n"
    if args.out:
        write_private(Path(args.out), data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _users_add(args: argparse.Namespace) -> int:
    from vitalgate.views.auth import Role, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise ConfigError("password", "the passwords differ")
    add_user(args.users, args.username, password, Role(args.role), args.patient)
    print(f"account {args.username!r} ({args.role}) saved in {args.users}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import asyncio

    from vitalgate.cloud_sync.stores import open_store
    from vitalgate.views.alerts_store import AlertStore
    from vitalgate.views.app import DashboardConfig, create_app
    from vitalgate.views.auth import UserStore
    from vitalgate.views.patients import load_patients

    users = UserStore(args.users)
    patients = load_patients(args.patients)
    mqtt_config = None
    if args.mqtt:
        from vitalgate.cloud_sync.mqtt import MqttConfig

        mqtt_config = MqttConfig(
            url=args.mqtt,
            client_id=args.mqtt_client_id,
            username=args.mqtt_username,
            password=os.environ.get("VITALGATE_MQTT_PASSWORD") if args.mqtt_username else None,
            ca_file=Path(args.mqtt_ca_file) if args.mqtt_ca_file else None,
        )
    alerts_path = args.alerts or str(Path(args.users).with_name("alerts.db"))
    store = open_store(args.store)
    alerts = AlertStore(alerts_path)
    try:
        app = create_app(
            DashboardConfig(
                store=store,
                users=users,
                alerts=alerts,
                patients=patients,
                session_idle_s=args.session_minutes * 60.0,
                secure_cookies=args.secure_cookies,
            )
        )
        asyncio.run(_serve(app, args.host, args.port, alerts, mqtt_config))
    finally:
        alerts.close()
        store.close()
    return 0


async def _serve(app: Any, host: str, port: int, alerts: Any, mqtt_config: Any) -> None:
    """uvicorn, plus the MQTT alert listener when a broker is given, in one task group.

    SIGINT and SIGTERM stop both gracefully (uvicorn finishes the requests in flight; the
    listener disconnects cleanly), then the stores are closed by the caller.
    """
    import asyncio
    import contextlib
    import signal
    from collections.abc import Iterator

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the signals are handled below, for the server and the listener together

    server = Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    listener = None
    if mqtt_config is not None:
        from vitalgate.views.alert_listener import AlertListener

        listener = AlertListener(mqtt_config, alerts)

    def stop() -> None:
        server.should_exit = True
        if listener is not None:
            listener.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        async with asyncio.TaskGroup() as tg:
            if listener is not None:
                tg.create_task(listener.run())
            try:
                await server.serve()
            finally:
                stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
