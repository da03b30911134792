# -*- test-case-name: tests.rm.test_rm_resources -*-
"""
Resource groups at run time: per-member health and usage, the balancing
schemes, group port capacity, and OPTIONS health monitoring.

Usage is the number of calls a member is serving; it drives C{least-usage}
(fewest calls), C{least-percent-usage} (lowest calls/capacity) and the
group's C{port-capacity}.  A member is C{up} until C{failure_threshold}
probes in a row fail, then C{down} until C{success_threshold} probes in a
row succeed (the OpenSIPS dispatcher model, docs/gvp-rm-ctic.rst §2.9).  Members start
up (ours): a fresh RM routes at once and learns of a dead member from its
probes.
"""

from __future__ import annotations

from twisted.logger import Logger

from ctic.sip.message import Request
from ctic.sip.transport import Peer
from ctic.timers import Timer

log = Logger(namespace="ctic.rm.resources")


class MemberState:
    __slots__ = ("member", "group", "up", "usage", "fails", "successes", "probing", "peer")

    def __init__(self, member, group):
        self.member = member
        self.group = group
        self.up = True
        self.usage = 0
        self.fails = 0
        self.successes = 0
        self.probing = False
        self.peer = Peer(group.transport, member.host, member.port)

    @property
    def full(self) -> bool:
        cap = self.member.capacity
        return cap is not None and self.usage >= cap

    def __repr__(self):
        return f"<Member {self.member.key} up={self.up} usage={self.usage}>"


class GroupState:
    """One CTIC or MCP group: pick a member by the group's scheme; count usage."""

    def __init__(self, group):
        self.group = group
        self.members = [MemberState(m, group) for m in group.members]
        self._next = 0

    @property
    def usage(self) -> int:
        return sum(m.usage for m in self.members)

    @property
    def at_capacity(self) -> bool:
        cap = self.group.port_capacity
        return bool(cap) and self.usage >= cap

    @property
    def all_down(self) -> bool:
        return not any(m.up for m in self.members)

    def member_for(self, host: str, port: int) -> MemberState | None:
        for m in self.members:
            if m.member.host == host and m.member.port == port:
                return m
        return None

    def pick(self, exclude=()) -> MemberState | None:
        """A member that is up, not excluded and not full; C{None} if none is or the group is full."""
        if self.at_capacity:
            return None
        candidates = [m for m in self.members if m.up and not m.full and m.member.key not in exclude]
        if not candidates:
            return None
        scheme = self.group.scheme
        if scheme == "least-usage":
            return min(candidates, key=lambda m: m.usage)
        if scheme == "least-percent-usage":
            return min(candidates, key=lambda m: m.usage / m.member.capacity)
        n = len(self.members)
        for i in range(n):
            m = self.members[(self._next + i) % n]
            if m in candidates:
                self._next = (self.members.index(m) + 1) % n
                return m
        return None  # pragma: no cover - candidates is non-empty

    @staticmethod
    def acquire(m: MemberState) -> None:
        m.usage += 1

    @staticmethod
    def release(m: MemberState) -> None:
        if m.usage > 0:
            m.usage -= 1


def alive(status: int) -> bool:
    """A probe answer that shows the member is working (ours): any final response but 408 and 5xx."""
    return 200 <= status < 500 and status != 408


class HealthMonitor:
    """
    OPTIONS probes for every member of the given groups.

    C{probe(peer) -> Deferred[Response]} sends one OPTIONS and fires with the
    final response (a timeout arrives as a 408, as the transaction layer
    reports it).  The clock is injected; C{stop()} leaves no timer behind.
    """

    def __init__(self, clock, probe, groups):
        self.clock = clock
        self.probe = probe
        self.timers: dict[int, Timer] = {}
        self._running = False
        self._pending: dict[int, Timer] = {}
        for g in groups:
            mon = g.group.monitoring
            if mon.method != "OPTIONS":
                continue
            for m in g.members:
                self.timers[id(m)] = Timer(clock, self._tick, m)

    def start(self) -> None:
        self._running = True
        for t in self.timers.values():
            t.start(0)

    def stop(self) -> None:
        self._running = False
        for t in list(self.timers.values()) + list(self._pending.values()):
            t.cancel()

    def _tick(self, m: MemberState) -> None:
        if not self._running:
            return
        mon = m.group.monitoring
        timer = self.timers[id(m)]
        if m.probing:  # the last probe is still out: skip a beat
            timer.start(mon.interval)
            return
        m.probing = True
        timeout = Timer(self.clock, self._result, m, 408)
        timeout.start(mon.timeout)
        self._pending[id(m)] = timeout
        d = self.probe(m.peer)

        def done(response):
            if timeout.active:
                timeout.cancel()
                self._result(m, response.status)

        def failed(failure):
            if timeout.active:
                timeout.cancel()
                self._result(m, 503)

        d.addCallbacks(done, failed)
        timer.start(mon.interval)

    def _result(self, m: MemberState, status: int) -> None:
        m.probing = False
        mon = m.group.monitoring
        if alive(status):
            m.fails = 0
            m.successes += 1
            if not m.up and m.successes >= mon.success_threshold:
                m.up = True
                log.info("{kind} member {member} of [{group}] is up", kind=m.group.kind.upper(),
                         member=m.member.key, group=m.group.name)
        else:
            m.successes = 0
            m.fails += 1
            if m.up and m.fails >= mon.failure_threshold:
                m.up = False
                log.warn("{kind} member {member} of [{group}] is down after {fails} failed probes (last {status})",
                         kind=m.group.kind.upper(), member=m.member.key, group=m.group.name, fails=m.fails,
                         status=status)


def options_request(peer: Peer, local_host: str, local_port: int, call_id: str, tag: str) -> Request:
    """The OPTIONS probe (the transaction layer adds Via and branch when it sends)."""
    from ctic.sip.headers import CSeq, NameAddr
    from ctic.sip.uri import SIPURI

    req = Request("OPTIONS", SIPURI(peer.host, port=peer.port))
    h = req.headers
    h.set("From", NameAddr(SIPURI(local_host, user="gvp-rm", port=local_port), params={"tag": tag}))
    h.set("To", NameAddr(SIPURI(peer.host, port=peer.port)))
    h.set("Call-ID", call_id)
    h.set("CSeq", CSeq(1, "OPTIONS"))
    h.set("Max-Forwards", 70)
    h.set("Accept", "application/sdp")
    return req
