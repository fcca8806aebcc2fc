"""MQTT: TLS with client certificates and the per-gateway ACL of deploy/mosquitto, both ways.

The broker runs the shipped ``deploy/mosquitto/vitalgate.conf`` + ``vitalgate.acl`` (paths and
ports templated by ``tests.integration.deploy.support``) with a CA, server and client
certificates made at test time. Every check runs against two brokers: the shipped config
(``with ACL``: the attack is blocked) and the same config with the ``acl_file`` line removed
(``without ACL``: the same attack gets through). The second half proves the ACL is the control
that matters, so removing it from the deployment makes this test fail.

Clients authenticate on the certificate listener: the certificate's CN is the username, so
gateway ``gw-a`` holds a certificate for ``gw-a`` and nothing else.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.deploy.conftest import server_dir
from tests.integration.deploy.pki import TestCA
from tests.integration.deploy.support import DeployedMosquitto, MqttTestClient

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module", params=[True, False], ids=["with-acl", "without-acl"])
def broker(request: pytest.FixtureRequest) -> Iterator[DeployedMosquitto]:
    b = DeployedMosquitto(data_dir=server_dir("security-mqtt"), with_acl=request.param)
    try:
        b.start()
        conf = (b.data_dir / "mosquitto.conf").read_text()
        assert ("acl_file" in conf) is request.param
        assert "require_certificate true" in conf and "allow_anonymous false" in conf
        yield b
    finally:
        b.cleanup()


def _with_acl(broker: DeployedMosquitto) -> bool:
    return broker.with_acl


def connect_cert(broker: DeployedMosquitto, common_name: str) -> MqttTestClient:
    """A client on the certificate listener authenticated by a certificate for ``common_name``."""
    c = MqttTestClient(
        broker.cert_port,
        ca_file=broker.ca_file,
        client_id=f"{common_name}-{uuid.uuid4().hex[:6]}",
        cert=broker.client_cert(common_name),
    )
    reason = c.connect()
    assert not reason.is_failure, f"{common_name} refused: {reason}"
    return c


def _delivered(
    broker: DeployedMosquitto, publisher: str, topic: str, reader: str, reader_filter: str
) -> bool:
    """Does a QoS 1 message ``publisher`` sends to ``topic`` reach ``reader``'s subscription?"""
    sub = connect_cert(broker, reader)
    try:
        sub.subscribe(reader_filter)
        marker = f"m-{uuid.uuid4().hex}".encode()
        pub = connect_cert(broker, publisher)
        try:
            pub.publish(topic, marker)
            pub.pump(lambda: pub.disconnected, 0.2)
        finally:
            pub.close()
        return sub.pump(lambda: sub.received(marker), 1.5)
    finally:
        sub.close()


def test_gateway_publishes_its_own_readings(broker: DeployedMosquitto) -> None:
    """The control case: allowed with and without the ACL."""
    assert _delivered(
        broker,
        "gw-a",
        "vitalgate/v1/gw-a/readings/glucose",
        "ingest@vitalgate",
        "vitalgate/v1/+/readings/+",
    )


def test_gateway_cannot_publish_into_another_gateways_readings(broker: DeployedMosquitto) -> None:
    got_through = _delivered(
        broker,
        "gw-a",
        "vitalgate/v1/gw-b/readings/glucose",
        "ingest@vitalgate",
        "vitalgate/v1/+/readings/+",
    )
    assert got_through is not _with_acl(broker), (
        "with the ACL gateway A must not reach gateway B's topic; without it, it does "
        f"(got_through={got_through}, acl={_with_acl(broker)})"
    )


def test_gateway_cannot_read_another_gateways_readings(broker: DeployedMosquitto) -> None:
    """Confidentiality: one household's gateway never sees another household's health data."""
    got_through = _delivered(
        broker,
        "gw-b",
        "vitalgate/v1/gw-b/readings/blood_pressure",
        "gw-a",
        "vitalgate/v1/+/readings/+",
    )
    assert got_through is not _with_acl(broker)


def test_gateway_cannot_forge_dead_letters_or_status(broker: DeployedMosquitto) -> None:
    for topic, watch in (
        ("vitalgate/v1/deadletter/gw-b", "vitalgate/v1/deadletter/+"),
        ("vitalgate/v1/gw-b/status", "vitalgate/v1/+/status"),
    ):
        got_through = _delivered(broker, "gw-a", topic, "ops@vitalgate", watch)
        assert got_through is not _with_acl(broker), topic


def test_a_service_account_cannot_publish_readings(broker: DeployedMosquitto) -> None:
    """The dashboard account is read-only: it cannot inject readings for any gateway."""
    got_through = _delivered(
        broker,
        "dashboard@vitalgate",
        "vitalgate/v1/gw-a/readings/glucose",
        "ingest@vitalgate",
        "vitalgate/v1/+/readings/+",
    )
    assert got_through is not _with_acl(broker)


def test_certificate_listener_refuses_missing_and_foreign_certificates(
    broker: DeployedMosquitto, tmp_path: Path
) -> None:
    """TLS client authentication holds regardless of the ACL."""
    ctx = ssl.create_default_context(cafile=str(broker.ca_file))
    with socket.create_connection(("127.0.0.1", broker.cert_port), timeout=3) as raw:
        refused = False
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            try:
                s.sendall(bytes.fromhex("101100044d5154540402003c0005") + b"nocrt")
                refused = s.recv(4)[:1] != b"\x20"
            finally:
                s.close()
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, TimeoutError):
            refused = True
        assert refused, "the certificate listener let a client without a certificate in"
    rogue = TestCA(tmp_path / "rogue", name="rogue CA").issue("gw-b")
    c = MqttTestClient(broker.cert_port, ca_file=broker.ca_file, client_id="rogue-gw-b", cert=rogue)
    try:
        try:
            reason = c.connect()
            refused = reason.is_failure
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            refused = True
        assert refused, "a certificate from another CA was accepted"
    finally:
        sock = c.client.socket()
        if sock is not None:
            sock.close()


def test_plaintext_is_refused(broker: DeployedMosquitto) -> None:
    """No listener speaks MQTT without TLS: a plaintext CONNECT gets no CONNACK."""
    for port in (broker.port, broker.cert_port):
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(bytes.fromhex("101100044d5154540402003c0005") + b"plain")
            try:
                answer = s.recv(4)
            except (TimeoutError, ConnectionResetError):
                answer = b""
            assert answer[:1] != b"\x20", f"port {port} answered plaintext MQTT"
