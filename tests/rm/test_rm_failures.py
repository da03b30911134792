"""
A failure after the router decided still ends the call: one final response
to the caller (500 for a bug, 503 for a send that could not happen), the
session finished with its CDR, and nothing left behind (sessions, group
usage, transactions, request contexts, DelayedCalls on the task.Clock).

Each step of the proxy's forwarding is made to fail in turn, the way the
fuzzing campaign of issue 15 made C{Request.copy} fail; then a group with
C{port-capacity = 3} that saw three such calls still routes the next one.
"""

from __future__ import annotations

import pytest

from ctic.sip import proxy
from ctic.sip.message import Request, Response
from ctic.sip.transaction import InviteClientTransaction, TransactionLayer
from tests.rm.harness import BASE, CTIC1, CTIC2, GW, MCP1, RM, UA, gateway_group
from tests.rm.test_rm_routing import finish, rm_with
from tests.support import assert_no_pending_calls


def injected(*args, **kwargs):
    raise RuntimeError("injected failure")


def failing_send_to(rm, peer, after=0, report=False):
    """
    Make the wire's sends to C{peer} fail once C{after} have gone: raise
    (a transport that breaks its contract), or report a transport error
    (C{report}, as the real transport does, e.g. on a retransmission).
    """
    send, sent = rm.wire.send, []

    def send_or_fail(msg, to):
        if (to.host, to.port) != (peer.host, peer.port) or len(sent) < after:
            sent.append(msg)
            return send(msg, to)
        if report:
            return rm.wire.user.transportError(to, msg, "connection refused")
        raise OSError("injected send failure")

    return send_or_fail


def copy_fails(rm, monkeypatch):
    monkeypatch.setattr(Request, "copy", injected)


def record_route_fails(rm, monkeypatch):
    monkeypatch.setattr(proxy.Proxy, "_our_uri", injected)


def branch_fails(rm, monkeypatch):
    monkeypatch.setattr(proxy, "new_branch", injected)


def via_fails(rm, monkeypatch):
    monkeypatch.setattr(TransactionLayer, "push_via", injected)


def client_transaction_fails(rm, monkeypatch):
    monkeypatch.setattr(InviteClientTransaction, "__init__", injected)


def client_transaction_start_fails(rm, monkeypatch):
    # Registered in the table, then failing: it must not stay there.
    monkeypatch.setattr(InviteClientTransaction, "start", injected)


def timer_c_fails(rm, monkeypatch):
    # The INVITE has gone out: it is abandoned (CANCELled once it can be).
    monkeypatch.setattr(proxy, "Timer", injected)


def send_raises(rm, monkeypatch):
    monkeypatch.setattr(rm.wire, "send", failing_send_to(rm, MCP1))


def transport_error_later(rm, monkeypatch):
    # The first INVITE goes out; its retransmission (Timer A) cannot.
    monkeypatch.setattr(rm.wire, "send", failing_send_to(rm, MCP1, after=1, report=True))


STEPS = {
    copy_fails: 500, record_route_fails: 500, branch_fails: 500, via_fails: 500,
    client_transaction_fails: 500, client_transaction_start_fails: 500, timer_c_fails: 500,
    send_raises: 503, transport_error_later: 503,
}


def capacity_3_rm():
    return RM(BASE.replace("[mcp-group:mcp]\n", "[mcp-group:mcp]\nport-capacity = 3\n") + gateway_group(0))


def finals_to(rm, peer):
    """The final statuses sent to C{peer}, each once (Timer G retransmits them)."""
    return sorted({m.status for p, m in rm.take() if isinstance(m, Response) and m.status >= 200
                   and (p.host, p.port) == (peer.host, peer.port)})


def assert_nothing_left(rm):
    """Nothing of the call is left once its transactions' timers have run out."""
    assert len(rm.sessions) == 0 and rm.sessions.by_call_id == {}
    assert [g.usage for g in rm.router.groups] == [0] * len(rm.router.groups)
    finish(rm)
    assert rm.proxy.contexts == {}
    assert rm.proxy.txns.client == {} and rm.proxy.txns.server == {}
    assert_no_pending_calls(rm.clock)


@pytest.mark.parametrize("inject", list(STEPS), ids=lambda f: f.__name__)
def test_failure_at_each_forwarding_step_ends_the_call_and_releases_everything(inject, monkeypatch):
    rm = capacity_3_rm()
    inject(rm, monkeypatch)
    UA(rm, GW, "gw").invite("sip:800@10.0.0.1", "fail-1")
    rm.clock.advance(1)  # a 503 from the transport comes on the next turn; Timer A runs once
    assert finals_to(rm, GW) == [STEPS[inject]]
    [cdr] = rm.cdrs
    assert cdr.final_status == STEPS[inject] and cdr.mcp == f"{MCP1.host}:{MCP1.port}"
    assert_nothing_left(rm)


def test_failure_relaying_a_response_cancels_the_branch_and_ends_the_call(monkeypatch):
    rm = capacity_3_rm()
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    gw.invite("sip:800@10.0.0.1", "fail-2")
    inv = rm.one(to=MCP1)
    monkeypatch.setattr(Response, "copy", injected)
    mcp.respond(inv, 180)
    out = rm.take()
    assert [m.status for p, m in out if isinstance(m, Response)] == [500]
    [cancel] = [m for p, m in out if isinstance(m, Request)]
    assert cancel.method == "CANCEL"
    monkeypatch.undo()
    mcp.respond(cancel, 200)
    mcp.respond(inv, 487)  # the abandoned branch ends; the caller already has its answer
    assert finals_to(rm, GW) == []
    assert_nothing_left(rm)


def test_failure_forwarding_to_the_next_ctic_releases_the_ctic_port(monkeypatch):
    rm = rm_with(1)
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    gw.invite("sip:800@10.0.0.1", "fail-3")
    inv = rm.one(to=CTIC1)
    monkeypatch.setattr(rm.wire, "send", failing_send_to(rm, CTIC2))
    c1.respond(inv, 503)  # the router picks the next CTIC; sending there fails
    rm.clock.advance(0)
    assert finals_to(rm, GW) == [503]
    assert_nothing_left(rm)


def test_three_calls_failing_after_routing_leave_a_capacity_3_group_free():
    rm = capacity_3_rm()
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with pytest.MonkeyPatch.context() as mp:
        for n, inject in enumerate((copy_fails, client_transaction_fails, send_raises)):
            inject(rm, mp)
            gw.invite("sip:800@10.0.0.1", f"bad-{n}")
            rm.clock.advance(0)
            assert finals_to(rm, GW) in ([500], [503])
            mp.undo()
    assert rm.router.mcp_groups[0].usage == 0
    gw.invite("sip:800@10.0.0.1", "good")
    inv = rm.one(to=MCP1)  # routed, not "503 No media resource available"
    assert inv.uri.user == "dialog"
    mcp.respond(inv, 486)
    assert finals_to(rm, GW) == [486]
    assert_nothing_left(rm)
