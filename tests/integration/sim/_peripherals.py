"""Tiny GATT peripherals used only by the backend tests (not health devices)."""

from __future__ import annotations

from bumble.gatt import Characteristic, Service

from vitalgate.firmware_sim.peripheral import SimAttError, SimPeripheral

ECHO_SERVICE = "7d2e0001-5f2b-4b7e-9c1a-2f6a8e9d0c11"
VALUE_CHAR = "7d2e0002-5f2b-4b7e-9c1a-2f6a8e9d0c11"
STREAM_CHAR = "7d2e0003-5f2b-4b7e-9c1a-2f6a8e9d0c11"
EVENTS_CHAR = "7d2e0004-5f2b-4b7e-9c1a-2f6a8e9d0c11"
SECRET_CHAR = "7d2e0005-5f2b-4b7e-9c1a-2f6a8e9d0c11"
FAULTY_CHAR = "7d2e0006-5f2b-4b7e-9c1a-2f6a8e9d0c11"
SECRET_VALUE = b"bonded-only"
FAULTY_ATT_CODE = 0x80


class EchoPeripheral(SimPeripheral):
    """A value that echoes writes, a notify+indicate stream, an indicate-only event channel,
    an encryption-only characteristic (readable and notifiable) and one that answers 0x80."""

    def __init__(
        self,
        *,
        seed: int,
        name: str | None = None,
        passkey: int | None = 246810,
        service_data: bytes = b"\x01\x02",
        advertising_interval_ms: float = 20.0,
    ) -> None:
        super().__init__(
            name=name or f"Echo-{seed}",
            seed=seed,
            service_uuids=[ECHO_SERVICE],
            service_data={ECHO_SERVICE: service_data},
            manufacturer_data={0xFFFF: b"\xca\xfe"},
            passkey=passkey,
            advertising_interval_ms=advertising_interval_ms,
        )
        self.value = b"initial"
        self.writes: list[bytes] = []
        self.subscriptions: list[tuple[str, bool, bool]] = []
        self.disconnect_reasons: list[int] = []
        self.encryption_changes: list[bool] = []

    def build_services(self) -> list[Service]:
        self.value_char = self.make_characteristic(
            VALUE_CHAR, read=self._read_value, write=self._write_value, write_without_response=True
        )
        self.stream_char = self.make_characteristic(STREAM_CHAR, notify=True, indicate=True)
        self.events_char = self.make_characteristic(EVENTS_CHAR, indicate=True)
        self.secret_char = self.make_characteristic(
            SECRET_CHAR, read=lambda: SECRET_VALUE, notify=True, encrypted=True
        )
        self.faulty_char = self.make_characteristic(FAULTY_CHAR, read=self._read_faulty)
        return [
            Service(
                ECHO_SERVICE,
                [
                    self.value_char,
                    self.stream_char,
                    self.events_char,
                    self.secret_char,
                    self.faulty_char,
                ],
            )
        ]

    def _read_value(self) -> bytes:
        return self.value

    async def _write_value(self, data: bytes) -> None:
        self.writes.append(data)
        self.value = data

    def _read_faulty(self) -> bytes:
        raise SimAttError(FAULTY_ATT_CODE, "simulated application error")

    def on_subscription(
        self, characteristic: Characteristic[bytes], notify: bool, indicate: bool
    ) -> None:
        self.subscriptions.append((str(characteristic.uuid), notify, indicate))

    def on_disconnected(self, reason: int) -> None:
        self.disconnect_reasons.append(reason)

    def on_encryption_changed(self, encrypted: bool) -> None:
        self.encryption_changes.append(encrypted)


class HeartRateLike(SimPeripheral):
    """A peripheral advertising a 16-bit SIG service (for UUID normalisation tests)."""

    def __init__(self, *, seed: int) -> None:
        super().__init__(
            name=f"HR-{seed}", seed=seed, service_uuids=["180D"], advertising_interval_ms=20.0
        )

    def build_services(self) -> list[Service]:
        self.measurement = self.make_characteristic("2A37", notify=True)
        return [Service("180D", [self.measurement])]
