# -*- test-case-name: tests.test_framing_timers -*-
"""
A restartable one-shot timer on an injected C{IReactorTime}: the shape every
protocol here needs for idle timeouts, keep-alives, heartbeats and
request deadlines.  Tests pass a C{twisted.internet.task.Clock}.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger

log = Logger(namespace="ctic.timers")


class Timer:
    """
    Call C{callback(*args)} after a delay; C{start} again to restart it.

    Never leaves a C{DelayedCall} behind after C{cancel}, nor after it fires.
    """

    __slots__ = ("_clock", "_callback", "_args", "_call")

    def __init__(self, clock, callback: Callable[..., Any], *args):
        self._clock = clock
        self._callback = callback
        self._args = args
        self._call = None

    @property
    def active(self) -> bool:
        return self._call is not None

    def start(self, delay: float) -> None:
        """(Re)arm the timer to fire C{delay} seconds from now."""
        if self._call is not None:
            self._call.reset(delay)
            return
        self._call = self._clock.callLater(delay, self._fire)

    def cancel(self) -> None:
        call = self._call
        if call is not None:
            self._call = None
            call.cancel()

    def _fire(self) -> None:
        self._call = None
        try:
            self._callback(*self._args)
        except Exception:
            # A timer's work (a retransmission, a timeout handled by call logic)
            # failing must not reach the reactor; log it where operators look.
            log.failure("Timer callback {callback!r} failed", callback=self._callback)
