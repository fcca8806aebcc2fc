"""deploy/mosquitto: TLS, the password file and the per-gateway ACL, on the real Mosquitto 2.

The broker runs the shipped ``vitalgate.conf`` and ``vitalgate.acl`` (only paths and ports are
templated, see support.py) with a CA, server and client certificates made at test time.
The last test removes the ACL file and shows that the cross-gateway test then fails: the ACL,
not something else, is what keeps gateway A out of gateway B's topics.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.deploy.conftest import server_dir
from tests.integration.deploy.pki import TestCA
from tests.integration.deploy.support import PASSWORDS, DeployedMosquitto, MqttTestClient

pytestmark = pytest.mark.servers

INGEST = "ingest@vitalgate"
SHARED = "$share/vitalgate-ingest/vitalgate/v1/+/readings/+"


def _client(
    broker: DeployedMosquitto, user: str, *, protocol: int = 5, suffix: str = ""
) -> MqttTestClient:
    c = MqttTestClient(
        broker.port,
        ca_file=broker.ca_file,
        client_id=f"{user}{suffix}-{uuid.uuid4().hex[:6]}",
        username=user,
        password=PASSWORDS[user],
        protocol=protocol,
    )
    reason = c.connect()
    assert not reason.is_failure, f"{user} refused: {reason}"
    return c


@pytest.fixture
def ingest(deployed_broker: DeployedMosquitto) -> Iterator[MqttTestClient]:
    c = _client(deployed_broker, INGEST)
    granted = c.subscribe(SHARED)
    assert [r.value for r in granted] == [1]
    try:
        yield c
    finally:
        c.close()


def assert_cross_gateway_publish_blocked(
    connect_gateway_a: Callable[[], MqttTestClient], subscriber: MqttTestClient
) -> None:
    """Gateway A's publish into gateway B's topics never reaches a subscriber, while A's own
    publish (the control, sent right after it) does.

    Mosquitto 2.0 acknowledges a denied PUBLISH (MQTT 5: reason 0x87 "Not authorized") and then
    closes the offending connection, so the control goes out on a new connection.
    """
    forged = f"forged-{uuid.uuid4().hex}".encode()
    own = f"own-{uuid.uuid4().hex}".encode()
    gw = connect_gateway_a()
    try:
        gw.publish("vitalgate/v1/gw-b/readings/blood_pressure", forged)
        gw.pump(lambda: gw.disconnected, 0.3)
    finally:
        gw.close()
    gw = connect_gateway_a()
    try:
        gw.publish("vitalgate/v1/gw-a/readings/blood_pressure", own)
    finally:
        gw.close()
    assert subscriber.pump(lambda: subscriber.received(own), 5), "the control never arrived"
    subscriber.pump(timeout_s=0.3)  # anything still in flight
    assert not subscriber.received(forged), "gateway A published into gateway B's topics"


def test_gateway_reaches_ingest_on_the_shared_subscription(
    deployed_broker: DeployedMosquitto, ingest: MqttTestClient
) -> None:
    gw = _client(deployed_broker, "gw-a")
    try:
        for topic in ("readings/cgm", "status", "alerts"):
            assert not gw.publish(f"vitalgate/v1/gw-a/{topic}", b"x").is_failure
        marker = uuid.uuid4().hex.encode()
        gw.publish("vitalgate/v1/gw-a/readings/glucose", marker)
        assert ingest.pump(lambda: ingest.received(marker), 5)
        assert ingest.messages[-1][0] == "vitalgate/v1/gw-a/readings/glucose"
    finally:
        gw.close()


@pytest.mark.parametrize("protocol", [5, 311], ids=["mqtt5", "mqtt311"])
def test_gateway_cannot_publish_into_another_gateways_topics(
    deployed_broker: DeployedMosquitto, ingest: MqttTestClient, protocol: int
) -> None:
    def gateway_a() -> MqttTestClient:
        return _client(deployed_broker, "gw-a", protocol=protocol)

    plain = _client(deployed_broker, INGEST, suffix="-plain")
    watcher = _client(deployed_broker, "ops@vitalgate")
    try:
        plain.subscribe("vitalgate/v1/+/readings/+")
        assert_cross_gateway_publish_blocked(gateway_a, ingest)
        assert_cross_gateway_publish_blocked(gateway_a, plain)
        # Nor into the status or dead-letter topics of anyone else.
        watcher.subscribe("vitalgate/v1/+/status")
        watcher.subscribe("vitalgate/v1/deadletter/+")
        for topic in ("vitalgate/v1/gw-b/status", "vitalgate/v1/deadletter/gw-b"):
            gw = gateway_a()
            gw.publish(topic, b"forged")
            gw.close()
        watcher.pump(timeout_s=0.3)
        assert not watcher.received(b"forged")
    finally:
        plain.close()
        watcher.close()


def test_client_certificate_identity_is_the_username(
    deployed_broker: DeployedMosquitto, ingest: MqttTestClient
) -> None:
    cert = deployed_broker.client_cert("gw-a")

    def gateway_a() -> MqttTestClient:
        gw = MqttTestClient(
            deployed_broker.cert_port,
            ca_file=deployed_broker.ca_file,
            client_id=f"gw-a-cert-{uuid.uuid4().hex[:6]}",
            cert=cert,
        )
        assert not gw.connect().is_failure
        return gw

    assert_cross_gateway_publish_blocked(gateway_a, ingest)


def test_services_get_only_their_topics(
    deployed_broker: DeployedMosquitto, ingest: MqttTestClient
) -> None:
    # The ingest account may dead-letter but not inject readings for a gateway.
    rogue = _client(deployed_broker, INGEST, suffix="-rogue")
    ops_view = _client(deployed_broker, "dashboard@vitalgate")
    try:
        marker = uuid.uuid4().hex.encode()
        rogue.publish("vitalgate/v1/gw-a/readings/cgm", marker)
        ingest.pump(timeout_s=0.5)
        assert rogue.pump(lambda: rogue.disconnected, 2)  # Mosquitto drops a denied publisher
        assert not ingest.received(marker)
        # The dashboard account subscribes to readings in vain (denial is silent).
        ops_view.subscribe("vitalgate/v1/+/readings/+")
        gw = _client(deployed_broker, "gw-b")
        try:
            marker2 = uuid.uuid4().hex.encode()
            gw.publish("vitalgate/v1/gw-b/readings/cgm", marker2)
            assert ingest.pump(lambda: ingest.received(marker2), 5)
            ops_view.pump(timeout_s=0.3)
            assert not ops_view.received(marker2)
        finally:
            gw.close()
    finally:
        rogue.close()
        ops_view.close()


def test_unauthenticated_and_untrusted_clients_are_refused(
    deployed_broker: DeployedMosquitto, tmp_path: Path
) -> None:
    anonymous = MqttTestClient(
        deployed_broker.port, ca_file=deployed_broker.ca_file, client_id="anon"
    )
    assert anonymous.connect().is_failure
    wrong = MqttTestClient(
        deployed_broker.port,
        ca_file=deployed_broker.ca_file,
        client_id="gw-a-wrong",
        username="gw-a",
        password="not-the-password",
    )
    assert wrong.connect().is_failure
    # The certificate listener: no certificate, or one from another CA, fails the handshake.
    no_cert = MqttTestClient(
        deployed_broker.cert_port, ca_file=deployed_broker.ca_file, client_id="nocert"
    )
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        no_cert.connect()
    rogue_ca = TestCA(tmp_path / "rogue")
    forged = MqttTestClient(
        deployed_broker.cert_port,
        ca_file=deployed_broker.ca_file,
        client_id="forged",
        cert=rogue_ca.issue("gw-a"),
    )
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        forged.connect()
    # There is no plain-text listener: a client that does not speak TLS gets nothing.
    with socket.create_connection(("127.0.0.1", deployed_broker.port), timeout=2) as s:
        s.sendall(bytes.fromhex("101100044d5154540402003c0005") + b"plain")
        s.settimeout(2)
        try:
            answer = s.recv(4)
        except (TimeoutError, ConnectionResetError):
            answer = b""
    assert answer[:1] != b"\x20"


def test_the_acl_is_the_control() -> None:
    """With the ACL file removed, the cross-gateway test fails: gateway A's forged message
    reaches the ingest's subscription."""
    root = server_dir("mosquitto-no-acl")
    broker = DeployedMosquitto(data_dir=root, with_acl=False)
    try:
        broker.start()
        conf = (root / "mosquitto.conf").read_text()
        assert "acl_file" not in conf and "password_file" in conf
        subscriber = _client(broker, INGEST)
        subscriber.subscribe(SHARED)
        try:
            with pytest.raises(AssertionError, match="gateway A published into gateway B"):
                assert_cross_gateway_publish_blocked(lambda: _client(broker, "gw-a"), subscriber)
        finally:
            subscriber.close()
    finally:
        broker.cleanup()
