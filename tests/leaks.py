"""
What a test leaves behind, found for every test (Buildbot's test reactor
idea, applied by the autouse fixture in tests/conftest.py).

While a test runs, every C{task.Clock} (and so every C{MemoryReactorClock}),
SIP C{TransactionLayer}, C{DialogTable}, C{B2BUA} and RM C{SessionTable}
created is recorded.  At teardown the test fails if any clock still has an
active C{DelayedCall}, if the global reactor has one (when it is imported at
all), or if a transaction, dialog, call or RM session is still open.

Two narrow opt-outs, each with a reason that says why the leftover is the
point of the test::

    @pytest.mark.allow_pending_calls("the retransmission timer is what we look at")
    @pytest.mark.allow_open_state("the call is left ringing on purpose")

C{allow_pending_calls} allows timers only; C{allow_open_state} allows open
transactions/dialogs/calls/sessions and the timers that come with them.
"""

from __future__ import annotations

import sys

from twisted.internet import task

MARKERS = {
    "allow_pending_calls": "allow_pending_calls(reason): the test may leave active DelayedCalls (say why)",
    "allow_open_state": "allow_open_state(reason): the test may leave open transactions, dialogs, calls, "
                        "RM sessions and their timers (say why)",
}


def _open_state_kinds():
    """(class, name, what-is-open) for every kind of protocol state we track."""
    from ctic.rm.session import SessionTable
    from ctic.sip.b2bua import B2BUA
    from ctic.sip.dialog import DialogTable
    from ctic.sip.transaction import TransactionLayer

    return [
        (TransactionLayer, "transactions",
         lambda t: [repr(x) for x in (*t.server.values(), *t.client.values())]),
        (DialogTable, "dialogs", lambda t: [repr(d) for d in t]),
        (B2BUA, "calls", lambda b: [repr(c) for c in b.calls]),
        (SessionTable, "RM sessions", lambda t: [repr(s) for s in t.by_guid.values()]),
    ]


def reason_of(item, name):
    """The reason given to marker C{name} on C{item}, or None when the test has no such marker."""
    mark = item.get_closest_marker(name)
    if mark is None:
        return None
    reason = mark.args[0] if mark.args else mark.kwargs.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"@pytest.mark.{name} needs a reason saying why the test leaves it behind")
    return reason


class LeakTracker:
    """Records what a test creates and reports what it leaves behind."""

    def __init__(self, monkeypatch):
        self.clocks: list = []
        self.instances: dict = {}
        self._track(monkeypatch, task.Clock, self.clocks)
        self.kinds = _open_state_kinds()
        for cls, name, _ in self.kinds:
            self._track(monkeypatch, cls, self.instances.setdefault(name, []))

    @staticmethod
    def _track(monkeypatch, cls, into):
        original = cls.__init__

        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
            into.append(self)

        monkeypatch.setattr(cls, "__init__", __init__)

    def open_state(self) -> list[str]:
        found = []
        for _, name, what in self.kinds:
            for obj in self.instances[name]:
                left = what(obj)
                if left:
                    found.append(f"open {name} on {type(obj).__name__}: {left!r}")
        return found

    def pending_calls(self) -> list[str]:
        found = []
        for clock in self.clocks:
            pending = [c for c in clock.getDelayedCalls() if c.active()]
            if pending:
                found.append(f"active DelayedCalls on {type(clock).__name__}: {pending!r}")
        return found


def global_reactor_pending(cancel: bool) -> list[str]:
    """Active DelayedCalls on the global reactor (cancelled so the next test starts clean)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not hasattr(reactor, "getDelayedCalls"):
        return []
    pending = [c for c in reactor.getDelayedCalls() if c.active()]
    if cancel:
        for call in pending:
            call.cancel()
    return [f"active DelayedCalls on the global reactor: {pending!r}"] if pending else []
