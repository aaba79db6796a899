"""The PocketPaw bridge: forwards PocketPaw's agent lifecycle to the pocketpaw-status daemon.

PocketPaw publishes its lifecycle on its message bus as ``SystemEvent(event_type, data)``, with the names and payload
fields the daemon's protocol uses (protocol/README.md), so every system event is forwarded unchanged; the daemon reads
what it needs and ignores the rest. Call ``bridge()`` once inside PocketPaw's process, after its bus exists::

    from pocketpaw_status.pocketpaw import bridge

    status = bridge()

Forwarding never blocks PocketPaw's event loop and never raises into it: ``StatusEmitter.emit`` only queues.
"""

from typing import Any, Optional

from . import StatusEmitter

__all__ = ["bridge", "forwarder"]


def forwarder(status: StatusEmitter) -> Any:
    """The bus subscriber: an async callable taking one system event, as ``subscribe_system`` expects."""

    async def forward(event: Any) -> None:
        data = getattr(event, "data", None)
        payload = dict(data) if isinstance(data, dict) else {}
        payload["type"] = getattr(event, "event_type", None)
        status.emit(payload)  # returns at once, never raises

    return forward


def bridge(
    bus: Optional[Any] = None,
    emitter: Optional[StatusEmitter] = None,
    agent: str = "pocketpaw",
    socket_path: Optional[str] = None,
) -> StatusEmitter:
    """Subscribes to PocketPaw's bus (``get_message_bus()`` unless ``bus`` is given) and returns the emitter used.

    ``socket_path``: the daemon's ingest socket; by default ``POCKETPAW_STATUS_SOCKET``, else the same default as
    ``pocketpaw-status serve``.
    """
    if bus is None:
        from pocketpaw.bus.queue import get_message_bus  # PocketPaw itself: imported only when bridging it

        bus = get_message_bus()
    status = emitter if emitter is not None else StatusEmitter(socket_path=socket_path, agent=agent)
    bus.subscribe_system(forwarder(status))
    return status
