"""Balancing schemes, capacity, and OPTIONS health monitoring on a task.Clock."""

from __future__ import annotations

import pytest

from twisted.internet import defer
from twisted.internet.task import Clock

from ctic.rm.model import Member, Monitoring, ResourceGroup
from ctic.rm.resources import GroupState, HealthMonitor
from ctic.sip.message import Response
from tests.rm.harness import BASE, GW, RM, UA, ctic_group, gateway_group
from tests.support import assert_no_pending_calls


def group(scheme="round-robin", caps=(None, None, None), port_capacity=0, **mon):
    members = tuple(Member(f"10.0.0.{i}", 5070, c) for i, c in enumerate(caps, 1))
    return GroupState(ResourceGroup("ctic", "g", members, scheme, port_capacity,
                                    monitoring=Monitoring(**mon) if mon else Monitoring()))


def test_round_robin_rotates_and_skips_down_members():
    g = group()
    assert [g.pick().member.host for _ in range(4)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1"]
    g.members[1].up = False
    assert [g.pick().member.host for _ in range(3)] == ["10.0.0.3", "10.0.0.1", "10.0.0.3"]


def test_least_usage_and_least_percent_usage():
    g = group("least-usage")
    for _ in range(5):
        g.acquire(g.pick())
    assert sorted(m.usage for m in g.members) == [1, 2, 2]
    g = group("least-percent-usage", caps=(10, 100, 50))
    for _ in range(30):
        g.acquire(g.pick())
    assert [m.usage for m in g.members] == [2, 19, 9]  # ~ proportional to capacity


def test_member_and_group_capacity():
    g = group(caps=(1, 1, None), port_capacity=3)
    picks = [g.pick() for _ in range(3)]
    for m in picks:
        g.acquire(m)
    assert g.at_capacity and g.pick() is None
    g.release(picks[0])
    m = g.pick()
    assert m is not None and not m.full


def test_exclude():
    g = group()
    assert g.pick(exclude={"10.0.0.1:5070", "10.0.0.2:5070"}).member.host == "10.0.0.3"
    assert g.pick(exclude={m.member.key for m in g.members}) is None


class Prober:
    """Answers probes as told: a status, or None for silence (the monitor times out)."""

    def __init__(self):
        self.status = {}
        self.sent = []

    def __call__(self, peer):
        self.sent.append(peer.host)
        st = self.status.get(peer.host, 200)
        if st is None:
            return defer.Deferred()
        return defer.succeed(Response(st))


def test_member_goes_down_after_threshold_and_comes_back():
    clock = Clock()
    g = group(interval=5.0, timeout=2.0, failure_threshold=3, success_threshold=2)
    probe = Prober()
    mon = HealthMonitor(clock, probe, [g])
    mon.start()
    clock.advance(0)
    assert len(probe.sent) == 3 and all(m.up for m in g.members)
    probe.status["10.0.0.2"] = None  # silent
    probe.status["10.0.0.3"] = 503
    for _ in range(2):
        clock.advance(5)
    assert g.members[1].up and g.members[2].up  # two failures: below the threshold
    clock.advance(5)
    assert not g.members[2].up  # three 503s
    clock.advance(2)
    assert not g.members[1].up  # three timeouts
    assert [m.member.host for m in [g.pick(), g.pick()]] == ["10.0.0.1", "10.0.0.1"]
    probe.status.clear()
    clock.advance(5)
    assert not g.members[2].up  # one success is not enough
    clock.advance(5)
    assert g.members[2].up and g.members[1].up
    mon.stop()
    assert_no_pending_calls(clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_down_ctic_is_skipped_by_routing_and_all_down_fails_over():
    rm = RM(BASE + gateway_group(1) + ctic_group("fail-over-cti-handling = answer"))
    gs = rm.router.ctic_groups["Environment"]
    gs.members[0].up = False
    UA(rm, GW, "gw").invite("sip:800@10.0.0.1", "A")
    [(peer, inv)] = rm.take()
    assert peer.host == "10.0.0.22"
    gs.members[1].up = False
    UA(rm, GW, "gw").invite("sip:800@10.0.0.1", "B")
    [(peer, inv)] = rm.take()
    assert peer.host == "10.0.0.31" and inv.uri.user == "dialog"  # answer: to the MCP
