# -*- test-case-name: tests.test_events -*-
"""
Message events for ladder views: every SIP, GED-125 and GctiMsg message a
link sends or receives, as one kind of event on one kind of observer list,
so a status page can draw all three protocols of a call on one timeline.

Costs nothing when nobody listens: emitters check C{events.active} (or call
C{emit}, which returns at once) before a summary is built::

    unsubscribe = layer.events.subscribe(ladder.append)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.logger import Logger

log = Logger(namespace="ctic.events")

IN = "in"
OUT = "out"


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """
    One message on a link.

    @ivar direction: C{"in"} (received) or C{"out"} (sent).
    @ivar protocol: C{"SIP"}, C{"GED-125"} or C{"GctiMsg"}.
    @ivar peer: the other end, e.g. C{"udp:127.0.0.1:5070"} or C{"127.0.0.1:40321"}.
    @ivar local: which of our links or listeners, when there are several.
    @ivar name: the message's name: a SIP method or status, C{"NEW_CALL"}, C{"CallInfoResp"}.
    @ivar call_ref: what ties it to a call: the SIP Call-ID, the GED-125
        DialogueID, the GctiMsg CallId (C{None} for link-level messages).
    """

    direction: str
    protocol: str
    peer: str
    local: str | None
    summary: str
    timestamp: float
    name: str
    call_ref: Any
    message: Any

    @property
    def dialogue_id(self):
        """GED-125's name for C{call_ref}."""
        return self.call_ref

    @property
    def call_id(self):
        """SIP's and GctiMsg's name for C{call_ref}."""
        return self.call_ref


class MessageEvents:
    """The observers of one link (or of several that share it)."""

    __slots__ = ("_observers",)

    def __init__(self):
        self._observers: list[Callable[[MessageEvent], None]] = []

    @property
    def active(self) -> bool:
        return bool(self._observers)

    def subscribe(self, observer: Callable[[MessageEvent], None]) -> Callable[[], None]:
        """Add an observer; returns the function that removes it."""
        self._observers.append(observer)

        def unsubscribe():
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def emit(self, direction: str, protocol: str, peer: str, local, timestamp: float, message, *,
             name: str | None = None, call_ref=None, summary: str | None = None) -> None:
        if not self._observers:
            return
        event = MessageEvent(
            direction, protocol, peer, local,
            summary if summary is not None else message.summary(), timestamp,
            name if name is not None else getattr(message, "name", type(message).__name__), call_ref, message,
        )
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:  # a ladder view's bug must not break the link that reports to it
                log.failure("Message observer {observer!r} failed", observer=observer)
