"""
RFC 3261 §17 (+ RFC 6026) transactions on a task.Clock: every timer of every
transaction type, over an unreliable (UDP) and a reliable (TCP) transport,
ACK generation for non-2xx, CANCEL (§9), matching by branch and by the
RFC 2543 rules, and transport errors.  Each scenario ends with no
DelayedCall left and empty transaction tables.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from ctic.sip.message import Request, make_response
from ctic.sip.parser import parse_datagram
from ctic.sip.transaction import TransactionLayer, Timers, is_rfc3261_branch, server_key
from ctic.sip.transport import Peer, response_peer
from tests.sip.corpus import load
from tests.support import assert_no_pending_calls

US = ("10.0.0.1", 5060)
UAS = {"UDP": Peer("UDP", "10.0.0.2", 5060), "TCP": Peer("TCP", "10.0.0.2", 5060)}
UAC = {"UDP": Peer("UDP", "192.0.2.10", 5060), "TCP": Peer("TCP", "192.0.2.10", 5061)}
BOTH = pytest.mark.parametrize("transport", ["UDP", "TCP"])


class FakeTransport:
    """Records (time, peer, message) for every send; C{fail} makes sends fail."""

    def __init__(self, clock):
        self.clock = clock
        self.addresses = {"UDP": US, "TCP": US}
        self.user = None
        self.sent: list = []
        self.fail_now = False

    def send(self, msg, peer):
        if self.fail_now:
            self.user.transportError(peer, msg, "boom")
            return
        self.sent.append((self.clock.seconds(), peer, parse_datagram(bytes(msg))))

    def send_response(self, response, request=None):
        source = request.source if request is not None else None
        peer = source if source is not None and source.reliable else response_peer(response.top_via, "UDP")
        self.send(response, peer)

    def take(self):
        out, self.sent = self.sent, []
        return out

    def messages(self):
        return [m for _, _, m in self.take()]


class TU:
    """A transaction user that records what the layer tells it."""

    def __init__(self):
        self.requests = []
        self.cancels = []
        self.acks = []
        self.strays = []
        self.errors = []

    def request_received(self, txn, request):
        self.requests.append((txn, request))

    def cancel_received(self, txn, cancel):
        self.cancels.append((txn, cancel))

    def ack_received(self, ack):
        self.acks.append(ack)

    def stray_response(self, response):
        self.strays.append(response)

    def transport_error(self, peer, msg, reason):
        self.errors.append((peer, msg, reason))


class Node:
    def __init__(self, timers=None):
        self.clock = Clock()
        self.wire = FakeTransport(self.clock)
        self.tu = TU()
        self.layer = TransactionLayer(self.clock, self.wire, self.tu, timers)
        self.wire.user = self.layer
        self.responses = []

    def deliver(self, text: str, source: Peer):
        msg = parse_datagram(text.encode())
        msg.source = source
        self.layer.messageReceived(msg)
        return msg

    def send(self, method, transport="UDP", **kw):
        req = request(method, **kw)
        txn = self.layer.send_request(req, UAS[transport])
        txn.on_response = self.responses.append
        return txn

    def answer(self, sent: Request, status, to_tag="uas", transport="UDP"):
        """The UAS's response to a request we sent (as text, re-parsed)."""
        resp = make_response(sent, status, to_tag=to_tag)
        return self.deliver(bytes(resp).decode(), UAS[transport])

    def assert_clean(self):
        assert_no_pending_calls(self.clock)
        assert self.layer.client == {} and self.layer.server == {}


def request(method, *, branch="z9hG4bKc1", call_id="c1", cseq=1, to_tag=None, via_host="192.0.2.10",
            via_port=5060, transport="UDP", uri="sip:bob@10.0.0.2", route=(), from_tag="ft") -> Request:
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host}:{via_port}" + (f";branch={branch}" if branch else ""),
        "Max-Forwards: 70",
        f"From: <sip:alice@192.0.2.10>;tag={from_tag}",
        "To: <sip:bob@10.0.0.2>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@192.0.2.10>",
    ]
    lines += [f"Route: {r}" for r in route]
    return parse_datagram(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


def text(req: Request) -> str:
    return bytes(req).decode()


def times(sent):
    return [t for t, _, _ in sent]


# --- INVITE client transaction (§17.1.1) --------------------------------------------


def test_invite_client_timer_a_doubles_then_timer_b_gives_408_udp():
    n = Node()
    txn = n.send("INVITE")
    assert txn.state == "calling"
    n.clock.pump([0.5] * 63)
    sent = n.wire.take()
    # Timer A: T1, then doubling, until Timer B (64*T1 = 32 s) ends it.
    assert times(sent) == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(m.method == "INVITE" and m.top_via.branch == txn.branch for _, _, m in sent)
    assert n.responses == []
    n.clock.advance(0.5)
    (r,) = n.responses
    assert (r.status, r.cseq.method, r.call_id) == (408, "INVITE", "c1")
    assert txn.state == "terminated" and n.wire.take() == []
    n.assert_clean()


def test_invite_client_no_timer_a_over_tcp_timer_b_still_runs():
    n = Node()
    txn = n.send("INVITE", "TCP")
    n.clock.pump([1] * 31)
    assert len(n.wire.take()) == 1 and txn.state == "calling"
    n.clock.advance(1)
    assert [r.status for r in n.responses] == [408]
    n.assert_clean()


def test_timers_follow_configured_t1():
    n = Node(Timers(t1=0.25, t2=1.0, t4=1.25))
    n.send("INVITE")
    n.clock.pump([0.25] * 63)
    assert times(n.wire.take()) == [0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75]
    assert n.responses == []
    n.clock.advance(0.25)
    assert [r.status for r in n.responses] == [408]  # Timer B = 64*T1 = 16 s
    n.assert_clean()


@BOTH
def test_invite_client_provisional_stops_a_and_b(transport):
    n = Node()
    txn = n.send("INVITE", transport)
    (_, _, inv), = n.wire.take()
    n.clock.advance(0.2)
    n.answer(inv, 180, transport=transport)
    assert txn.state == "proceeding" and [r.status for r in n.responses] == [180]
    n.clock.advance(200)
    assert n.wire.take() == [] and txn.state == "proceeding"
    n.answer(inv, 200, transport=transport)
    assert txn.state == "accepted"
    n.clock.advance(32)
    n.assert_clean()


@BOTH
def test_invite_client_non_2xx_ack_and_timer_d(transport):
    n = Node()
    txn = n.send("INVITE", transport, route=["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
    (_, _, inv), = n.wire.take()
    n.answer(inv, 486, to_tag="busy", transport=transport)
    assert txn.state == "completed"
    assert [r.status for r in n.responses] == [486]
    (_, peer, ack), = n.wire.take()
    # §17.1.1.3: same Request-URI and branch, one Via, To from the response, Route copied.
    assert peer == UAS[transport]
    assert ack.method == "ACK" and str(ack.uri) == str(inv.uri)
    assert len(ack.via) == 1 and ack.top_via.branch == inv.top_via.branch
    assert ack.to.tag == "busy" and ack.from_.tag == "ft" and ack.call_id == "c1"
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert [str(r) for r in ack.route] == [str(r) for r in inv.route]
    if transport == "UDP":
        # Timer D: retransmitted finals are absorbed and ACKed again.
        n.clock.advance(10)
        n.answer(inv, 486, to_tag="busy")
        (_, _, ack2), = n.wire.take()
        assert ack2.method == "ACK" and ack2.to.tag == "busy"
        assert len(n.responses) == 1
        n.clock.advance(21.9)
        assert txn.state == "completed"
        n.clock.advance(0.1)  # Timer D = 32 s
    else:
        n.clock.advance(0)  # Timer D = 0 on a reliable transport
    assert txn.state == "terminated"
    n.assert_clean()


@BOTH
def test_invite_client_accepted_passes_2xx_retransmissions_until_timer_m(transport):
    n = Node()
    txn = n.send("INVITE", transport)
    (_, _, inv), = n.wire.take()
    n.answer(inv, 200, to_tag="ok", transport=transport)
    assert txn.state == "accepted"
    n.clock.advance(1)
    n.answer(inv, 200, to_tag="ok", transport=transport)
    n.answer(inv, 200, to_tag="fork2", transport=transport)  # RFC 6026: a forked 2xx too
    n.answer(inv, 486, to_tag="late", transport=transport)  # not a 2xx: dropped
    assert [(r.status, r.to.tag) for r in n.responses] == [(200, "ok"), (200, "ok"), (200, "fork2")]
    assert n.wire.take() == []  # the TU ACKs a 2xx, never the transaction
    n.clock.advance(30.9)
    assert txn.state == "accepted"
    n.clock.advance(0.1)  # Timer M = 64*T1
    assert txn.state == "terminated"
    n.answer(inv, 200, to_tag="ok", transport=transport)
    assert len(n.responses) == 3 and len(n.tu.strays) == 1  # after M: stray, for the TU core
    n.assert_clean()


# --- non-INVITE client transaction (§17.1.2) ----------------------------------------


def test_non_invite_client_timer_e_doubles_to_t2_then_timer_f_408():
    n = Node()
    txn = n.send("OPTIONS")
    n.clock.pump([0.5] * 63)
    assert times(n.wire.take()) == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert txn.state == "trying"
    n.clock.advance(0.5)
    assert [(r.status, r.cseq.method) for r in n.responses] == [(408, "OPTIONS")]
    n.assert_clean()


def test_non_invite_client_timer_e_at_t2_in_proceeding():
    n = Node()
    txn = n.send("OPTIONS")
    (_, _, req), = n.wire.take()
    n.clock.advance(0.25)
    n.answer(req, 100)
    assert txn.state == "proceeding" and [r.status for r in n.responses] == [100]
    n.clock.pump([0.25] * 127)
    assert times(n.wire.take()) == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert [r.status for r in n.responses] == [100, 408]  # Timer F at 32 s
    n.assert_clean()


@BOTH
def test_non_invite_client_no_timer_e_over_tcp_timer_f_still_runs(transport):
    n = Node()
    n.send("BYE", transport, to_tag="tt")
    n.clock.pump([0.5] * 64)
    sent = n.wire.take()
    assert len(sent) == (1 if transport == "TCP" else 11)
    assert [r.status for r in n.responses] == [408]
    n.assert_clean()


@BOTH
def test_non_invite_client_final_then_timer_k(transport):
    n = Node()
    txn = n.send("BYE", transport, to_tag="tt")
    (_, _, bye), = n.wire.take()
    n.answer(bye, 200, transport=transport)
    assert txn.state == "completed" and [r.status for r in n.responses] == [200]
    n.answer(bye, 200, transport=transport)  # retransmission: absorbed
    assert len(n.responses) == 1
    if transport == "UDP":
        n.clock.advance(4.9)
        assert txn.state == "completed" and n.wire.take() == []  # no more Timer E
        n.clock.advance(0.1)  # Timer K = T4
    else:
        n.clock.advance(0)  # Timer K = 0
    assert txn.state == "terminated"
    n.assert_clean()


# --- INVITE server transaction (§17.2.1) --------------------------------------------


def server_invite(n: Node, transport="UDP", **kw):
    inv = request("INVITE", transport=transport, **kw)
    n.deliver(text(inv), UAC[transport])
    (txn, received), = n.tu.requests
    n.tu.requests.clear()
    return txn, received


@BOTH
def test_invite_server_retransmitted_invite_resends_last_provisional(transport):
    n = Node()
    txn, inv = server_invite(n, transport)
    assert txn.state == "proceeding"
    n.deliver(text(inv), UAC[transport])
    assert n.wire.take() == [] and n.tu.requests == []  # nothing to re-send yet
    txn.respond(make_response(inv, 100))
    txn.respond(make_response(inv, 180, to_tag="t1"))
    assert [m.status for m in n.wire.messages()] == [100, 180]
    n.deliver(text(inv), UAC[transport])
    (_, peer, again), = n.wire.take()
    assert again.status == 180 and again.to.tag == "t1"
    assert peer.host == UAC[transport].host and n.tu.requests == []
    txn.respond(make_response(inv, 603, to_tag="t1"))
    n.wire.take()
    n.deliver(text(request("ACK", to_tag="t1", transport=transport)), UAC[transport])
    n.clock.advance(5)
    n.assert_clean()


def test_invite_server_timer_g_doubles_to_t2_and_timer_h_without_ack():
    n = Node()
    txn, inv = server_invite(n)
    ends = []
    txn.on_terminated = lambda t, reason: ends.append(reason)
    txn.respond(make_response(inv, 486, to_tag="b"))
    assert txn.state == "completed"
    n.clock.pump([0.5] * 63)
    sent = n.wire.take()
    assert times(sent) == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert {m.status for _, _, m in sent} == {486}
    n.clock.advance(0.5)  # Timer H = 64*T1
    assert txn.state == "terminated" and ends == ["timer-h"]
    assert n.wire.take() == []
    n.assert_clean()


def test_invite_server_over_tcp_no_timer_g_timer_h_still_runs():
    n = Node()
    txn, inv = server_invite(n, "TCP")
    ends = []
    txn.on_terminated = lambda t, reason: ends.append(reason)
    txn.respond(make_response(inv, 500, to_tag="b"))
    n.clock.pump([1] * 32)
    assert len(n.wire.take()) == 1 and ends == ["timer-h"]
    n.assert_clean()


@BOTH
def test_invite_server_ack_for_non_2xx_absorbed_then_timer_i(transport):
    n = Node()
    txn, inv = server_invite(n, transport)
    acked = []
    txn.on_ack = acked.append
    txn.respond(make_response(inv, 404, to_tag="nf"))
    n.wire.take()
    n.clock.advance(0.2)
    n.deliver(text(inv), UAC[transport])  # a retransmitted INVITE in Completed
    assert [m.status for m in n.wire.messages()] == [404]
    ack = request("ACK", to_tag="nf", transport=transport)
    n.deliver(text(ack), UAC[transport])
    assert txn.state == "confirmed" and len(acked) == 1
    assert n.tu.acks == [] and n.tu.requests == []  # absorbed: not for the TU
    n.deliver(text(ack), UAC[transport])  # a retransmitted ACK: absorbed too
    assert n.tu.acks == [] and len(acked) == 1
    if transport == "UDP":
        n.clock.advance(4.9)
        assert txn.state == "confirmed" and n.wire.take() == []  # Timer G stopped
        n.clock.advance(0.1)  # Timer I = T4
    else:
        n.clock.advance(0)  # Timer I = 0
    assert txn.state == "terminated"
    n.assert_clean()


@BOTH
def test_invite_server_accepted_state_and_timer_l(transport):
    n = Node()
    txn, inv = server_invite(n, transport)
    ends = []
    txn.on_terminated = lambda t, reason: ends.append(reason)
    txn.respond(make_response(inv, 200, to_tag="ok"))
    assert txn.state == "accepted"
    n.clock.advance(0.5)
    assert [m.status for m in n.wire.messages()] == [200]  # no Timer G for a 2xx
    n.deliver(text(inv), UAC[transport])  # retransmitted INVITE: absorbed in Accepted
    assert n.wire.take() == [] and n.tu.requests == []
    txn.respond(make_response(inv, 200, to_tag="ok"))  # the TU's own 2xx retransmission
    assert [m.status for m in n.wire.messages()] == [200]
    txn.respond(make_response(inv, 486, to_tag="ok"))  # never a non-2xx after a 2xx
    assert n.wire.take() == []
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="ok", transport=transport)
    n.deliver(text(ack), UAC[transport])
    assert [a.method for a in n.tu.acks] == ["ACK"]  # end to end: to the TU
    n.clock.advance(31.4)
    assert txn.state == "accepted"
    n.clock.advance(0.1)  # Timer L = 64*T1
    assert txn.state == "terminated" and ends == ["done"]
    n.assert_clean()


# --- non-INVITE server transaction (§17.2.2) ----------------------------------------


@BOTH
def test_non_invite_server_absorbs_and_resends_then_timer_j(transport):
    n = Node()
    opt = request("OPTIONS", transport=transport)
    n.deliver(text(opt), UAC[transport])
    (txn, received), = n.tu.requests
    n.deliver(text(opt), UAC[transport])  # Trying: absorbed
    assert n.wire.take() == [] and len(n.tu.requests) == 1
    txn.respond(make_response(received, 100))
    assert txn.state == "proceeding"
    n.deliver(text(opt), UAC[transport])  # Proceeding: the provisional again
    assert [m.status for m in n.wire.messages()] == [100, 100]
    txn.respond(make_response(received, 200, to_tag="x"))
    assert txn.state == "completed"
    n.deliver(text(opt), UAC[transport])  # Completed: the final again
    assert [m.status for m in n.wire.messages()] == [200, 200]
    txn.respond(make_response(received, 500))  # a second final is ignored
    assert n.wire.take() == []
    if transport == "UDP":
        n.clock.advance(31.9)
        assert txn.state == "completed"
        n.clock.advance(0.1)  # Timer J = 64*T1
    else:
        n.clock.advance(0)  # Timer J = 0
    assert txn.state == "terminated" and len(n.tu.requests) == 1
    n.assert_clean()


def test_tu_failure_answers_500():
    n = Node()

    def boom(txn, req):
        raise RuntimeError("TU bug")

    n.tu.request_received = boom
    n.deliver(text(request("INFO", to_tag="t")), UAC["TCP"])
    assert [m.status for m in n.wire.messages()] == [500]
    n.clock.advance(0)
    n.assert_clean()


# --- CANCEL (§9) ---------------------------------------------------------------------


@BOTH
def test_server_cancel_200_then_tu_answers_487(transport):
    n = Node()
    txn, inv = server_invite(n, transport)
    txn.respond(make_response(inv, 180, to_tag="r"))
    n.wire.take()
    cancel = request("CANCEL", transport=transport)
    n.deliver(text(cancel), UAC[transport])
    (ok,) = n.wire.messages()
    # §9.2: the CANCEL gets 200 with the To tag of the INVITE's responses.
    assert (ok.status, ok.cseq.method, ok.to.tag) == (200, "CANCEL", "r")
    (ctxn, c), = n.tu.cancels
    assert ctxn is txn and c.method == "CANCEL"
    n.deliver(text(cancel), UAC[transport])  # retransmitted CANCEL: 200 again, TU not told twice
    assert [m.status for m in n.wire.messages()] == [200] and len(n.tu.cancels) == 1
    txn.respond(make_response(inv, 487, to_tag="r"))
    assert [m.status for m in n.wire.messages()] == [487]
    n.deliver(text(request("ACK", to_tag="r", transport=transport)), UAC[transport])
    assert n.tu.requests == []  # CANCEL and ACK never reach request_received
    n.clock.advance(32)
    n.assert_clean()


def test_server_cancel_for_unknown_invite_481():
    n = Node()
    n.deliver(text(request("CANCEL", branch="z9hG4bKnone")), UAC["UDP"])
    (r,) = n.wire.messages()
    assert (r.status, r.cseq.method) == (481, "CANCEL")
    assert n.tu.cancels == [] and n.tu.requests == []
    n.clock.advance(32)
    n.assert_clean()


def test_server_cancel_after_final_is_200_without_telling_tu():
    n = Node()
    txn, inv = server_invite(n)
    txn.respond(make_response(inv, 486, to_tag="b"))
    n.wire.take()
    n.deliver(text(request("CANCEL")), UAC["UDP"])
    assert [m.status for m in n.wire.messages()] == [200]
    assert n.tu.cancels == []
    n.deliver(text(request("ACK", to_tag="b")), UAC["UDP"])
    n.clock.advance(32)
    n.assert_clean()


@BOTH
def test_client_cancel_only_after_provisional_with_invites_branch(transport):
    n = Node()
    txn = n.send("INVITE", transport, route=["<sip:p1.example.com;lr>"])
    (_, _, inv), = n.wire.take()
    txn.cancel()
    assert n.wire.take() == []  # §9.1: not before a provisional response
    n.answer(inv, 180, to_tag="r", transport=transport)
    (_, peer, cancel), = n.wire.take()
    assert peer == UAS[transport] and cancel.method == "CANCEL"
    assert str(cancel.uri) == str(inv.uri) and cancel.top_via.branch == inv.top_via.branch
    assert len(cancel.via) == 1 and cancel.to.tag is None
    assert (cancel.cseq.seq, cancel.cseq.method) == (inv.cseq.seq, "CANCEL")
    assert [str(r) for r in cancel.route] == [str(r) for r in inv.route]
    txn.cancel()  # once is enough
    assert n.wire.take() == []
    n.answer(cancel, 200, to_tag="r", transport=transport)
    n.answer(inv, 487, to_tag="r", transport=transport)
    assert [r.status for r in n.responses] == [180, 487]  # the CANCEL's 200 is not the INVITE's
    (_, _, ack), = n.wire.take()
    assert ack.method == "ACK" and ack.to.tag == "r"
    n.clock.advance(32)
    n.assert_clean()


def test_client_cancel_never_after_final():
    n = Node()
    txn = n.send("INVITE")
    (_, _, inv), = n.wire.take()
    n.answer(inv, 200)
    txn.cancel()
    n.answer(inv, 180)
    assert n.wire.take() == []
    n.clock.advance(32)
    n.assert_clean()


def test_client_cancel_pending_is_dropped_by_a_final():
    n = Node()
    txn = n.send("INVITE", "TCP")
    (_, _, inv), = n.wire.take()
    txn.cancel()
    n.answer(inv, 486, transport="TCP")
    assert [m.method for m in n.wire.messages()] == ["ACK"]
    n.clock.advance(0)
    n.assert_clean()


@BOTH
def test_client_cancel_ignored_downstream_ends_after_64_t1(transport):
    # §9.1: with no final response 64*T1 after the CANCEL, the INVITE is given up.
    n = Node()
    txn = n.send("INVITE", transport)
    (_, _, inv), = n.wire.take()
    n.answer(inv, 180, transport=transport)
    txn.cancel()
    (_, _, cancel), = n.wire.take()
    n.answer(cancel, 200, transport=transport)
    n.clock.pump([1] * 64)
    assert txn.state == "terminated"
    assert [r.status for r in n.responses][0] == 180 and n.responses[-1].status >= 400
    n.assert_clean()


# --- matching (§17.1.3, §17.2.3) --------------------------------------------------------


def test_server_matching_by_branch_and_sent_by():
    n = Node()
    a = request("INVITE", branch="z9hG4bKsame", call_id="a")
    b = request("INVITE", branch="z9hG4bKsame", call_id="b", via_host="192.0.2.99")
    n.deliver(text(a), UAC["UDP"])
    n.deliver(text(b), UAC["UDP"])
    assert [r.call_id for _, r in n.tu.requests] == ["a", "b"]  # sent-by differs: two transactions
    n.deliver(text(a), UAC["UDP"])
    assert len(n.tu.requests) == 2
    opt = request("OPTIONS", branch="z9hG4bKsame", call_id="a")
    n.deliver(text(opt), UAC["UDP"])  # same branch, other method: its own transaction
    assert len(n.tu.requests) == 3
    for txn, r in n.tu.requests:
        txn.respond(make_response(r, 500, to_tag="x"))
    n.deliver(text(request("ACK", branch="z9hG4bKsame", call_id="a", to_tag="x")), UAC["UDP"])
    n.deliver(text(request("ACK", branch="z9hG4bKsame", call_id="b", to_tag="x",
                           via_host="192.0.2.99")), UAC["UDP"])
    assert n.tu.acks == []
    n.clock.advance(32)
    n.assert_clean()


def test_server_matching_rfc2543_fallback():
    n = Node()
    inv = request("INVITE", branch=None, call_id="old")
    n.deliver(text(inv), UAC["UDP"])
    (txn, r), = n.tu.requests
    assert server_key(r)[0] == "2543"
    n.deliver(text(inv), UAC["UDP"])  # retransmission: same Request-URI, tags, Call-ID, CSeq, Via
    assert len(n.tu.requests) == 1
    other = request("INVITE", branch=None, call_id="old", cseq=2)
    n.deliver(text(other), UAC["UDP"])
    assert len(n.tu.requests) == 2  # another CSeq: another transaction
    n.tu.requests[1][0].respond(make_response(other, 500, to_tag="y"))
    txn.respond(make_response(r, 180, to_tag="z"))
    n.deliver(text(request("CANCEL", branch=None, call_id="old")), UAC["UDP"])
    assert [m.status for m in n.wire.messages()] == [500, 180, 200]
    assert n.tu.cancels[0][0] is txn
    txn.respond(make_response(r, 487, to_tag="z"))
    n.wire.take()
    # The ACK for the non-2xx carries the To tag; it still matches the INVITE.
    n.deliver(text(request("ACK", branch=None, call_id="old", to_tag="z")), UAC["UDP"])
    assert txn.state == "confirmed" and n.tu.acks == []
    n.deliver(text(request("ACK", branch=None, call_id="old", cseq=2, to_tag="y")), UAC["UDP"])
    n.clock.advance(32)
    n.assert_clean()


def test_bare_magic_cookie_is_not_a_branch():
    # RFC 4475 §3.3.11 badbranch: "branch=z9hG4bK" alone identifies nothing.
    assert not is_rfc3261_branch("z9hG4bK") and is_rfc3261_branch("z9hG4bKx")
    n = Node()
    raw = load("badbranch").decode()
    other = raw.replace("badbranch.sadonfo", "second.sadonfo")
    n.deliver(raw, UAC["UDP"])
    n.deliver(other, UAC["UDP"])
    assert [r.call_id[:6] for _, r in n.tu.requests] == ["badbra", "second"]
    n.deliver(raw, UAC["UDP"])  # its retransmission matches by the RFC 2543 rules
    assert len(n.tu.requests) == 2
    for txn, r in n.tu.requests:
        txn.respond(make_response(r, 200, to_tag="o"))
    n.clock.advance(32)
    n.assert_clean()


def test_client_matching_by_branch_and_method():
    n = Node()
    txn = n.send("INVITE", "TCP")
    (_, _, inv), = n.wire.take()
    ok = bytes(make_response(inv, 200, to_tag="x")).decode()
    n.deliver(ok.replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"), UAS["TCP"])
    assert n.responses == [] and len(n.tu.strays) == 1
    n.deliver(ok.replace(txn.branch, "z9hG4bKother"), UAS["TCP"])
    assert n.responses == [] and len(n.tu.strays) == 2
    n.answer(inv, 404, transport="TCP")
    assert [r.status for r in n.responses] == [404] and txn.state == "completed"
    n.clock.advance(0)
    n.assert_clean()


# --- transport errors (§17.1.4) --------------------------------------------------------


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_transport_error_is_503_for_tu(method):
    n = Node()
    txn = n.send(method, "TCP")
    (_, peer, sent), = n.wire.take()
    n.layer.transportError(peer, sent, "connection refused")  # e.g. a failed connect, later
    assert [r.status for r in n.responses] == [503] and txn.state == "terminated"
    assert n.tu.errors and n.tu.errors[0][2] == "connection refused"
    n.assert_clean()


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_transport_error_on_first_send_still_reaches_tu(method):
    # A send that fails at once (no UDP socket, EMSGSIZE) must not be lost:
    # the TU sets on_response only after send_request returns.
    n = Node()
    n.wire.fail_now = True
    txn = n.send(method)
    assert txn.state == "terminated"
    n.clock.advance(0)
    assert [r.status for r in n.responses] == [503]
    n.assert_clean()


def test_transport_error_on_retransmission_is_503():
    n = Node()
    txn = n.send("INVITE")
    n.wire.take()
    n.wire.fail_now = True
    n.clock.advance(0.5)  # Timer A's retransmission fails
    assert [r.status for r in n.responses] == [503] and txn.state == "terminated"
    n.assert_clean()


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_a_transport_that_raises_is_a_transport_error(method):
    # A transport must report a failed send; one that raises instead is
    # handled the same way, with no half-started transaction left behind.
    n = Node()

    def raising(msg, peer):
        raise OSError("no route to host")

    n.wire.send = raising
    txn = n.send(method)
    assert txn.state == "terminated"
    n.clock.advance(0)
    assert [r.status for r in n.responses] == [503]
    assert "no route to host" in n.tu.errors[0][2]
    n.assert_clean()


def test_a_response_send_that_raises_does_not_reach_the_tu():
    n = Node()
    n.deliver(text(request("OPTIONS")), UAC["UDP"])
    [(txn, req)] = n.tu.requests

    def raising(response, request=None):
        raise OSError("socket closed")

    n.wire.send_response = raising
    txn.respond(make_response(req, 200, to_tag="t"))  # must not raise
    assert txn.state == "completed" and n.tu.errors
    n.clock.advance(32)
    n.assert_clean()


def test_request_helper_fires_with_final_only():
    n = Node()
    d = n.layer.request(request("OPTIONS"), UAS["UDP"])
    results = []
    d.addCallback(results.append)
    (_, _, req), = n.wire.take()
    n.answer(req, 100)
    assert results == []
    n.answer(req, 200)
    assert [r.status for r in results] == [200]
    n.clock.advance(5)
    d2 = n.layer.request(request("OPTIONS", call_id="c2"), UAS["UDP"])
    d2.addCallback(results.append)
    n.clock.advance(32)
    assert [r.status for r in results] == [200, 408]
    n.assert_clean()




def test_full_transaction_table_answers_503_statelessly():
    """Every count has a limit: past max_transactions a new request gets 503 + Retry-After, no state."""
    node = Node()
    node.layer.max_transactions = 2
    for n in range(3):
        node.deliver(text(request("OPTIONS", branch=f"z9hG4bKfull{n}")), UAC["UDP"])
    assert len(node.layer.server) == 2 and len(node.tu.requests) == 2
    (resp,) = node.wire.messages()
    assert resp.status == 503 and resp.headers.get("Retry-After") == "5" and resp.to.tag
    for txn, req in node.tu.requests:
        txn.respond(make_response(req, 200, to_tag="x"))
    node.clock.advance(64)
    node.assert_clean()
