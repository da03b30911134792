"""
The stateful proxy core (RFC 3261 §16) as call-flow ladders: a UAC and UASes
talk to the proxy through a recording wire on a task.Clock; each test reads
what goes out after each message in.  Every scenario ends with no
DelayedCall, no transaction and no request context left.
"""

from __future__ import annotations

import itertools

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ctic.sip.message import Request, Response
from ctic.sip.parser import parse_datagram
from ctic.sip.proxy import Forward, Proxy, Reject
from ctic.sip.transport import Peer, response_peer, stamp_via
from tests.support import assert_no_pending_calls

US = ("10.0.0.1", 5060)
UAC = Peer("UDP", "192.0.2.10", 5060)
UAS = Peer("UDP", "10.0.0.2", 5060)
UAS2 = Peer("UDP", "10.0.0.3", 5060)
UAS_TCP = Peer("TCP", "10.0.0.4", 5060)
_n = itertools.count(1)


class Wire:
    """The proxy's transport: records (peer, message) for every send."""

    def __init__(self):
        self.addresses = {"UDP": US, "TCP": US}
        self.user = None
        self.sent: list = []
        self.unreachable: set = set()

    def send(self, msg, peer):
        if peer in self.unreachable:
            self.user.transportError(peer, msg, "connection refused")
            return
        self.sent.append((peer, parse_datagram(bytes(msg))))

    def send_response(self, response, request=None):
        source = request.source if request is not None else None
        peer = source if source is not None and source.reliable else response_peer(response.top_via, "UDP")
        self.send(response, peer)


class Router:
    """A router whose decisions each test sets; records what the proxy tells it."""

    def __init__(self, decide=None, retry=None):
        self.decide = decide or (lambda request, ctx: Forward())
        self.retry = retry
        self.responses = []
        self.finished = []
        self.acks = []
        self.ack_peer = None

    def route_request(self, request, ctx):
        return self.decide(request, ctx)

    def on_response(self, response, ctx):
        self.responses.append(response.status)
        if self.retry is not None:
            return self.retry(response, ctx)
        return None

    def on_finished(self, ctx, response):
        self.finished.append((ctx.request.method, response.status))

    def on_ack(self, ack):
        self.acks.append(ack)
        return self.ack_peer


class Net:
    def __init__(self, router=None, **kw):
        self.clock = Clock()
        self.wire = Wire()
        self.router = router or Router()
        self.proxy = Proxy(self.clock, self.wire, self.router, **kw)

    def deliver(self, text_or_msg, peer: Peer):
        raw = text_or_msg if isinstance(text_or_msg, str) else bytes(text_or_msg).decode()
        msg = parse_datagram(raw.encode())
        msg.source = peer
        if isinstance(msg, Request):
            stamp_via(msg, peer.host, peer.port)
        self.wire.user.messageReceived(msg)

    def take(self, keep_100=False):
        out, self.wire.sent = self.wire.sent, []
        if not keep_100:
            out = [(p, m) for p, m in out if not (isinstance(m, Response) and m.status == 100)]
        return out

    def one(self, to: Peer):
        out = self.take()
        assert len(out) == 1, [(str(p), m.start_line()) for p, m in out]
        peer, msg = out[0]
        assert (peer.host, peer.port) == (to.host, to.port), (str(peer), msg.start_line())
        return msg

    def ladder(self):
        """What went out, as sorted (host, status or method) pairs."""
        return sorted((p.host, str(m.status) if isinstance(m, Response) else m.method) for p, m in self.take())

    def nothing(self):
        out = self.take()
        assert out == [], [(str(p), m.start_line()) for p, m in out]

    def finish(self, seconds=64.0):
        """Let every timer run out; nothing may be left behind."""
        self.clock.pump([0.5] * int(seconds * 2))
        assert_no_pending_calls(self.clock)
        assert self.proxy.contexts == {}
        assert self.proxy.txns.client == {} and self.proxy.txns.server == {}


def request(method, uri="sip:bob@10.0.0.2", *, peer=UAC, call_id="call-1", cseq=1, from_tag="a1",
            to_tag=None, route=(), headers=(), max_forwards=70, branch=None) -> str:
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{peer.transport} {peer.host}:{peer.port};branch={branch or f'z9hG4bKua{next(_n)}'}",
    ]
    if max_forwards is not None:
        lines.append(f"Max-Forwards: {max_forwards}")
    lines += [
        f"From: <sip:alice@{UAC.host}>;tag={from_tag}",
        "To: <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:alice@{UAC.host}:{UAC.port}>",
    ]
    lines += [f"Route: {r}" for r in route]
    lines += list(headers)
    return "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"


def answer(req: Request, status, *, to_tag="b1", contact=UAS, headers=()) -> str:
    """A UAS's response to a request the proxy sent it."""
    lines = [f"SIP/2.0 {status} Whatever"]
    lines += [f"Via: {v}" for v in req.via]
    to = str(req.to) + ("" if req.to.tag or status == 100 else f";tag={to_tag}")
    lines += [f"From: {req.from_}", f"To: {to}", f"Call-ID: {req.call_id}", f"CSeq: {req.cseq}"]
    if req.method == "INVITE" and status < 300:
        lines.append(f"Contact: <sip:bob@{contact.host}:{contact.port}>")
        lines += [f"Record-Route: {rr}" for rr in req.record_route]
    lines += list(headers)
    return "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"


def ack_for(invite: str, response: Response, *, peer=UAC) -> str:
    """The UAC's ACK for a 2xx: to the Contact, through the route set (§13.2.2.4)."""
    inv = parse_datagram(invite.encode())
    routes = [str(rr) for rr in reversed(response.record_route)]
    return request("ACK", str(response.contact[0].uri), peer=peer, call_id=inv.call_id, cseq=inv.cseq.seq,
                   to_tag=response.to.tag, route=routes)


def vias(msg):
    return [(v.host, v.port) for v in msg.via]


# --- a whole call ----------------------------------------------------------------------


def test_invite_call_flow_through_the_proxy():
    net = Net()
    invite = request("INVITE")
    net.deliver(invite, UAC)
    (p, trying), (p2, fwd) = net.take(keep_100=True)
    assert p == UAC and trying.status == 100 and trying.to.tag is None
    assert p2 == UAS and fwd.method == "INVITE" and str(fwd.uri) == "sip:bob@10.0.0.2"
    # §16.6: our Via on top (a loop-detecting branch), Max-Forwards - 1, Record-Route with lr.
    assert vias(fwd) == [US, (UAC.host, UAC.port)]
    assert fwd.top_via.branch.startswith("z9hG4bK-")
    assert fwd.max_forwards == 69
    assert [str(rr) for rr in fwd.record_route] == ["<sip:10.0.0.1:5060;lr>"]

    net.deliver(answer(fwd, 180), UAS)
    ringing = net.one(UAC)
    assert ringing.status == 180 and vias(ringing) == [(UAC.host, UAC.port)]
    net.deliver(answer(fwd, 200), UAS)
    ok = net.one(UAC)
    assert ok.status == 200 and vias(ok) == [(UAC.host, UAC.port)] and ok.to.tag == "b1"
    assert [str(rr) for rr in ok.record_route] == ["<sip:10.0.0.1:5060;lr>"]
    assert net.router.finished == [("INVITE", 200)]

    net.deliver(answer(fwd, 200), UAS)  # the UAS retransmits its 2xx: relayed again
    assert net.one(UAC).status == 200

    # The ACK for the 2xx: routed through us (our Route popped) to the Contact, statelessly.
    net.deliver(ack_for(invite, ok), UAC)
    ack = net.one(UAS)
    assert ack.method == "ACK" and str(ack.uri) == "sip:bob@10.0.0.2:5060"
    assert ack.route == [] and vias(ack)[0] == US and ack.max_forwards == 69
    assert len(net.router.acks) == 1

    # An in-dialog BYE: the router says None, so it follows Route / Request-URI.
    net.router.decide = lambda request, ctx: None
    bye = request("BYE", str(ok.contact[0].uri), to_tag="b1", cseq=2, route=["<sip:10.0.0.1:5060;lr>"])
    net.deliver(bye, UAC)
    fbye = net.one(UAS)
    assert fbye.method == "BYE" and fbye.route == [] and fbye.record_route == []
    net.deliver(answer(fbye, 200), UAS)
    assert net.one(UAC).status == 200
    assert net.router.finished[-1] == ("BYE", 200)
    net.finish()


def test_bye_from_the_callee_side():
    net = Net(Router(lambda request, ctx: None))
    # The callee's route set is our Record-Route; the target is the caller's Contact.
    bye = request("BYE", f"sip:alice@{UAC.host}:{UAC.port}", peer=UAS, from_tag="b1", to_tag="a1",
                  route=["<sip:10.0.0.1:5060;lr>"])
    net.deliver(bye, UAS)
    fwd = net.one(UAC)
    assert fwd.method == "BYE" and vias(fwd) == [US, (UAS.host, UAS.port)]
    net.deliver(answer(fwd, 200), UAC)
    assert net.one(UAS).status == 200
    net.finish()


# --- Record-Route ----------------------------------------------------------------------


def test_double_record_route_when_transports_differ():
    net = Net(Router(lambda request, ctx: Forward(peer=UAS_TCP, record_route={"gvp": "x1"})))
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS_TCP)
    # RFC 5658: one entry per side; the top one faces the next hop.
    assert [str(rr) for rr in fwd.record_route] == [
        "<sip:10.0.0.1:5060;transport=tcp;lr;gvp=x1>",
        "<sip:10.0.0.1:5060;lr;gvp=x1>",
    ]
    net.deliver(answer(fwd, 486), UAS_TCP)
    assert net.ladder() == [(UAS_TCP.host, "ACK"), (UAC.host, "486")]
    net.finish()


def test_no_record_route_when_the_router_says_so():
    net = Net(Router(lambda request, ctx: Forward(record_route=False)))
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS)
    assert fwd.record_route == []
    net.deliver(answer(fwd, 603), UAS)
    net.take()
    net.finish()


def test_non_dialog_creating_request_gets_no_record_route():
    net = Net()
    net.deliver(request("OPTIONS"), UAC)
    fwd = net.one(UAS)  # and no 100 Trying for a non-INVITE
    assert fwd.record_route == []
    net.deliver(answer(fwd, 200), UAS)
    assert net.one(UAC).status == 200
    net.finish()


# --- request validation (§16.3) --------------------------------------------------------


def test_max_forwards_zero_is_483_and_one_is_forwarded_as_zero():
    net = Net()
    net.deliver(request("INVITE", max_forwards=0), UAC)
    (r,) = [m for _, m in net.take(keep_100=True)]
    assert r.status == 483 and r.to.tag  # §8.2.6.2 To tag; no 100 Trying first; nothing forwarded
    net.deliver(request("OPTIONS", call_id="c2", max_forwards=1), UAC)
    assert net.one(UAS).max_forwards == 0
    net.take()
    net.deliver(request("OPTIONS", call_id="c3", max_forwards=None), UAC)
    assert net.one(UAS).max_forwards == 70  # §16.6 step 3: added with 70
    net.finish()


def test_loop_is_482_but_a_spiral_is_forwarded():
    net = Net()
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS)
    # The next hop sends it straight back to us, unchanged: a loop.
    looped = bytes(fwd).decode().replace("Via:", f"Via: SIP/2.0/UDP {UAS.host}:{UAS.port};branch=z9hG4bKloop\r\nVia:", 1)
    net.deliver(looped, UAS)
    out = net.take(keep_100=True)
    assert [(p.host, m.status) for p, m in out] == [(UAS.host, 482)]
    assert out[0][1].to.tag
    # Back to us with a new Request-URI (e.g. retargeted): a spiral, forwarded.
    spiral = looped.replace("INVITE sip:bob@10.0.0.2", "INVITE sip:carol@10.0.0.3", 1).replace(
        "z9hG4bKloop", "z9hG4bKspiral")
    net.deliver(spiral, UAS)
    again = net.one(UAS2)
    assert len(again.via) == 4 and str(again.uri) == "sip:carol@10.0.0.3"
    net.deliver(answer(again, 480), UAS2)
    net.deliver(answer(fwd, 480), UAS)
    net.take()
    net.finish()


def test_proxy_require_420_with_unsupported():
    net = Net()
    net.deliver(request("INVITE", headers=["Proxy-Require: foo, 100rel"]), UAC)
    (r,) = [m for _, m in net.take(keep_100=True)]
    assert r.status == 420 and r.headers.getlist("unsupported") == ["foo", "100rel"]
    net.finish()


# --- Route processing (§16.4) -----------------------------------------------------------


def test_loose_routing_pops_our_route_and_follows_the_next():
    net = Net()
    route = ["<sip:10.0.0.1:5060;lr>", "<sip:10.0.0.3:5060;lr>"]
    net.deliver(request("INVITE", route=route), UAC)
    fwd = net.one(UAS2)  # the next Route, not the Request-URI
    assert str(fwd.uri) == "sip:bob@10.0.0.2"
    assert [str(r) for r in fwd.route] == ["<sip:10.0.0.3:5060;lr>"]
    net.deliver(answer(fwd, 404), UAS2)
    assert net.ladder() == [(UAS2.host, "ACK"), (UAC.host, "404")]
    net.finish()


def test_strict_route_compatibility_our_record_route_as_request_uri():
    # §16.4: a strict router puts our Record-Route URI (as we wrote it,
    # with lr) in the Request-URI and the remote target last in Route.
    net = Net(Router(lambda request, ctx: None))
    for n, ruri in enumerate(["sip:10.0.0.1:5060;lr", "sip:10.0.0.1"]):
        net.deliver(request("BYE", ruri, call_id=f"strict{n}", to_tag="b1",
                            route=["<sip:bob@10.0.0.2:5060>"]), UAC)
        fwd = net.one(UAS)
        assert str(fwd.uri) == "sip:bob@10.0.0.2:5060" and fwd.route == []
        net.deliver(answer(fwd, 200), UAS)
        assert net.one(UAC).status == 200
    net.finish()


def test_preloaded_route_to_us_keeps_a_request_uri_with_a_user_part():
    # A gateway whose outbound proxy is the RM sends INVITE sip:800@RM with
    # Route: <sip:RM;lr>.  That Request-URI is not a Record-Route of ours
    # (ours has no user part): it stays, and the DNIS with it.
    seen = []

    def decide(request, ctx):
        seen.append((str(request.uri), [str(r) for r in request.route]))
        return Forward(peer=UAS)

    net = Net(Router(decide))
    net.deliver(request("INVITE", "sip:800@10.0.0.1", route=["<sip:10.0.0.1:5060;lr>"]), UAC)
    assert seen == [("sip:800@10.0.0.1", [])]
    fwd = net.one(UAS)
    assert str(fwd.uri) == "sip:800@10.0.0.1" and fwd.route == []
    net.deliver(answer(fwd, 486), UAS)
    assert net.ladder() == [(UAS.host, "ACK"), (UAC.host, "486")]
    net.finish()


def test_out_of_dialog_with_no_decision_is_404():
    net = Net(Router(lambda request, ctx: None))
    net.deliver(request("OPTIONS"), UAC)
    assert net.one(UAC).status == 404
    net.finish()


# --- router decisions -------------------------------------------------------------------


def test_serial_retry_after_a_failure_response():
    def retry(response, ctx):
        if response.status == 503 and len(ctx.attempts) == 1:
            return Forward(peer=UAS2, uri=parse_datagram(request("INVITE", "sip:bob@10.0.0.3").encode()).uri)
        return None

    net = Net(Router(retry=retry))
    net.deliver(request("INVITE"), UAC)
    first = net.one(UAS)
    net.deliver(answer(first, 180), UAS)
    assert net.one(UAC).status == 180
    net.deliver(answer(first, 503), UAS)
    out = net.take()
    # The 503 is ACKed (by the client transaction) and never reaches the caller;
    # the INVITE goes to the next target on a new branch.
    assert [(p.host, m.method if isinstance(m, Request) else m.status) for p, m in out] == [
        (UAS.host, "ACK"), (UAS2.host, "INVITE")]
    second = out[1][1]
    assert str(second.uri) == "sip:bob@10.0.0.3" and second.top_via.branch != first.top_via.branch
    net.deliver(answer(second, 200, contact=UAS2), UAS2)
    assert net.one(UAC).status == 200
    assert net.router.responses == [180, 503, 200]
    net.finish()


def test_router_reject_and_replacing_a_response():
    net = Net(Router(lambda request, ctx: Reject(403, "Not Here", {"Warning": '399 ctic "no"'})))
    invite = request("INVITE")
    net.deliver(invite, UAC)
    r = net.one(UAC)
    assert (r.status, r.reason, r.headers.get("warning")) == (403, "Not Here", '399 ctic "no"') and r.to.tag
    # The caller's ACK for the 403 is absorbed by the server transaction.
    net.deliver(request("ACK", call_id="call-1", to_tag=r.to.tag,
                        branch=parse_datagram(invite.encode()).top_via.branch), UAC)
    net.nothing()

    net.router.decide = lambda request, ctx: Forward()
    net.router.retry = lambda response, ctx: Reject(480) if response.status == 486 else None
    net.deliver(request("INVITE", call_id="call-2"), UAC)
    fwd = net.one(UAS)
    net.deliver(answer(fwd, 486), UAS)
    assert net.ladder() == [(UAS.host, "ACK"), (UAC.host, "480")]
    net.finish()


def test_deferred_routing_decision():
    pending = []

    def decide(request, ctx):
        d = Deferred()
        pending.append(d)
        return d

    net = Net(Router(decide))
    net.deliver(request("INVITE"), UAC)
    assert [m.status for _, m in net.take(keep_100=True)] == [100]  # at once, before the decision
    net.clock.advance(2)
    pending.pop().callback(Forward())
    fwd = net.one(UAS)
    net.deliver(answer(fwd, 486), UAS)
    assert net.ladder() == [(UAS.host, "ACK"), (UAC.host, "486")]

    net.deliver(request("INVITE", call_id="call-2"), UAC)
    net.take()
    pending.pop().errback(RuntimeError("database down"))
    assert net.one(UAC).status == 500

    net.deliver(request("OPTIONS", call_id="call-3"), UAC)
    pending.pop().errback(RuntimeError("database down"))
    assert net.one(UAC).status == 500
    net.finish()


def test_forwarding_failure_after_a_deferred_decision_is_500_and_finishes(monkeypatch):
    # A bug after the decision must reach neither the Deferred (an unhandled
    # error in it) nor leave the request without a final answer.
    pending = []
    net = Net(Router(lambda request, ctx: pending.append(Deferred()) or pending[-1]))
    net.deliver(request("INVITE"), UAC)
    net.take()
    monkeypatch.setattr(Request, "copy", lambda self: 1 / 0)
    d = pending.pop()
    d.callback(Forward())
    monkeypatch.undo()
    failures = []
    d.addErrback(failures.append)
    assert failures == []
    r = net.one(UAC)
    assert r.status == 500 and r.to.tag
    assert net.router.finished == [("INVITE", 500)]
    net.finish()


def test_router_exception_is_500():
    def decide(request, ctx):
        raise KeyError("bug")

    net = Net(Router(decide))
    net.deliver(request("INVITE"), UAC)
    assert net.one(UAC).status == 500
    net.finish()


# --- CANCEL (§16.10) and Timer C (§16.8) ---------------------------------------------------


def test_cancel_propagated_downstream_and_487_upstream():
    net = Net()
    invite = request("INVITE")
    net.deliver(invite, UAC)
    fwd = net.one(UAS)
    net.deliver(answer(fwd, 180), UAS)
    net.one(UAC)
    inv = parse_datagram(invite.encode())
    cancel = request("CANCEL", call_id="call-1", branch=inv.top_via.branch, headers=["Reason: SIP;cause=200"])
    net.deliver(cancel, UAC)
    out = net.take()
    assert [(p.host, m.status if isinstance(m, Response) else m.method) for p, m in out] == [
        (UAC.host, 200), (UAS.host, "CANCEL")]
    down = out[1][1]
    assert down.top_via.branch == fwd.top_via.branch and len(down.via) == 1
    assert str(down.uri) == str(fwd.uri) and down.headers.get("reason") == "SIP;cause=200"
    net.deliver(answer(down, 200), UAS)
    net.nothing()
    net.deliver(answer(fwd, 487), UAS)
    assert net.ladder() == [(UAS.host, "ACK"), (UAC.host, "487")]
    net.deliver(request("ACK", call_id="call-1", to_tag="b1", branch=inv.top_via.branch), UAC)
    net.nothing()
    net.finish()


def test_cancel_before_any_provisional_waits_for_one():
    net = Net()
    invite = request("INVITE")
    net.deliver(invite, UAC)
    fwd = net.one(UAS)
    net.deliver(request("CANCEL", call_id="call-1", branch=parse_datagram(invite.encode()).top_via.branch), UAC)
    assert net.one(UAC).status == 200  # nothing downstream yet (§9.1)
    net.deliver(answer(fwd, 180), UAS)
    assert net.ladder() == [(UAS.host, "CANCEL"), (UAC.host, "180")]
    net.deliver(answer(fwd, 487), UAS)
    assert net.ladder() == [(UAS.host, "ACK"), (UAC.host, "487")]
    net.finish()


def test_cancel_while_routing_is_pending():
    pending = []
    net = Net(Router(lambda request, ctx: pending.append(Deferred()) or pending[-1]))
    invite = request("INVITE")
    net.deliver(invite, UAC)
    net.take()
    net.deliver(request("CANCEL", call_id="call-1", branch=parse_datagram(invite.encode()).top_via.branch), UAC)
    assert sorted(m.status for _, m in net.take()) == [200, 487]
    pending.pop().callback(Forward())  # too late: nothing goes out
    net.nothing()
    net.finish()


def test_cancel_for_an_unknown_transaction_is_481():
    net = Net()
    net.deliver(request("CANCEL", branch="z9hG4bKnothing"), UAC)
    assert net.one(UAC).status == 481
    net.finish()


def test_timer_c_cancels_a_ringing_branch():
    net = Net(timer_c=60)
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS)
    net.clock.advance(30)
    net.deliver(answer(fwd, 180), UAS)  # a provisional restarts Timer C
    assert (UAC.host, "180") in net.ladder()
    net.clock.advance(59)
    net.nothing()
    net.clock.advance(1)
    cancel = net.one(UAS)
    assert cancel.method == "CANCEL" and "408" in cancel.headers.get("reason")
    net.deliver(answer(cancel, 200), UAS)
    net.deliver(answer(fwd, 487), UAS)
    assert net.ladder() == [(UAS.host, "ACK"), (UAC.host, "487")]
    net.finish()


def test_timer_c_with_no_provisional_is_408():
    net = Net(Router(lambda request, ctx: Forward(peer=UAS_TCP, timeout=10)))
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS_TCP)  # reliable: no Timer A to watch
    net.clock.advance(10)
    r = net.one(UAC)
    assert r.status == 408 and len(r.via) == 1 and r.to.tag
    net.deliver(answer(fwd, 180), UAS_TCP)  # too late for an abandoned branch
    net.nothing()
    net.finish()


def test_timer_c_and_a_downstream_that_ignores_cancel():
    net = Net(timer_c=60)
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS)
    net.deliver(answer(fwd, 183), UAS)
    net.one(UAC)
    net.clock.advance(60)
    assert net.one(UAS).method == "CANCEL"
    net.clock.pump([0.5] * 160)  # no 200 to the CANCEL, no 487 either
    out = [(p.host, m.status if isinstance(m, Response) else m.method) for p, m in net.take()]
    assert out.count((UAS.host, "CANCEL")) > 1  # Timer E retransmits the CANCEL
    assert (UAC.host, 408) in out  # the caller gets a final answer all the same
    net.finish()


# --- responses ---------------------------------------------------------------------------


def test_transport_error_downstream_is_503_upstream():
    net = Net(Router(lambda request, ctx: Forward(peer=UAS_TCP)))
    net.wire.unreachable.add(UAS_TCP)
    net.deliver(request("INVITE"), UAC)
    net.clock.advance(0)
    r = net.one(UAC)
    assert r.status == 503 and vias(r) == [(UAC.host, UAC.port)]
    net.deliver(request("OPTIONS", call_id="c2"), UAC)
    net.clock.advance(0)
    assert net.one(UAC).status == 503
    net.finish()


def test_non_invite_timeout_is_408_upstream():
    net = Net()
    net.deliver(request("OPTIONS"), UAC)
    net.clock.pump([0.5] * 64)
    out = net.take()
    assert {m.method for p, m in out if p == UAS} == {"OPTIONS"} and len(out) == 12
    assert out[-1][0] == UAC and out[-1][1].status == 408
    net.finish()


def test_stray_2xx_is_forwarded_upstream_statelessly():
    net = Net()
    net.deliver(request("INVITE"), UAC)
    fwd = net.one(UAS)
    net.deliver(answer(fwd, 200), UAS)
    assert net.one(UAC).status == 200
    net.clock.pump([0.5] * 80)  # Timer M and Timer L are over: no transaction knows it now
    assert net.proxy.txns.client == {} and net.proxy.contexts == {}
    net.deliver(answer(fwd, 200), UAS)  # a late 2xx retransmission
    late = net.one(UAC)
    assert late.status == 200 and vias(late) == [(UAC.host, UAC.port)]
    net.deliver(answer(fwd, 486), UAS)  # a stray non-2xx is dropped
    net.nothing()
    foreign = answer(fwd, 200).replace("Via: SIP/2.0/UDP 10.0.0.1:5060", "Via: SIP/2.0/UDP 10.9.9.9:5060")
    net.deliver(foreign, UAS)  # not our Via on top: dropped
    net.nothing()
    net.finish()


def test_ack_for_2xx_to_the_router_peer_or_dropped():
    net = Net()
    # SIPp's uac ignores Record-Route: ACK and BYE come to us with our address as target.
    ack = request("ACK", "sip:bob@10.0.0.1:5060", to_tag="b1")
    net.deliver(ack, UAC)
    net.nothing()  # addressed to us with nowhere to go: dropped
    net.router.ack_peer = UAS
    net.deliver(ack, UAC)
    fwd = net.one(UAS)
    assert fwd.method == "ACK" and vias(fwd) == [US, (UAC.host, UAC.port)]
    net.deliver(request("ACK", "sip:bob@10.0.0.2", to_tag="b1", max_forwards=0), UAC)
    net.nothing()  # Max-Forwards 0: not forwarded
    net.finish()


def test_loop_through_our_own_route_is_482():
    # The request names us in Route; the next hop sends it back exactly as it
    # got it (our Route pushed back on top): still the same request, a loop.
    net = Net()
    net.deliver(request("INVITE", route=["<sip:10.0.0.1:5060;lr>"]), UAC)
    fwd = net.one(UAS)
    looped = bytes(fwd).decode().replace("Via:", f"Via: SIP/2.0/UDP {UAS.host}:{UAS.port};branch=z9hG4bKl2\r\n"
                                         "Route: <sip:10.0.0.1:5060;lr>\r\nVia:", 1)
    net.deliver(looped, UAS)
    assert [(p.host, m.status) for p, m in net.take(keep_100=True)] == [(UAS.host, 482)]
    net.deliver(answer(fwd, 480), UAS)
    net.take()
    net.finish()


def test_final_response_without_upstream_vias_still_ends_the_call():
    # A broken UAS answers the INVITE with the Via set of our CANCEL (one Via):
    # the response is not forwardable (§16.7 step 3), yet the caller must get
    # a final answer and the context must end.
    net = Net()
    invite = request("INVITE")
    net.deliver(invite, UAC)
    fwd = net.one(UAS)
    net.deliver(answer(fwd, 180), UAS)
    net.one(UAC)
    net.deliver(request("CANCEL", call_id="call-1", branch=parse_datagram(invite.encode()).top_via.branch), UAC)
    cancel = [m for _, m in net.take() if isinstance(m, Request)][0]
    net.deliver(answer(cancel, 200), UAS)
    broken = answer(fwd, 487).replace(f"Via: {fwd.via[1]}\r\n", "")
    net.deliver(broken, UAS)
    out = net.take()
    assert sorted((p.host, str(m.status) if isinstance(m, Response) else m.method) for p, m in out) == [
        (UAS.host, "ACK"), (UAC.host, "487")]
    up = [m for _, m in out if isinstance(m, Response)][0]
    assert vias(up) == [(UAC.host, UAC.port)] and up.to.tag == "b1"
    net.finish()
