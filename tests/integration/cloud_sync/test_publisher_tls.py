"""TLS with a client certificate (a test CA made at test time) and username/password, against a
Mosquitto with a TLS listener and a password-file listener."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.cloud_sync.mqtt_support import Collector, eventually
from tests.support.servers import Mosquitto, free_port
from tests.unit.cloud_sync.test_schema import sample_readings
from vitalgate.cloud_sync.mqtt import MqttConfig, MqttConnection, MqttError
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher

pytestmark = pytest.mark.servers


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("vitalgate test CA", ca_key, None, ca_key, ca=True)
    paths = Pki(
        *(
            d / n
            for n in (
                "ca.pem",
                "server.pem",
                "server.key",
                "gw.pem",
                "gw.key",
                "rogue.pem",
                "rogue.key",
            )
        )
    )
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, cn, server in (
        (paths.server_cert, paths.server_key, "127.0.0.1", True),
        (paths.client_cert, paths.client_key, "gw-tls", False),
    ):
        k = _key()
        c = _cert(cn, k, ca.subject, ca_key, server=server)
        cert_path.write_bytes(c.public_bytes(serialization.Encoding.PEM))
        _write_key(k, key_path)
    # A client certificate from a CA the broker does not trust.
    rogue_ca_key = _key()
    rogue_key = _key()
    rogue = _cert("gw-tls", rogue_key, x509.Name([]), rogue_ca_key)
    paths.rogue_cert.write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    _write_key(rogue_key, paths.rogue_key)
    return paths


@dataclass
class SecureBroker:
    server: Mosquitto
    pki: Pki
    tls_url: str
    auth_url: str


@pytest.fixture
def secure_broker() -> Iterator[SecureBroker]:
    server = Mosquitto()  # its own temp dir, readable by the mosquitto user
    pki = make_pki(server.data_dir / "tls")
    passwd = server.data_dir / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwd), "gw-auth", "s3cret-pw"],
        check=True,
        capture_output=True,
    )
    tls_port, auth_port = free_port(), free_port()
    server.extra_config = (
        "listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"listener {tls_port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        "require_certificate true\nuse_identity_as_username true\n"
        f"listener {auth_port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
    )
    server.start()
    try:
        yield SecureBroker(
            server, pki, f"mqtts://127.0.0.1:{tls_port}", f"mqtt://127.0.0.1:{auth_port}"
        )
    finally:
        server.cleanup()


async def _deliver(config: MqttConfig, plain_url: str, tmp_path: Path) -> None:
    readings = sample_readings(700)
    with (
        Collector(plain_url, client_id=f"col-{config.client_id}", gateway=config.client_id) as col,
        Outbox(tmp_path / f"{config.client_id}.db") as ob,
    ):
        ob.add(readings)
        pub = Publisher(config, ob, batching=Batching(max_readings=100, linger_s=0.01))
        task = asyncio.create_task(pub.run())
        try:
            await asyncio.wait_for(pub.wait_drained(), 30)
            await eventually(lambda: col.count_distinct() == 700, 10, "every reading")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not col.errors


async def test_tls_with_client_certificate(secure_broker: SecureBroker, tmp_path: Path) -> None:
    pki = secure_broker.pki
    config = MqttConfig(
        url=secure_broker.tls_url,
        client_id="gw-tls",
        ca_file=pki.ca,
        cert_file=pki.client_cert,
        key_file=pki.client_key,
    )
    await _deliver(config, secure_broker.server.url, tmp_path)


@pytest.mark.parametrize("variant", ["no-client-cert", "untrusted-client-cert", "wrong-ca"])
async def test_tls_refuses_what_it_should(secure_broker: SecureBroker, variant: str) -> None:
    pki = secure_broker.pki
    kwargs: dict[str, Path] = {"ca_file": pki.ca}
    if variant == "untrusted-client-cert":
        kwargs |= {"cert_file": pki.rogue_cert, "key_file": pki.rogue_key}
    if variant == "wrong-ca":  # the client does not trust the broker's certificate
        kwargs = {
            "ca_file": pki.rogue_cert,
            "cert_file": pki.client_cert,
            "key_file": pki.client_key,
        }
    config = MqttConfig(
        url=secure_broker.tls_url,
        client_id="gw-tls",
        connect_timeout_s=3,
        ca_file=kwargs.get("ca_file"),
        cert_file=kwargs.get("cert_file"),
        key_file=kwargs.get("key_file"),
    )
    with pytest.raises(MqttError):
        async with MqttConnection(config) as conn:
            await conn.publish("vitalgate/v1/gw-tls/status", b"{}")


async def test_username_password(secure_broker: SecureBroker, tmp_path: Path) -> None:
    good = MqttConfig(
        url=secure_broker.auth_url, client_id="gw-auth", username="gw-auth", password="s3cret-pw"
    )
    await _deliver(good, secure_broker.server.url, tmp_path)
    protocols: tuple[Literal[5, 311], ...] = (5, 311)
    for protocol in protocols:
        bad = MqttConfig(
            url=secure_broker.auth_url,
            client_id="gw-auth",
            username="gw-auth",
            password="wrong",
            protocol=protocol,
        )
        with pytest.raises(MqttError, match="refused") as info:
            async with MqttConnection(bad):
                pass
        assert info.value.reason_code in (0x86, 0x87, 4, 5)
