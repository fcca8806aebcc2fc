"""The virtual radio: a bumble :class:`~bumble.link.LocalLink` with latency and vanishing devices.

bumble's ``LocalLink`` delivers every packet on the next loop iteration and knows no faults.
:class:`SimLink` adds what a gateway meets in a home:

* **latency** per sending controller (``set_latency``): every LE packet the controller sends
  (ACL data, LL control PDUs, advertising) is delivered ``latency_s`` later, in order;
* **vanishing** (``vanish`` / ``reappear``): all traffic to and from the controller is dropped
  without a disconnect, exactly like a device that walked out of range or whose battery died.
  A real controller notices the silence only when the link supervision timeout expires; the
  link plays that part: after ``supervision_timeout_s`` (a timer on the running loop) both ends
  of every connection of the vanished controller get a Disconnection Complete with reason 0x08
  (Connection Timeout). If the device reappears before the timer fires, the connection survives.

Advertising PDUs go only to controllers that scan or initiate a connection, which keeps
20 advertising peripherals cheap on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bumble import controller as bumble_controller
from bumble import core, hci, ll
from bumble.link import LocalLink

__all__ = ["CONNECTION_TIMEOUT", "SimController", "SimLink"]

_log = logging.getLogger(__name__)

#: HCI reason code 0x08, "Connection Timeout" (link supervision timeout).
CONNECTION_TIMEOUT = 0x08


class SimController(bumble_controller.Controller):
    """bumble's virtual controller, with LE Create Connection Cancel done as the spec says.

    bumble 0.0.236 answers the cancel command but keeps the connect pending and never reports
    its end, so a host waiting for a device that does not advertise hangs forever. Here the
    pending connect is dropped and an LE Connection Complete event with status 0x02 (Unknown
    Connection Identifier) follows, as Vol 4, Part E, 7.8.13 requires.
    """

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        event = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address.address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # the Command Complete goes out first (on return), the Connection Complete after it
        asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


@dataclass
class _DelayedLane:
    """In-order delayed delivery for one sending controller."""

    items: collections.deque[tuple[float, Callable[[], None]]] = field(
        default_factory=collections.deque
    )
    timer: asyncio.TimerHandle | None = None


class SimLink(LocalLink):
    """A bumble LocalLink with per-controller latency and vanishing controllers.

    Args:
        supervision_timeout_s: How long after a controller vanished its connections are
            declared lost (reason 0x08) on both ends. The Core spec allows 0.1-32 s; 2 s is
            a common value for sensors and the default here.
    """

    def __init__(self, *, supervision_timeout_s: float = 2.0) -> None:
        if supervision_timeout_s <= 0:
            raise ValueError(f"supervision_timeout_s must be > 0, got {supervision_timeout_s}")
        super().__init__()  # type: ignore[no-untyped-call]
        self.supervision_timeout_s = supervision_timeout_s
        self._latency_s: dict[bumble_controller.Controller, float] = {}
        self._lanes: dict[bumble_controller.Controller, _DelayedLane] = {}
        self._vanished: set[bumble_controller.Controller] = set()
        self._supervision_timers: dict[bumble_controller.Controller, asyncio.TimerHandle] = {}

    # ------------------------------------------------------------------ faults
    def set_latency(self, controller: bumble_controller.Controller, latency_s: float) -> None:
        """Delay every packet ``controller`` sends by ``latency_s`` seconds (0 = none)."""
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        if latency_s == 0:
            self._latency_s.pop(controller, None)
        else:
            self._latency_s[controller] = latency_s

    def latency_s(self, controller: bumble_controller.Controller) -> float:
        """The latency currently applied to packets sent by ``controller``."""
        return self._latency_s.get(controller, 0.0)

    def is_vanished(self, controller: bumble_controller.Controller) -> bool:
        return controller in self._vanished

    def vanish(self, controller: bumble_controller.Controller) -> None:
        """Drop all traffic to and from ``controller`` without a disconnect.

        Its open connections end with reason 0x08 on both sides after the supervision timeout,
        unless :meth:`reappear` comes first.
        """
        if controller in self._vanished:
            return
        self._vanished.add(controller)
        loop = asyncio.get_running_loop()
        self._supervision_timers[controller] = loop.call_later(
            self.supervision_timeout_s, self._supervision_timeout, controller
        )

    def reappear(self, controller: bumble_controller.Controller) -> None:
        """Deliver traffic to and from ``controller`` again."""
        self._vanished.discard(controller)
        timer = self._supervision_timers.pop(controller, None)
        if timer is not None:
            timer.cancel()

    def remove_controller(self, controller: bumble_controller.Controller) -> None:
        """Take ``controller`` off the air: its connections end (reason 0x08) on the peers."""
        self.reappear(controller)
        for connection in list(controller.le_connections.values()):
            peer = self._peer_of(connection)
            if peer is not None:
                peer_connection = peer.le_connections.get(connection.self_address)
                if peer_connection is not None:
                    peer.on_le_disconnected(peer_connection, CONNECTION_TIMEOUT)
            del controller.le_connections[connection.peer_address]
        self._latency_s.pop(controller, None)
        lane = self._lanes.pop(controller, None)
        if lane is not None and lane.timer is not None:
            lane.timer.cancel()
        if controller in self.controllers:
            super().remove_controller(controller)

    def close(self) -> None:
        """Cancel every pending timer (supervision timeouts, delayed packets)."""
        for timer in self._supervision_timers.values():
            timer.cancel()
        self._supervision_timers.clear()
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
        self._lanes.clear()

    # ------------------------------------------------------------------ LocalLink overrides
    def send_acl_data(
        self,
        sender_controller: bumble_controller.Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        destination = self.find_le_controller(destination_address)
        if destination is None or self._blocked(sender_controller, destination):
            return
        source_address = sender_controller.random_address
        self._deliver(
            sender_controller,
            lambda: destination.on_link_acl_data(source_address, transport, data),
        )

    def send_ll_control_pdu(
        self,
        sender_address: hci.Address,
        receiver_address: hci.Address,
        packet: ll.ControlPdu,
    ) -> None:
        receiver = self.find_le_controller(receiver_address)
        if receiver is None:
            raise core.InvalidArgumentError(
                f"Unable to find controller for address {receiver_address}"
            )
        sender = self.find_le_controller(sender_address)
        if sender is not None and self._blocked(sender, receiver):
            return
        self._deliver(sender, lambda: receiver.on_ll_control_pdu(sender_address, packet))

    def send_advertising_pdu(
        self,
        sender_controller: bumble_controller.Controller,
        packet: ll.AdvertisingPdu,
    ) -> None:
        if sender_controller in self._vanished:
            return
        is_connect = isinstance(packet, ll.ConnectInd)
        for receiver in list(self.controllers):
            if receiver is sender_controller or receiver in self._vanished:
                continue
            if not is_connect and not (
                receiver.le_scan_enable or receiver.pending_le_connection is not None
            ):
                continue
            self._deliver(
                sender_controller, functools.partial(receiver.on_ll_advertising_pdu, packet)
            )

    # ------------------------------------------------------------------ internals
    def _blocked(
        self, sender: bumble_controller.Controller, receiver: bumble_controller.Controller
    ) -> bool:
        return sender in self._vanished or receiver in self._vanished

    def _deliver(
        self, sender: bumble_controller.Controller | None, action: Callable[[], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        latency = 0.0 if sender is None else self._latency_s.get(sender, 0.0)
        lane = self._lanes.get(sender) if sender is not None else None
        if latency == 0.0 and (lane is None or not lane.items):
            loop.call_soon(action)
            return
        assert sender is not None
        if lane is None:
            lane = self._lanes[sender] = _DelayedLane()
        lane.items.append((loop.time() + latency, action))
        if lane.timer is None:
            self._arm(sender, lane)

    def _arm(self, sender: bumble_controller.Controller, lane: _DelayedLane) -> None:
        loop = asyncio.get_running_loop()
        due, _ = lane.items[0]
        lane.timer = loop.call_at(due, self._drain, sender, lane)

    def _drain(self, sender: bumble_controller.Controller, lane: _DelayedLane) -> None:
        lane.timer = None
        now = asyncio.get_running_loop().time()
        while lane.items and lane.items[0][0] <= now:
            _, action = lane.items.popleft()
            action()
        if lane.items:
            self._arm(sender, lane)

    def _peer_of(
        self, connection: bumble_controller.Connection
    ) -> bumble_controller.Controller | None:
        for candidate in self.controllers:
            if candidate is connection.controller:
                continue
            if connection.self_address in candidate.le_connections:
                peer_connection = candidate.le_connections[connection.self_address]
                if peer_connection.self_address == connection.peer_address:
                    return candidate
        return None

    def _supervision_timeout(self, controller: bumble_controller.Controller) -> None:
        self._supervision_timers.pop(controller, None)
        for connection in list(controller.le_connections.values()):
            peer = self._peer_of(connection)
            if peer is not None:
                peer_connection = peer.le_connections.get(connection.self_address)
                if peer_connection is not None:
                    peer.on_le_disconnected(peer_connection, CONNECTION_TIMEOUT)
            if connection.peer_address in controller.le_connections:
                controller.on_le_disconnected(connection, CONNECTION_TIMEOUT)
        _log.debug("supervision timeout for a vanished controller %s", controller.name)
