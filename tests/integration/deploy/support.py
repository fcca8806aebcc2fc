"""Servers started from the production configs in deploy/, templated with test-time paths/ports.

:func:`mosquitto_conf` turns ``deploy/mosquitto/vitalgate.conf`` into a runnable config by
replacing the production paths and ports only (every other line is used as written) and fails
if a production path is left over, so the file under test stays the file we ship.
:class:`DeployedMosquitto` runs it (plus what Debian's main ``mosquitto.conf`` sets) with the
shipped ACL, a password file made with ``mosquitto_passwd`` and a test PKI.
:class:`DeployedInfluxDB1` does the same for ``deploy/influxdb/influxdb.conf`` (HTTPS, auth).

:class:`MqttTestClient` is a small synchronous paho client (no network thread: it pumps
``loop()`` itself) for asserting who may publish and subscribe what.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.integration.deploy.pki import CertFiles, TestCA
from tests.support.servers import InfluxDB1, Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"

PASSWORDS = {
    "gw-a": "pw-gateway-a",
    "gw-b": "pw-gateway-b",
    "ingest@vitalgate": "pw-ingest",
    "dashboard@vitalgate": "pw-dashboard",
    "ops@vitalgate": "pw-ops",
}


def _replace_exact(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(f"deploy config no longer contains {old!r}: update the test")
    return text.replace(old, new)


def mosquitto_conf(
    *,
    password_port: int,
    cert_port: int,
    server: CertFiles,
    ca_file: Path,
    password_file: Path,
    acl_file: Path | None,
) -> str:
    """deploy/mosquitto/vitalgate.conf with test paths and ports (``acl_file=None`` drops it)."""
    text = (DEPLOY / "mosquitto" / "vitalgate.conf").read_text()
    text = _replace_exact(text, "\nlistener 8883\n", f"\nlistener {password_port} 127.0.0.1\n")
    text = _replace_exact(text, "\nlistener 8884\n", f"\nlistener {cert_port} 127.0.0.1\n")
    text = _replace_exact(text, "/etc/mosquitto/certs/server.crt", str(server.cert))
    text = _replace_exact(text, "/etc/mosquitto/certs/server.key", str(server.key))
    text = _replace_exact(text, "/etc/mosquitto/ca_certificates/vitalgate-ca.crt", str(ca_file))
    text = _replace_exact(text, "/etc/mosquitto/vitalgate.passwd", str(password_file))
    if acl_file is None:
        text = re.sub(r"^acl_file .*\n", "", text, flags=re.M)
    else:
        text = _replace_exact(text, "/etc/mosquitto/vitalgate.acl", str(acl_file))
    left = re.findall(r"/etc/\S+", re.sub(r"#.*", "", text))
    if left:
        raise AssertionError(f"production paths left in the templated config: {left}")
    return text


@dataclass
class DeployedMosquitto(Mosquitto):
    """Mosquitto running deploy/mosquitto/vitalgate.conf + vitalgate.acl with a test PKI."""

    name: str = "mosquitto-deployed"
    cert_port: int = 0
    with_acl: bool = True
    passwords: dict[str, str] = field(default_factory=lambda: dict(PASSWORDS))
    ca: TestCA | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.cert_port:
            self.cert_port = free_port()
        self.ca = TestCA(self.data_dir / "pki")
        self.server_cert = self.ca.issue("localhost", server=True, stem="server")

    @property
    def ca_file(self) -> Path:
        assert self.ca is not None
        return self.ca.cert_path

    def client_cert(self, common_name: str) -> CertFiles:
        assert self.ca is not None
        return self.ca.issue(common_name)

    def prepare(self) -> None:
        d = self.data_dir
        persist = d / "persist"
        persist.mkdir(exist_ok=True)
        pwfile = d / "vitalgate.passwd"
        pwfile.unlink(missing_ok=True)
        for i, (user, password) in enumerate(self.passwords.items()):
            flags = ["-c", "-b"] if i == 0 else ["-b"]
            subprocess.run(
                ["mosquitto_passwd", *flags, str(pwfile), user, password],
                check=True,
                capture_output=True,
                timeout=30,
            )
        acl = d / "vitalgate.acl"
        acl.write_text((DEPLOY / "mosquitto" / "vitalgate.acl").read_text())
        # What Debian's /etc/mosquitto/mosquitto.conf sets before including conf.d/.
        debian = f"persistence true\npersistence_location {persist}/\nlog_dest stdout\n"
        body = mosquitto_conf(
            password_port=self.port,
            cert_port=self.cert_port,
            server=self.server_cert,
            ca_file=self.ca_file,
            password_file=pwfile,
            acl_file=acl if self.with_acl else None,
        )
        (d / "mosquitto.conf").write_text(debian + body)
        super_chown(d)

    def ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            s.sendall(bytes.fromhex("101100044d5154540402003c0005") + b"ready")
            return s.recv(4)[:1] == b"\x20"  # a CONNACK (refused: no credentials) = up


def super_chown(directory: Path) -> None:
    """Give the tree to the mosquitto user (Mosquitto drops root privileges to it)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return
    shutil.chown(directory, "mosquitto")
    for p in directory.rglob("*"):
        try:
            shutil.chown(p, "mosquitto")
        except (OSError, LookupError):
            pass


class MqttTestClient:
    """A synchronous paho client that pumps its own network loop (no thread)."""

    def __init__(
        self,
        port: int,
        *,
        ca_file: Path,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        cert: CertFiles | None = None,
        protocol: int = 5,
    ) -> None:
        self.port = port
        self.protocol = protocol
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if protocol == 5 else MQTTProtocolVersion.MQTTv311,
        )
        self.client.tls_set(
            ca_certs=str(ca_file),
            certfile=None if cert is None else str(cert.cert),
            keyfile=None if cert is None else str(cert.key),
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.disconnected = False
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason

    def _on_disconnect(self, *_args: Any) -> None:
        self.disconnected = True

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        self.subacks[mid] = reasons

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self.pubacks[mid] = reason

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        self.messages.append((msg.topic, bytes(msg.payload)))

    def pump(self, until: Any = None, timeout_s: float = 5.0) -> bool:
        """Run the network loop until ``until()`` is true (or for ``timeout_s`` if None)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until is not None and until():
                return True
            if self.client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                if self.disconnected and until is None:
                    return False
                time.sleep(0.05)
        return bool(until is not None and until())

    def connect(self) -> ReasonCode:
        """Connect; returns the CONNACK reason (raises if the TLS handshake fails)."""
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        if not self.pump(lambda: self.connack is not None or self.disconnected, 10):
            raise TimeoutError("no CONNACK")
        if self.connack is None:
            raise ConnectionError("the broker closed the connection without a CONNACK")
        return self.connack

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        if not self.pump(lambda: mid in self.subacks, 10):
            raise TimeoutError(f"no SUBACK for {topic_filter}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        if not self.pump(lambda: info.mid in self.pubacks or self.disconnected, 10):
            raise TimeoutError(f"no PUBACK for {topic}")
        if info.mid not in self.pubacks:
            raise ConnectionError(f"disconnected while publishing to {topic}")
        return self.pubacks[info.mid]

    def received(self, payload: bytes) -> bool:
        return any(p == payload for _, p in self.messages)

    def close(self) -> None:
        if not self.disconnected:
            self.client.disconnect()
            self.pump(lambda: self.disconnected, 2)


@dataclass
class DeployedInfluxDB1(InfluxDB1):
    """InfluxDB 1.x running deploy/influxdb/influxdb.conf (HTTPS, authentication on)."""

    name: str = "influxdb-deployed"
    ca: TestCA | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ca = TestCA(self.data_dir / "pki")
        self.server_cert = self.ca.issue("localhost", server=True, stem="server")

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca_file(self) -> Path:
        assert self.ca is not None
        return self.ca.cert_path

    def prepare(self) -> None:
        d = self.data_dir
        text = (DEPLOY / "influxdb" / "influxdb.conf").read_text()
        for old, new in (
            ('"/var/lib/influxdb/meta"', f'"{d}/meta"'),
            ('"/var/lib/influxdb/data"', f'"{d}/data"'),
            ('"/var/lib/influxdb/wal"', f'"{d}/wal"'),
            ('bind-address = "127.0.0.1:8088"', f'bind-address = "127.0.0.1:{self.rpc_port}"'),
            ('bind-address = ":8086"', f'bind-address = "127.0.0.1:{self.port}"'),
            ('"/etc/influxdb/tls/server.crt"', f'"{self.server_cert.cert}"'),
            ('"/etc/influxdb/tls/server.key"', f'"{self.server_cert.key}"'),
        ):
            text = _replace_exact(text, old, new)
        left = re.findall(r'"/(?:etc|var)/\S+"', re.sub(r"#.*", "", text))
        if left:
            raise AssertionError(f"production paths left in the templated config: {left}")
        (d / "influx.conf").write_text(text)

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2, context=self._ssl()) as resp:
                return int(resp.status) == 204
        except urllib.error.HTTPError as exc:
            return int(exc.code) == 204

    def start(self) -> None:
        # No CREATE DATABASE here: deploy/influxdb/setup-influxdb1.sh does that, as in production.
        super(InfluxDB1, self).start()

    def query(self, q: str, *, user: str, password: str, db: str = "") -> tuple[int, bytes]:
        fields = {"q": q}
        if db:
            fields["db"] = db
        req = urllib.request.Request(
            f"{self.url}/query", data=urllib.parse.urlencode(fields).encode(), method="POST"
        )
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=5, context=self._ssl()) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
