"""
Message events for ladder views: every GED-125 message a session sends or
receives, with direction, peer, a one-line summary and a timestamp.

Costs nothing when nobody listens: C{emit} returns at once without a
summary being built.  A status page or a test subscribes::

    unsubscribe = events.subscribe(ladder.append)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.logger import Logger

_log = Logger(namespace="ctic.icm.events")


@dataclass(frozen=True)
class MessageEvent:
    direction: str  # "in" (received) or "out" (sent)
    protocol: str  # "GED-125"
    peer: str  # "127.0.0.1:40321"
    local: str  # which link: "Tenant1/9001"
    summary: str
    timestamp: float
    name: str  # message name, e.g. "NEW_CALL"
    dialogue_id: int | None
    message: Any


class MessageEvents:
    """A small observer list shared by every layer that wants to report messages."""

    __slots__ = ("_observers",)

    def __init__(self):
        self._observers: list[Callable[[MessageEvent], None]] = []

    @property
    def active(self) -> bool:
        return bool(self._observers)

    def subscribe(self, observer: Callable[[MessageEvent], None]) -> Callable[[], None]:
        self._observers.append(observer)

        def unsubscribe():
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def emit(self, direction, protocol, peer, local, timestamp, message) -> None:
        if not self._observers:
            return
        dialogue_id = getattr(message, "dialogue_id", None)
        if dialogue_id == 0xFFFFFFFF:
            dialogue_id = None
        event = MessageEvent(direction, protocol, peer, local, message.summary(), timestamp,
                             message.name, dialogue_id, message)
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:  # a ladder view's bug must not break the session that reports to it
                _log.failure("Message observer {observer!r} failed", observer=observer)
