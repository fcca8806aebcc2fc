"""Real servers for the tests: Mosquitto 2, VictoriaMetrics, InfluxDB 1.x.

Each server runs on 127.0.0.1 on a free port with its data in a temporary directory, is polled
until ready (never a fixed sleep) and is stopped by PID. ``make test`` starts one shared set with
``python -m tests.support.servers start`` and hands the URLs to pytest through the environment
(``VITALGATE_TEST_SERVERS`` names a JSON state file); tests that need to kill or restart a
server start their own instance with the classes below.

Install the servers with ``scripts/install-servers.sh`` (Debian packages).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_ENV = "VITALGATE_TEST_SERVERS"


class ServerError(RuntimeError):
    pass


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1, never one this process handed out before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _require(binary: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if path is None:
        raise ServerError(
            f"{binary} is not installed: run scripts/install-servers.sh (make test does this)"
        )
    return path


def _wait(
    check: Any, what: str, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise ServerError(f"{what} not ready after {timeout_s} s")


def _http_status(url: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@dataclass
class Server:
    """One server process; subclasses know how to configure, start and check it."""

    name: str = "server"
    port: int = 0
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vg-srv-")))
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config files; called before every start."""

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.prepare()
        self.log_path = self.data_dir / f"{self.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        _wait(self.ready, f"{self.name} on port {self.port}", proc=self.proc)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Mosquitto(Server):
    """Mosquitto 2 with persistence; optional authenticated listener with password file + ACL."""

    name: str = "mosquitto"
    extra_config: str = ""

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        persist = self.data_dir / "persist"
        persist.mkdir(exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        base = (
            "per_listener_settings true\n"
            f"persistence true\npersistence_location {persist}/\nautosave_interval 1\n"
            "max_inflight_messages 0\nmax_queued_messages 0\n"
            "set_tcp_nodelay true\n"
        )
        if self.extra_config:
            body = base + self.extra_config.replace("{port}", str(self.port))
        else:
            body = base + f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        conf.write_text(body)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "mosquitto")
            for p in self.data_dir.rglob("*"):
                try:
                    shutil.chown(p, "mosquitto")
                except (OSError, LookupError):
                    pass

    def command(self) -> list[str]:
        return [_require("mosquitto"), "-c", str(self.data_dir / "mosquitto.conf")]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            # MQTT 3.1.1 CONNECT, clean session, client id "ready"; expect CONNACK 0x20.
            s.sendall(bytes.fromhex("101100044d5154540402003c0005") + b"ready")
            return s.recv(4)[:1] == b"\x20"


@dataclass
class VictoriaMetrics(Server):
    name: str = "victoria-metrics"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            _require("victoria-metrics"),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data_dir / 'vm'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=ERROR",
        ]

    def ready(self) -> bool:
        status, body = _http_status(f"{self.url}/health")
        return status == 200 and body.strip() == b"OK"


@dataclass
class InfluxDB1(Server):
    name: str = "influxdb"
    database: str = "vitalgate"
    rpc_port: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.rpc_port:
            self.rpc_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        d = self.data_dir
        (d / "influx.conf").write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            "  trace-logging-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  max-body-size = 0\n"
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
            '[logging]\n  level = "error"\n'
        )

    def command(self) -> list[str]:
        return [_require("influxd"), "run", "-config", str(self.data_dir / "influx.conf")]

    def ready(self) -> bool:
        status, _ = _http_status(f"{self.url}/ping")
        return status == 204

    def start(self) -> None:
        super().start()
        q = urllib.parse.quote(f'CREATE DATABASE "{self.database}"')
        status, body = _http_status(f"{self.url}/query?q={q}", method="POST")
        if status != 200:
            raise ServerError(f"influxdb CREATE DATABASE failed: {status} {body!r}")


#: Servers started by start_all in this process, so stop_all can reap their Popen objects.
_STARTED: list[Server] = []


def start_all(root: Path) -> dict[str, Any]:
    servers: dict[str, Server] = {
        "mosquitto": Mosquitto(data_dir=root / "mosquitto"),
        "victoria_metrics": VictoriaMetrics(data_dir=root / "vm"),
        "influxdb": InfluxDB1(data_dir=root / "influxdb"),
    }
    state: dict[str, Any] = {"root": str(root)}
    for key, srv in servers.items():
        srv.data_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            srv.start()
        except Exception:
            for started in servers.values():
                started.stop()
            raise
        print(
            f"[servers] started {srv.name} pid={srv.pid} on 127.0.0.1:{srv.port} "
            f"in {time.monotonic() - t0:.2f} s",
            flush=True,
        )
        state[key] = {"url": srv.url, "pid": srv.pid, "port": srv.port}
    _STARTED.extend(servers.values())
    return state


def stop_all(state: dict[str, Any]) -> None:
    for key in ("mosquitto", "victoria_metrics", "influxdb"):
        info = state.get(key)
        if not info:
            continue
        pid = int(info["pid"])
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            print(f"[servers] {key} pid={pid} already gone", flush=True)
            continue
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.killpg(pid, signal.SIGKILL)
        print(f"[servers] stopped {key} pid={pid}", flush=True)
    for srv in list(_STARTED):  # reap the children this process started (no zombie, no warning)
        if srv.proc is not None and srv.proc.pid in {
            int(i["pid"]) for i in state.values() if isinstance(i, dict)
        }:
            srv.stop()
            _STARTED.remove(srv)
    shutil.rmtree(state.get("root", ""), ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print("usage: python -m tests.support.servers start|stop STATE_FILE", file=sys.stderr)
        return 2
    state_file = Path(argv[1])
    if argv[0] == "start":
        root = Path(tempfile.mkdtemp(prefix="vitalgate-servers-"))
        os.chmod(root, 0o755)
        state = start_all(root)
        state_file.write_text(json.dumps(state, indent=2))
        return 0
    if not state_file.exists():
        print(f"[servers] no state file {state_file}: nothing to stop", flush=True)
        return 0
    stop_all(json.loads(state_file.read_text()))
    state_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
