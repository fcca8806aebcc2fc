"""Passkey entry during pairing, without a simulation branch in the gateway.

bleak has no passkey API: on BlueZ a *system agent* (an ``org.bluez.Agent1`` object on D-Bus)
answers the controller's passkey requests. The gateway brings its own agent so no other tool is
needed. Which agent runs is resolved like bleak resolves its backends: through
:func:`get_platform_agent_type`, which the simulation (``vitalgate.firmware_sim``) points at its
own agent, exactly as it points bleak's default backend at the virtual radio.

Usage::

    async with get_platform_agent_type()(handler):
        await client.pair()

where ``handler(address, name)`` returns the passkey the user typed (or ``None`` to refuse).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

__all__ = ["PairingAgent", "PasskeyHandler", "get_platform_agent_type"]

#: Called with the device address and name; returns the 6-digit passkey, or None to refuse.
PasskeyHandler = Callable[[str, str], Awaitable[int | None]]


class PairingAgent(Protocol):
    """An agent answering passkey requests while it is entered."""

    def __init__(self, handler: PasskeyHandler) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def get_platform_agent_type() -> type[PairingAgent]:
    """The agent for this platform: BlueZ's Agent1 over D-Bus on Linux."""
    if sys.platform.startswith("linux"):
        from vitalgate.gateway.bluez_agent import BluezPairingAgent

        return BluezPairingAgent
    from vitalgate.gateway.bluez_agent import NoSystemAgent

    return NoSystemAgent
