"""
The B2BUA core as call-flow ladders on a task.Clock and a fake transport.

Each test drives leg A (the caller, at 192.0.2.10) and leg B (the callee,
at 10.0.0.2; a transfer target at 10.0.0.3) through the wire format and
reads what the B2BUA (10.0.0.1) sent as a ladder: C{"B<-INVITE"},
C{"A<-200 INVITE"}.  Every call ends with the clock run past 64*T1 and
nothing left behind: no DelayedCall, no call, no dialog, no transaction.
"""

from __future__ import annotations

import itertools

import pytest
from twisted.internet.task import Clock

from ctic.sip.b2bua import B2BUA, HeaderPolicy
from ctic.sip.message import make_response
from ctic.sip.parser import parse_datagram
from ctic.sip.transaction import Timers
from ctic.sip.transport import Peer, response_peer
from tests.support import assert_no_pending_calls

US = ("10.0.0.1", 5060)
HOSTS = {"192.0.2.10": "A", "10.0.0.2": "B", "10.0.0.3": "C"}
A_SDP = b"v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
B_SDP = b"v=0\r\no=bob 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
C_SDP = b"v=0\r\no=carol 1 1 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
BOTH = pytest.mark.parametrize("transport", ["UDP", "TCP"])
_branches = itertools.count(1)


class Wire:
    """The fake transport: records every message sent, re-parsed from its bytes."""

    def __init__(self):
        self.addresses = {"UDP": US, "TCP": US}
        self.user = None
        self.sent: list = []

    def send(self, msg, peer):
        self.sent.append((peer, parse_datagram(bytes(msg))))

    def send_response(self, response, request=None):
        source = request.source if request is not None else None
        peer = source if source is not None and source.reliable else response_peer(response.top_via, "UDP")
        self.send(response, peer)


def label(msg) -> str:
    return msg.method if hasattr(msg, "method") else f"{msg.status} {msg.cseq.method}"


class Far:
    """A far-end user agent: builds requests and responses as wire text."""

    def __init__(self, h, name, peer: Peer, user: str):
        self.h = h
        self.name = name
        self.peer = peer
        self.user = user
        self.contact = f"<sip:{user}@{peer.host}:{peer.port}" + (";transport=tcp>" if peer.reliable else ">")
        self.cseq = 100
        # dialog (set when the dialog exists): call_id, local, remote, target
        self.call_id = self.local = self.remote = self.target = None
        self.invite_branch = None

    def deliver(self, start, headers, body=b""):
        lines = [start] + [f"{n}: {v}" for n, v in headers]
        if body and not any(n.lower() == "content-type" for n, _ in headers):
            lines.append("Content-Type: application/sdp")
        data = ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        msg = parse_datagram(data)
        msg.source = self.peer
        self.h.b2bua.txns.messageReceived(msg)
        return msg

    def via(self, branch=None):
        return ("Via", f"SIP/2.0/{self.peer.transport} {self.peer.host}:{self.peer.port};branch={branch}")

    # --- leg A: the caller ------------------------------------------------------------

    def invite(self, body=A_SDP, extra=(), uri="sip:bob@10.0.0.1", to="<sip:bob@10.0.0.1>"):
        self.call_id = f"call-{self.name}-{next(_branches)}@{self.peer.host}"
        self.local = f"<sip:{self.user}@{self.peer.host}>;tag={self.name.lower()}tag"
        self.remote = to
        self.invite_branch = f"z9hG4bKinv{next(_branches)}"
        self.cseq = 1
        return self.deliver(f"INVITE {uri} SIP/2.0", [
            self.via(self.invite_branch), ("Max-Forwards", "70"), ("From", self.local), ("To", self.remote),
            ("Call-ID", self.call_id), ("CSeq", "1 INVITE"), ("Contact", self.contact), *extra,
        ], body)

    def cancel(self):
        return self.deliver("CANCEL sip:bob@10.0.0.1 SIP/2.0", [
            self.via(self.invite_branch), ("Max-Forwards", "70"), ("From", self.local), ("To", self.remote),
            ("Call-ID", self.call_id), ("CSeq", "1 CANCEL"),
        ])

    def ack_failure(self, resp):
        """ACK for a non-2xx final response (same branch as the INVITE)."""
        return self.deliver("ACK sip:bob@10.0.0.1 SIP/2.0", [
            self.via(self.invite_branch), ("Max-Forwards", "70"), ("From", self.local), ("To", str(resp.to)),
            ("Call-ID", self.call_id), ("CSeq", "1 ACK"),
        ])

    def established(self, resp):
        """Note the dialog a 2xx from the B2BUA set up."""
        self.remote = str(resp.to)
        self.target = str(resp.contact[0].uri)

    # --- leg B: the callee ------------------------------------------------------------------

    def answer(self, req, status, body=None, tag=None, contact=True):
        """Respond to a request the B2BUA sent us."""
        resp = make_response(req, status, to_tag=tag or f"{self.name.lower()}tag")
        if contact and status > 100 and req.method in ("INVITE", "UPDATE"):
            resp.headers.set("Contact", self.contact)
        lines = [resp.start_line()] + [f"{n}: {v}" for n, v in resp.headers.items() if n != "Contact"]
        headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
        if contact and status > 100 and req.method in ("INVITE", "UPDATE"):
            headers.append(("Contact", self.contact))
        if req.method == "INVITE" and req.to.tag is None and 100 < status < 300:
            self.call_id = req.call_id
            self.local = str(req.to) + f";tag={tag or self.name.lower() + 'tag'}"
            self.remote = str(req.from_)
            self.target = str(req.contact[0].uri)
        return self.deliver(lines[0], headers, body or b"")

    # --- in-dialog, either side ---------------------------------------------------------------

    def request(self, method, body=b"", extra=(), cseq=None):
        self.cseq += 1
        return self.deliver(f"{method} {self.target} SIP/2.0", [
            self.via(f"z9hG4bK{method.lower()}{next(_branches)}"), ("Max-Forwards", "70"),
            ("From", self.local), ("To", self.remote), ("Call-ID", self.call_id),
            ("CSeq", f"{cseq or self.cseq} {method}"), ("Contact", self.contact), *extra,
        ], body)

    def ack(self, resp, body=b""):
        """ACK for a 2xx the B2BUA sent us (its own transaction)."""
        return self.deliver(f"ACK {self.target} SIP/2.0", [
            self.via(f"z9hG4bKack{next(_branches)}"), ("Max-Forwards", "70"),
            ("From", self.local), ("To", self.remote), ("Call-ID", self.call_id),
            ("CSeq", f"{resp.cseq.seq} ACK"),
        ], body)


class Logic:
    """Call logic for the tests: connect to B at once unless told to hold."""

    def __init__(self, target="sip:bob@10.0.0.2:5080", hold=False):
        self.target = target
        self.hold = hold
        self.calls = []
        self.ended = []
        self.answered = []
        self.failures = []
        self.retry = None  # on_b_failure: connect here instead
        self.intercept = {}  # method -> fn(call, leg, server, request)

    def new_call(self, call):
        self.calls.append(call)
        if not self.hold:
            call.connect(self.target)

    def on_b_failure(self, call, response):
        self.failures.append(response.status)
        if self.retry is not None:
            target, self.retry = self.retry, None
            call.connect(target)
            return True
        return False

    def on_request(self, call, leg, server, request):
        fn = self.intercept.get(request.method)
        if fn is None:
            return False
        fn(call, leg, server, request)
        return True

    def on_answered(self, call):
        self.answered.append(call)

    def on_end(self, call, reason):
        self.ended.append(reason)


class Harness:
    def __init__(self, transport="UDP", logic=None, policy=None, hold_timeout=30.0):
        self.transport = transport
        self.clock = Clock()
        self.wire = Wire()
        self.logic = logic or Logic()
        tcp = ";transport=tcp" if transport == "TCP" else ""
        self.logic.target += tcp
        self.b2bua = B2BUA(self.clock, self.wire, self.logic, timers=Timers(), policy=policy,
                           hold_timeout=hold_timeout)
        self.a = Far(self, "A", Peer(transport, "192.0.2.10", 5070), "alice")
        self.b = Far(self, "B", Peer(transport, "10.0.0.2", 5080), "bob")
        self.c = Far(self, "C", Peer(transport, "10.0.0.3", 5090), "carol")
        self.last = {}

    def flow(self) -> list[str]:
        """What the B2BUA sent since the last call, as a ladder; remembers each message."""
        out = []
        for peer, msg in self.wire.sent:
            side = HOSTS.get(peer.host, str(peer))
            assert peer.transport == self.transport, (peer, msg)
            step = f"{side}<-{label(msg)}"
            out.append(step)
            self.last[step] = msg
        self.wire.sent = []
        return out

    def advance(self, seconds, step=0.25):
        for _ in range(int(seconds / step)):
            self.clock.advance(step)

    def connected_call(self):
        """A call A->B, answered and ACKed."""
        self.a.invite()
        invite = self.msg("B<-INVITE")
        self.b.answer(invite, 200, B_SDP)
        ok = self.msg("A<-200 INVITE")
        self.a.established(ok)
        self.a.ack(ok)
        self.flow()
        return self.b2bua.calls[0]

    def msg(self, step):
        self.flow()
        return self.last[step]

    def assert_clean(self):
        """Past 64*T1 nothing is left: timers, calls, dialogs, transactions."""
        self.advance(40.0)
        b = self.b2bua
        assert_no_pending_calls(self.clock)
        assert b.calls == []
        assert len(b.dialogs) == 0
        assert b.txns.client == {} and b.txns.server == {}
        assert b._by_b_call_id == {}


# --- a basic call -----------------------------------------------------------------------------

@BOTH
def test_basic_call_bye_from_a(transport):
    h = Harness(transport)
    h.a.invite(extra=[("Subject", "hello")])
    assert h.flow() == ["A<-100 INVITE", "B<-INVITE"]
    inv = h.last["B<-INVITE"]
    a_inv_call_id = h.a.call_id
    assert inv.call_id != a_inv_call_id  # a new dialog on leg B
    assert inv.from_.uri.user == "alice" and inv.from_.tag not in (None, "atag")
    assert str(inv.uri).startswith("sip:bob@10.0.0.2:5080")
    assert inv.top_via.host == "10.0.0.1" and len(inv.via) == 1
    assert inv.contact[0].uri.host == "10.0.0.1"
    assert inv.body == A_SDP and inv.headers.get("subject") == "hello"
    assert inv.headers.get("content-type") == "application/sdp"

    h.b.answer(inv, 180)
    assert h.flow() == ["A<-180 INVITE"]
    ringing = h.last["A<-180 INVITE"]
    assert ringing.to.tag and ringing.contact[0].uri.host == "10.0.0.1"
    assert h.b2bua.calls[0].state == "early"

    h.b.answer(inv, 200, B_SDP)
    assert h.flow() == ["B<-ACK", "A<-200 INVITE"]
    ok = h.last["A<-200 INVITE"]
    assert ok.to.tag == ringing.to.tag and ok.body == B_SDP and ok.call_id == a_inv_call_id
    assert h.last["B<-ACK"].cseq.seq == inv.cseq.seq and h.last["B<-ACK"].to.tag == "btag"
    assert h.logic.answered and h.b2bua.calls[0].state == "connected"
    h.a.established(ok)
    h.a.ack(ok)
    h.advance(5)
    assert h.flow() == []  # ACKed: no retransmission

    h.a.request("BYE")
    assert h.flow() == ["B<-BYE"]
    bye = h.last["B<-BYE"]
    assert bye.call_id == inv.call_id and bye.to.tag == "btag" and str(bye.uri).startswith("sip:bob@10.0.0.2")
    assert h.b2bua.calls == [] and h.logic.ended == ["BYE from a"]
    h.b.answer(bye, 200)
    assert h.flow() == ["A<-200 BYE"]
    h.assert_clean()


@BOTH
def test_bye_from_b(transport):
    h = Harness(transport)
    h.connected_call()
    h.b.request("BYE")
    assert h.flow() == ["A<-BYE"]
    bye = h.last["A<-BYE"]
    assert bye.call_id == h.a.call_id and bye.to.tag == "atag"
    assert str(bye.uri) == str(h.a.contact).strip("<>")
    h.a.answer(bye, 200)
    assert h.flow() == ["B<-200 BYE"]
    assert h.logic.ended == ["BYE from b"]
    h.assert_clean()


def test_hangup_after_ringing_byes_both_legs():
    """Leg A's early dialog (from the relayed 180) is confirmed by the 200: our hangup BYEs it."""
    h = Harness("UDP")
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 180)
    h.b.answer(inv, 200, B_SDP)
    ok = h.msg("A<-200 INVITE")
    h.a.established(ok)
    h.a.ack(ok)
    h.flow()
    h.b2bua.calls[0].hangup("ours")
    assert sorted(h.flow()) == ["A<-BYE", "B<-BYE"]
    h.a.answer(h.last["A<-BYE"], 200)
    h.b.answer(h.last["B<-BYE"], 200)
    h.assert_clean()


def test_bye_unanswered_by_the_other_side_still_ends_clean():
    h = Harness("UDP")
    h.connected_call()
    h.a.request("BYE")
    h.advance(40)
    steps = h.flow()
    assert steps[0] == "B<-BYE" and set(steps) == {"B<-BYE", "A<-408 BYE"}
    h.assert_clean()


# --- CANCEL --------------------------------------------------------------------------------------

@BOTH
def test_cancel_before_answer(transport):
    h = Harness(transport)
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 180)
    h.flow()
    h.a.cancel()
    assert h.flow() == ["A<-200 CANCEL", "B<-CANCEL", "A<-487 INVITE"]
    cancel = h.last["B<-CANCEL"]
    assert cancel.top_via.branch == inv.top_via.branch and cancel.cseq.seq == inv.cseq.seq
    h.b.answer(cancel, 200)
    h.b.answer(inv, 487)
    assert h.flow() == ["B<-ACK"]
    h.a.ack_failure(h.last["A<-487 INVITE"])
    assert h.flow() == []
    assert h.logic.ended == ["cancelled"]
    h.assert_clean()


def test_cancel_before_any_provisional_waits_for_one():
    h = Harness("UDP")
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.a.cancel()
    assert h.flow() == ["A<-200 CANCEL", "A<-487 INVITE"]  # §9.1: no CANCEL before a 1xx
    h.b.answer(inv, 100)
    h.b.answer(inv, 180)
    assert h.flow() == ["B<-CANCEL"]
    h.b.answer(h.last["B<-CANCEL"], 200)
    h.b.answer(inv, 487)
    assert h.flow() == ["B<-ACK"]
    h.assert_clean()


@BOTH
def test_late_200_after_cancel_gets_ack_and_bye(transport):
    h = Harness(transport)
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 180)
    h.a.cancel()
    h.flow()
    h.b.answer(h.last["B<-CANCEL"], 200)
    h.b.answer(inv, 200, B_SDP)  # the 200 crossed our CANCEL
    assert h.flow() == ["B<-ACK", "B<-BYE"]
    bye = h.last["B<-BYE"]
    assert bye.to.tag == "btag" and bye.call_id == inv.call_id
    h.b.answer(bye, 200)
    h.b.answer(inv, 200, B_SDP)  # a retransmission of the 200: ACK again, nothing else
    assert h.flow() == ["B<-ACK"]
    assert h.logic.ended == ["cancelled"]
    h.assert_clean()


def test_cancel_unanswered_by_b_gives_up_after_64_t1():
    h = Harness("UDP")
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 180)
    h.a.cancel()
    h.advance(40)
    assert "B<-CANCEL" in h.flow()
    assert h.b2bua.calls == [] and h.logic.ended == ["cancelled"]
    h.assert_clean()


def test_cancel_while_held_by_logic():
    h = Harness("UDP", Logic(hold=True))
    h.a.invite()
    assert h.flow() == ["A<-100 INVITE"]
    h.a.cancel()
    assert h.flow() == ["A<-200 CANCEL", "A<-487 INVITE"]
    assert h.logic.ended == ["cancelled"]
    h.assert_clean()


# --- leg B failures ---------------------------------------------------------------------------------

@BOTH
def test_leg_b_failure_relayed(transport):
    h = Harness(transport)
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 180)
    h.b.answer(inv, 486)
    assert h.flow() == ["A<-180 INVITE", "B<-ACK", "A<-486 INVITE"]
    busy = h.last["A<-486 INVITE"]
    assert busy.to.tag == h.last["A<-180 INVITE"].to.tag
    assert h.logic.failures == [486] and h.logic.ended == ["leg B failed 486"]
    h.a.ack_failure(busy)
    h.assert_clean()


def test_leg_b_timeout_is_408_to_a():
    h = Harness("UDP")
    h.a.invite()
    h.advance(40)
    steps = h.flow()
    assert steps.count("B<-INVITE") == 7 and steps[-1] == "A<-408 INVITE"  # Timer A doubling to B
    h.assert_clean()


@BOTH
def test_on_b_failure_retries_another_target(transport):
    logic = Logic()
    h = Harness(transport, logic)
    logic.retry = "sip:carol@10.0.0.3:5090" + (";transport=tcp" if transport == "TCP" else "")
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 503)
    assert h.flow() == ["B<-ACK", "C<-INVITE"]
    inv_c = h.last["C<-INVITE"]
    assert inv_c.body == A_SDP and inv_c.call_id != inv.call_id
    h.c.answer(inv_c, 200, C_SDP)
    assert h.flow() == ["C<-ACK", "A<-200 INVITE"]
    ok = h.last["A<-200 INVITE"]
    assert ok.body == C_SDP
    h.a.established(ok)
    h.a.ack(ok)
    h.a.request("BYE")
    assert h.flow() == ["C<-BYE"]
    h.c.answer(h.last["C<-BYE"], 200)
    assert h.flow() == ["A<-200 BYE"]
    h.assert_clean()


def test_on_b_failure_that_holds_the_call_is_bounded_by_the_hold_timeout():
    class Waits(Logic):
        def on_b_failure(self, call, response):
            self.failures.append(response.status)
            return True  # handled: will connect elsewhere once the CTI link says where

    h = Harness("UDP", Waits(), hold_timeout=5.0)
    h.a.invite()
    h.b.answer(h.msg("B<-INVITE"), 503)
    assert h.flow() == ["B<-ACK"] and h.logic.failures == [503]
    h.advance(4.5)
    assert h.flow() == []
    h.advance(0.5)
    assert h.flow() == ["A<-480 INVITE"] and h.logic.ended == ["rejected 480"]
    h.a.ack_failure(h.last["A<-480 INVITE"])
    h.assert_clean()


# --- holding a call -------------------------------------------------------------------------------

def test_logic_holds_then_connects_later():
    logic = Logic(hold=True)
    h = Harness("UDP", logic)
    h.a.invite()
    assert h.flow() == ["A<-100 INVITE"]
    call = logic.calls[0]
    assert call.state == "new"
    call.provisional(183)
    assert h.flow() == ["A<-183 INVITE"]
    h.advance(10)  # waiting on a CTI link; A's INVITE is not retransmitted to death
    assert h.flow() == []
    call.connect("sip:bob@10.0.0.2:5080")
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 200, B_SDP)
    steps = h.flow()
    assert steps == ["B<-ACK", "A<-200 INVITE"]
    ok = h.last["A<-200 INVITE"]
    assert ok.to.tag == h.last["A<-183 INVITE"].to.tag
    h.a.established(ok)
    h.a.ack(ok)
    h.advance(25)  # past the hold timeout: the connected call is not touched
    assert h.flow() == [] and call.state == "connected"
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_hold_timeout_is_480(transport):
    h = Harness(transport, Logic(hold=True), hold_timeout=5.0)
    h.a.invite()
    h.flow()
    h.advance(4.5)
    assert h.flow() == []
    h.advance(0.5)
    assert h.flow() == ["A<-480 INVITE"]
    assert h.logic.ended == ["rejected 480"]
    h.a.ack_failure(h.last["A<-480 INVITE"])
    h.assert_clean()


def test_logic_rejects_and_logic_crash_is_500():
    class Crash(Logic):
        def new_call(self, call):
            raise RuntimeError("boom")

    h = Harness("UDP", Crash())
    h.a.invite()
    assert h.flow() == ["A<-100 INVITE", "A<-500 INVITE"]
    h.assert_clean()


def test_hangup_by_logic_while_calling_cancels_b():
    h = Harness("UDP")
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 180)
    h.flow()
    h.logic.calls[0].hangup("cti gone")
    assert h.flow() == ["B<-CANCEL", "A<-487 INVITE"]
    h.b.answer(h.last["B<-CANCEL"], 200)
    h.b.answer(inv, 487)
    assert h.flow() == ["B<-ACK"]
    assert h.logic.ended == ["cti gone"]
    h.assert_clean()


def test_hangup_by_logic_when_connected_byes_both_legs():
    h = Harness("TCP")
    call = h.connected_call()
    call.hangup("done", headers={"X-Genesys-GVP-CDR": "x=1"})
    steps = h.flow()
    assert sorted(steps) == ["A<-BYE", "B<-BYE"]
    assert h.last["A<-BYE"].headers.get("x-genesys-gvp-cdr") == "x=1"
    h.a.answer(h.last["A<-BYE"], 200)
    h.b.answer(h.last["B<-BYE"], 200)
    assert h.flow() == []
    h.assert_clean()


# --- the 2xx to A until ACK (§13.3.1.4) ------------------------------------------------------------

def test_2xx_to_a_retransmitted_until_ack_udp():
    h = Harness("UDP")
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 200, B_SDP)
    h.flow()
    times = []
    for _ in range(int(9 / 0.25)):
        h.clock.advance(0.25)
        if h.flow():
            times.append(h.clock.seconds())
    assert times == [0.5, 1.5, 3.5, 7.5]  # T1, 2T1, 4T1 ... (capped at T2)
    ok = h.last["A<-200 INVITE"]
    h.a.established(ok)
    h.a.ack(ok)
    h.advance(20)
    assert h.flow() == []
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_no_ack_from_a_tears_the_call_down(transport):
    h = Harness(transport)
    h.a.invite()
    inv = h.msg("B<-INVITE")
    h.b.answer(inv, 200, B_SDP)
    h.flow()
    h.advance(31.5)
    steps = h.flow()
    if transport == "UDP":
        assert steps == ["A<-200 INVITE"] * 10  # at 0.5, 1.5, 3.5, 7.5, then every T2 up to 31.5
    else:
        assert steps == []  # reliable: no retransmission
    h.advance(0.5)  # 64*T1 after the first 2xx
    assert sorted(h.flow()) == ["A<-BYE", "B<-BYE"]
    assert h.logic.ended == ["no ACK"]
    h.b.answer(h.last["B<-BYE"], 200)
    h.assert_clean()


# --- re-INVITE and UPDATE ----------------------------------------------------------------------------

NEW_A_SDP = A_SDP.replace(b"4000", b"4002")
NEW_B_SDP = B_SDP.replace(b"5000", b"5002")


@BOTH
def test_reinvite_from_a_relayed(transport):
    h = Harness(transport)
    h.connected_call()
    h.a.request("INVITE", NEW_A_SDP)
    assert h.flow() == ["B<-INVITE"]
    re = h.last["B<-INVITE"]
    assert re.to.tag == "btag" and re.body == NEW_A_SDP and re.cseq.seq == 2
    h.b.answer(re, 200, NEW_B_SDP)
    assert h.flow() == ["B<-ACK", "A<-200 INVITE"]
    ok = h.last["A<-200 INVITE"]
    assert ok.body == NEW_B_SDP and ok.cseq.seq == h.a.cseq and ok.contact[0].uri.host == "10.0.0.1"
    h.a.ack(ok)
    h.advance(10)
    assert h.flow() == []  # ACKed
    h.b.request("BYE")
    h.a.answer(h.msg("A<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_reinvite_from_b_relayed(transport):
    h = Harness(transport)
    h.connected_call()
    h.b.request("INVITE", NEW_B_SDP, extra=[("X-Why", "hold")])
    assert h.flow() == ["A<-INVITE"]
    re = h.last["A<-INVITE"]
    assert re.call_id == h.a.call_id and re.body == NEW_B_SDP and re.headers.get("x-why") == "hold"
    h.a.answer(re, 200, NEW_A_SDP)
    assert h.flow() == ["A<-ACK", "B<-200 INVITE"]
    ok = h.last["B<-200 INVITE"]
    assert ok.body == NEW_A_SDP and ok.call_id == h.b.call_id
    h.b.ack(ok)
    h.advance(10)
    assert h.flow() == []
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


def test_reinvite_2xx_retransmitted_until_ack_and_no_ack_ends_the_call():
    h = Harness("UDP")
    h.connected_call()
    h.advance(10)  # long after the first 2xx was ACKed
    h.a.request("INVITE", NEW_A_SDP)
    h.b.answer(h.msg("B<-INVITE"), 200, NEW_B_SDP)
    assert h.flow() == ["B<-ACK", "A<-200 INVITE"]
    seq = h.last["A<-200 INVITE"].cseq.seq
    h.advance(1.5)
    assert h.flow() == ["A<-200 INVITE"] * 2  # this 2xx (not the first one), at T1 and 2T1
    assert h.last["A<-200 INVITE"].cseq.seq == seq and h.last["A<-200 INVITE"].body == NEW_B_SDP
    h.advance(31)
    assert sorted(set(h.flow())) == ["A<-200 INVITE", "A<-BYE", "B<-BYE"]
    assert h.logic.ended == ["no ACK"]
    h.assert_clean()


def test_reinvite_without_offer_ack_carries_the_answer():
    h = Harness("UDP")
    h.connected_call()
    h.a.request("INVITE")  # offerless: B's 2xx holds the offer, A's ACK the answer
    re = h.msg("B<-INVITE")
    h.b.answer(re, 200, NEW_B_SDP)
    assert h.flow() == ["A<-200 INVITE"]
    ok = h.last["A<-200 INVITE"]
    h.a.ack(ok, NEW_A_SDP)
    assert h.flow() == ["B<-ACK"]
    assert h.last["B<-ACK"].body == NEW_A_SDP and h.last["B<-ACK"].cseq.seq == re.cseq.seq
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


def test_reinvite_failure_relayed_and_call_stays():
    h = Harness("UDP")
    call = h.connected_call()
    h.a.request("INVITE", NEW_A_SDP)
    re = h.msg("B<-INVITE")
    h.b.answer(re, 488)
    assert h.flow() == ["B<-ACK", "A<-488 INVITE"]
    assert call.state == "connected"
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_reinvite_glare_is_491(transport):
    h = Harness(transport)
    h.connected_call()
    h.a.request("INVITE", NEW_A_SDP)
    re = h.msg("B<-INVITE")
    h.b.request("INVITE", NEW_B_SDP)  # B's own re-INVITE crosses ours
    assert h.flow() == ["B<-491 INVITE"]
    h.b.ack(h.last["B<-491 INVITE"])
    h.a.request("INVITE", NEW_A_SDP)  # and A may not start a second one either
    assert h.flow() == ["A<-491 INVITE"]
    h.b.answer(re, 200, NEW_B_SDP)
    ok = h.msg("A<-200 INVITE")
    h.a.ack(ok)
    h.b.request("INVITE", NEW_B_SDP)  # after the first completes, B's retry goes through
    assert h.flow() == ["A<-INVITE"]
    h.a.answer(h.last["A<-INVITE"], 200, NEW_A_SDP)
    h.b.ack(h.msg("B<-200 INVITE"))
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_update_relayed(transport):
    h = Harness(transport)
    h.connected_call()
    h.b.request("UPDATE", NEW_B_SDP)
    assert h.flow() == ["A<-UPDATE"]
    up = h.last["A<-UPDATE"]
    assert up.body == NEW_B_SDP and up.contact[0].uri.host == "10.0.0.1"
    h.a.answer(up, 200, NEW_A_SDP)
    assert h.flow() == ["B<-200 UPDATE"]
    assert h.last["B<-200 UPDATE"].body == NEW_A_SDP
    h.b.request("BYE")
    h.a.answer(h.msg("A<-BYE"), 200)
    h.assert_clean()


def test_out_of_order_cseq_is_500_and_not_relayed():
    h = Harness("UDP")
    h.connected_call()
    h.a.request("INFO", cseq=5)
    h.b.answer(h.msg("B<-INFO"), 200)
    h.flow()
    h.a.request("INFO", cseq=3)
    assert h.flow() == ["A<-500 INFO"]
    h.a.request("BYE", cseq=6)
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


# --- INFO and REFER ------------------------------------------------------------------------------------

def test_info_intercepted_by_logic():
    logic = Logic()
    got = []

    def user_data(call, leg, server, request):
        got.append((leg.side, request.body))
        resp = make_response(request, 200)
        resp.body = b"Result=SUCCESS&Action=UserDataResp"
        server.respond(resp)

    logic.intercept["INFO"] = user_data
    h = Harness("UDP", logic)
    h.connected_call()
    h.b.request("INFO", b"Action=GetData")
    assert h.flow() == ["B<-200 INFO"]
    assert h.last["B<-200 INFO"].body == b"Result=SUCCESS&Action=UserDataResp"
    assert got == [("b", b"Action=GetData")]
    h.b.request("BYE")
    h.a.answer(h.msg("A<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_info_relayed_when_not_intercepted(transport):
    h = Harness(transport)
    h.connected_call()
    h.a.request("INFO", b"Signal=5", extra=[("Content-Type", "application/dtmf-relay")])
    assert h.flow() == ["B<-INFO"]
    info = h.last["B<-INFO"]
    assert info.body == b"Signal=5" and info.headers.get("content-type") == "application/dtmf-relay"
    h.b.answer(info, 200)
    assert h.flow() == ["A<-200 INFO"]
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


def test_logic_sends_its_own_info_on_a_leg():
    h = Harness("UDP")
    call = h.connected_call()
    answers = []
    call.send_request(call.b, "INFO", b"Action=AttachData",
                      {"Content-Type": "application/x-www-form-urlencoded"}, answers.append)
    info = h.msg("B<-INFO")
    assert info.body == b"Action=AttachData" and info.to.tag == "btag"
    h.b.answer(info, 200)
    assert [r.status for r in answers] == [200] and h.flow() == []
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


@BOTH
def test_refer_intercepted_and_transfer_by_replace_b(transport):
    logic = Logic()
    results = []
    tcp = ";transport=tcp" if transport == "TCP" else ""

    def refer(call, leg, server, request):
        server.respond(make_response(request, 202))
        call.replace_b(f"sip:carol@10.0.0.3:5090{tcp}", on_result=results.append)

    logic.intercept["REFER"] = refer
    h = Harness(transport, logic)
    h.connected_call()
    old_b_call_id = h.b.call_id
    h.b.request("REFER", extra=[("Refer-To", "<sip:carol@10.0.0.3:5090>")])
    assert h.flow() == ["B<-202 REFER", "C<-INVITE"]
    inv_c = h.last["C<-INVITE"]
    assert inv_c.body == A_SDP and inv_c.call_id not in (old_b_call_id, h.a.call_id)
    h.c.answer(inv_c, 180)
    assert h.flow() == []  # the new leg's progress is not A's business
    h.c.answer(inv_c, 200, C_SDP)
    assert h.flow() == ["C<-ACK", "B<-BYE", "A<-INVITE"]
    assert h.last["B<-BYE"].call_id == old_b_call_id
    re = h.last["A<-INVITE"]
    assert re.body == C_SDP and re.call_id == h.a.call_id and re.to.tag == "atag"
    assert [r.status for r in results] == [200]
    h.b.answer(h.last["B<-BYE"], 200)
    h.a.answer(re, 200, A_SDP)
    assert h.flow() == ["A<-ACK"]
    # the call now runs A <-> C
    h.a.request("BYE")
    assert h.flow() == ["C<-BYE"]
    h.c.answer(h.last["C<-BYE"], 200)
    assert h.flow() == ["A<-200 BYE"]
    h.assert_clean()


def test_failed_replacement_keeps_the_old_leg_b():
    h = Harness("UDP")
    call = h.connected_call()
    results = []
    call.replace_b("sip:carol@10.0.0.3:5090", on_result=results.append)
    inv_c = h.msg("C<-INVITE")
    h.c.answer(inv_c, 486)
    assert h.flow() == ["C<-ACK"]
    assert [r.status for r in results] == [486] and call.state == "connected"
    # the old leg B is still there
    h.a.request("INFO", b"x")
    h.b.answer(h.msg("B<-INFO"), 200)
    assert h.flow() == ["A<-200 INFO"]
    h.b.request("BYE")
    h.a.answer(h.msg("A<-BYE"), 200)
    h.assert_clean()


def test_call_ends_while_replacement_rings():
    h = Harness("UDP")
    call = h.connected_call()
    call.replace_b("sip:carol@10.0.0.3:5090")
    inv_c = h.msg("C<-INVITE")
    h.c.answer(inv_c, 180)
    h.a.request("BYE")
    steps = h.flow()
    assert steps[0] == "B<-BYE" and "C<-CANCEL" in steps
    h.b.answer(h.last["B<-BYE"], 200)
    h.c.answer(h.last["C<-CANCEL"], 200)
    h.c.answer(inv_c, 487)
    h.flow()
    h.assert_clean()


# --- unknown dialogs and other requests ---------------------------------------------------------------

def test_request_in_unknown_dialog_is_481():
    h = Harness("UDP")
    h.a.call_id, h.a.local, h.a.remote = "nope@x", "<sip:alice@x>;tag=1", "<sip:bob@y>;tag=2"
    h.a.target = "sip:ctic@10.0.0.1"
    for method in ("BYE", "INFO", "INVITE", "UPDATE", "REFER"):
        h.a.request(method)
    assert h.flow() == [f"A<-481 {m}" for m in ("BYE", "INFO", "INVITE", "UPDATE", "REFER")]
    h.assert_clean()


def test_ended_call_dialog_is_481():
    h = Harness("UDP")
    h.connected_call()
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.flow()
    h.a.request("INFO")
    assert h.flow() == ["A<-481 INFO"]
    h.assert_clean()


def test_options_and_out_of_dialog_bye():
    h = Harness("UDP")
    h.a.call_id, h.a.local, h.a.remote, h.a.target = "o@x", "<sip:a@x>;tag=1", "<sip:b@y>", "sip:ctic@10.0.0.1"
    h.a.request("OPTIONS")
    h.a.request("BYE")
    assert h.flow() == ["A<-200 OPTIONS", "A<-405 BYE"]
    assert "INVITE" in h.last["A<-200 OPTIONS"].headers.get("allow")
    h.assert_clean()


# --- header policy -------------------------------------------------------------------------------------

def test_header_policy_copied_removed_added_rewritten():
    def rewrite(src, out, direction):
        if direction == "a->b" and "x-dnis" in src.headers:
            out.uri.user = src.headers.get("x-dnis")
        if direction == "b->a":
            out.headers.set("X-Direction", direction)

    policy = HeaderPolicy(remove=("X-Secret",), add={"X-Node": "ctic-1"}, rewrite=rewrite)
    h = Harness("UDP", policy=policy)
    h.a.invite(extra=[("X-Secret", "pw"), ("X-Dnis", "5551212"), ("X-Keep", "1"), ("X-Keep", "2"),
                      ("Route", "<sip:10.0.0.1;lr>"), ("Record-Route", "<sip:gw.example.com;lr>"),
                      ("User-Agent", "phone"), ("Supported", "timer"), ("Require", "")])
    inv = h.msg("B<-INVITE")
    assert inv.headers.getlist("x-keep") == ["1", "2"]  # copied, in order
    assert "x-secret" not in inv.headers  # removed by the policy
    for never in ("route", "record-route", "user-agent", "supported"):
        assert never not in inv.headers  # hop and dialog headers never cross
    assert inv.headers.get("x-node") == "ctic-1"  # added
    assert inv.uri.user == "5551212"  # rewritten
    h.b.answer(inv, 200, B_SDP)
    ok = h.msg("A<-200 INVITE")
    assert ok.headers.get("x-direction") == "b->a" and ok.headers.get("x-node") == "ctic-1"
    h.a.established(ok)
    h.a.ack(ok)
    h.a.request("BYE")
    h.b.answer(h.msg("B<-BYE"), 200)
    h.assert_clean()


def test_many_calls_interleaved_leave_nothing():
    h = Harness("UDP")
    far = []
    for i in range(20):
        a = Far(h, f"A{i}", Peer("UDP", "192.0.2.10", 6000 + i), "alice")
        a.invite()
        far.append((a, h.msg("B<-INVITE")))
    assert len(h.b2bua.calls) == 20
    for i, (a, inv) in enumerate(far):
        b = Far(h, f"B{i}", Peer("UDP", "10.0.0.2", 5080), "bob")
        if i % 3 == 0:
            b.answer(inv, 486)
            continue
        b.answer(inv, 200, B_SDP, tag=f"b{i}")
        ok = h.msg("A<-200 INVITE")
        a.established(ok)
        a.ack(ok)
        if i % 3 == 1:
            a.request("BYE")
            b.answer(h.msg("B<-BYE"), 200)
        else:
            b.request("BYE")
            a.answer(h.msg("A<-BYE"), 200)
    h.flow()
    h.assert_clean()



@BOTH
def test_bye_from_a_on_an_early_dialog_cancels_leg_b(transport):
    """§15: the caller BYEs its early dialog: 200 to the BYE, 487 to its INVITE, CANCEL to B."""
    h = Harness(transport)
    h.a.invite()
    invite = h.msg("B<-INVITE")
    h.b.answer(invite, 180)
    ringing = h.msg("A<-180 INVITE")
    h.a.established(ringing)
    h.a.request("BYE")
    flow = h.flow()
    assert "A<-200 BYE" in flow and "A<-487 INVITE" in flow and "B<-CANCEL" in flow
    h.b.answer(h.last["B<-CANCEL"], 200)
    h.b.answer(invite, 487)
    assert "B<-ACK" in h.flow()
    h.assert_clean()



def test_call_limit_answers_503_with_retry_after():
    h = Harness(logic=Logic(hold=True))
    h.b2bua.max_calls = 1
    h.a.invite()
    h.flow()
    first = h.a.call_id, h.a.invite_branch
    h.a.call_id = "second-call"
    h.a.invite()
    flow = h.flow()
    assert flow == ["A<-503 INVITE"]
    assert h.last["A<-503 INVITE"].headers.get("Retry-After") == "5"
    assert len(h.b2bua.calls) == 1
    h.a.ack_failure(h.last["A<-503 INVITE"])
    h.a.call_id, h.a.invite_branch = first
    h.a.cancel()  # the held first call ends too
    assert h.flow() == ["A<-200 CANCEL", "A<-487 INVITE"]
    h.assert_clean()



@BOTH
def test_leg_b_ringing_too_long_is_cancelled_and_a_gets_408(transport):
    """The B2BUA's own Timer C: a callee that rings for ever does not keep the call for ever."""
    h = Harness(transport)
    h.b2bua.no_answer_timeout = 60.0
    h.a.invite()
    invite = h.msg("B<-INVITE")
    h.b.answer(invite, 180)
    h.flow()
    h.advance(59.0)
    assert "B<-CANCEL" not in h.flow()
    h.advance(1.5)
    flow = h.flow()
    assert "B<-CANCEL" in flow and "A<-408 INVITE" in flow
    h.b.answer(h.last["B<-CANCEL"], 200)
    h.b.answer(invite, 487)
    h.assert_clean()


@BOTH
def test_bye_from_leg_b_on_an_early_dialog_fails_leg_a_instead_of_byeing_it(transport):
    """§15: we are leg A's callee, so leg A gets a final failure, never a BYE on its early dialog."""
    h = Harness(transport)
    h.a.invite()
    invite = h.msg("B<-INVITE")
    h.b.answer(invite, 180)
    h.b.request("BYE")
    flow = h.flow()
    assert "B<-200 BYE" in flow and "A<-480 INVITE" in flow and "B<-CANCEL" in flow
    assert not any(step.startswith("A<-BYE") for step in flow)
    h.b.answer(h.last["B<-CANCEL"], 200)
    h.b.answer(invite, 487)
    h.assert_clean()
