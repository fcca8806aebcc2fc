"""The gateway's own BlueZ pairing agent: ``org.bluez.Agent1`` over D-Bus with dbus-fast.

On a Raspberry Pi the controller asks the registered agent for the passkey the user reads off
the device. :class:`BluezPairingAgent` exports an Agent1 object, registers it with
``org.bluez.AgentManager1`` (capability ``KeyboardOnly``: the gateway can type a passkey but
shows none) as the default agent, and answers ``RequestPasskey`` by calling the handler. The
agent lives while the ``async with`` block runs. dbus-fast is the optional extra ``bluez``
(``pip install vitalgate[bluez]``); it is imported only when the agent starts.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures ("o",
"u") from the methods' real annotations.
"""

import logging
from types import TracebackType
from typing import Any, Self

from vitalgate.errors import DeviceError
from vitalgate.gateway.agent import PasskeyHandler

__all__ = ["AGENT_PATH", "BluezPairingAgent", "NoSystemAgent"]

_log = logging.getLogger(__name__)

AGENT_PATH = "/org/vitalgate/agent"
_CAPABILITY = "KeyboardOnly"


def _device_address(path: str) -> str:
    """``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF`` -> ``AA:BB:CC:DD:EE:FF``."""
    tail = path.rsplit("/", 1)[-1]
    return tail.removeprefix("dev_").replace("_", ":")


class BluezPairingAgent:
    """An org.bluez.Agent1 answering passkey requests while entered."""

    def __init__(self, handler: PasskeyHandler) -> None:
        self._handler = handler
        self._bus: Any = None

    async def __aenter__(self) -> Self:
        try:
            from dbus_fast import BusType, DBusError
            from dbus_fast.aio import MessageBus
            from dbus_fast.service import ServiceInterface, method
        except ImportError as exc:
            raise DeviceError(
                "passkey pairing on Linux needs dbus-fast: pip install 'vitalgate[bluez]'"
            ) from exc

        handler = self._handler
        bus_holder = self

        class Agent(ServiceInterface):
            def __init__(self) -> None:
                super().__init__("org.bluez.Agent1")

            @method()
            def Release(self) -> None:
                _log.debug("agent released by BlueZ")

            @method()
            async def RequestPasskey(self, device: "o") -> "u":  # type: ignore[name-defined]  # noqa: F821
                address = _device_address(device)
                name = await bus_holder._device_name(device)
                passkey = await handler(address, name)
                if passkey is None:
                    raise DBusError("org.bluez.Error.Rejected", "passkey entry refused")
                return int(passkey)

            @method()
            def RequestConfirmation(self, device: "o", passkey: "u") -> None:  # type: ignore[name-defined]  # noqa: F821
                raise DBusError("org.bluez.Error.Rejected", "confirmation not supported")

            @method()
            def RequestAuthorization(self, device: "o") -> None:  # type: ignore[name-defined]  # noqa: F821
                raise DBusError("org.bluez.Error.Rejected", "authorization not supported")

            @method()
            def AuthorizeService(self, device: "o", uuid: "s") -> None:  # type: ignore[name-defined]  # noqa: F821
                return None

            @method()
            def Cancel(self) -> None:
                _log.info("pairing cancelled by BlueZ")

        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except (OSError, DBusError) as exc:
            raise DeviceError(
                f"cannot reach the system D-Bus (is bluetoothd running?): {exc}"
            ) from exc
        self._bus = bus
        bus.export(AGENT_PATH, Agent())
        try:
            introspection = await bus.introspect("org.bluez", "/org/bluez")
            proxy = bus.get_proxy_object("org.bluez", "/org/bluez", introspection)
            manager: Any = proxy.get_interface("org.bluez.AgentManager1")
            await manager.call_register_agent(AGENT_PATH, _CAPABILITY)
            await manager.call_request_default_agent(AGENT_PATH)
        except DBusError as exc:
            bus.disconnect()
            self._bus = None
            raise DeviceError(f"BlueZ refused the pairing agent: {exc}") from exc
        return self

    async def _device_name(self, path: str) -> str:
        try:
            introspection = await self._bus.introspect("org.bluez", path)
            proxy = self._bus.get_proxy_object("org.bluez", path, introspection)
            props = proxy.get_interface("org.freedesktop.DBus.Properties")
            variant = await props.call_get("org.bluez.Device1", "Alias")
            return str(variant.value)
        except Exception:  # a name is only for display: never fail pairing over it
            return ""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        bus, self._bus = self._bus, None
        if bus is None:
            return
        try:
            from dbus_fast import DBusError

            introspection = await bus.introspect("org.bluez", "/org/bluez")
            proxy = bus.get_proxy_object("org.bluez", "/org/bluez", introspection)
            manager: Any = proxy.get_interface("org.bluez.AgentManager1")
            await manager.call_unregister_agent(AGENT_PATH)
        except (DBusError, OSError) as err:
            _log.debug("unregistering the agent failed: %s", err)
        finally:
            bus.disconnect()


class NoSystemAgent:
    """The agent on platforms without BlueZ: passkey pairing is not available."""

    def __init__(self, handler: PasskeyHandler) -> None:
        self._handler = handler

    async def __aenter__(self) -> Self:
        raise DeviceError(
            "passkey pairing needs BlueZ (Linux); pair the device with the operating system's "
            "Bluetooth settings, then register it with `vitalgate pair --address ...`"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
