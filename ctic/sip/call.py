# -*- test-case-name: tests.sip.test_b2bua -*-
"""
A call through the B2BUA: leg A (we are its UAS), leg B (we are its UAC),
the relaying between them, transfers, and C{Call._end}, the one place a
call ends.  See L{ctic.sip.b2bua} for the call-logic interface.
"""

from __future__ import annotations

from twisted.logger import Logger

from ctic.sip.dialog import Dialog, new_call_id, new_tag
from ctic.sip.headers import CSeq, NameAddr
from ctic.sip.message import Headers, Request, Response, make_response
from ctic.sip.transport import uri_peer
from ctic.sip.uri import SIPURI, parse_uri
from ctic.timers import Timer

log = Logger(namespace="ctic.sip.b2bua")


class Leg:
    """One side of a call: its dialog, its INVITE and where to send to it."""

    __slots__ = ("call", "side", "dialog", "invite", "server", "client", "peer", "unacked",
                 "retransmit", "pending_ack", "last_ack", "reinvite")

    def __init__(self, call, side: str):
        self.call = call
        self.side = side
        self.dialog = None
        self.invite = None
        self.server = None  # leg A: the INVITE server transaction
        self.client = None  # leg B: the INVITE client transaction
        self.peer = None
        self.unacked = None  # [server txn, 2xx, interval, waited]: retransmitted until ACK (§13.3.1.4)
        self.retransmit = None
        self.pending_ack = None  # leg B: the 2xx we still owe an ACK for (offer in 2xx)
        self.last_ack = None  # the ACK we sent, re-sent on 2xx retransmissions
        self.reinvite = None  # an INVITE client transaction we have open on this leg

    @property
    def other(self) -> "Leg":
        call = self.call
        return call.b if self is call.a else call.a

    def __repr__(self):
        return f"<Leg {self.side} {self.dialog!r}>"


class Call:
    """
    One call through the B2BUA.

    @ivar state: C{new}, C{calling}, C{early}, C{connected}, C{ending}, C{ended}.
    @ivar data: a dict for the call logic's own use.
    """

    def __init__(self, b2bua, server, invite: Request):
        self.b2bua = b2bua
        self.state = "new"
        self.a = Leg(self, "a")
        self.a.invite = invite
        self.a.server = server
        self.a.peer = invite.source
        self.b = None
        self.a_tag = new_tag()
        self.data: dict = {}
        self.end_reason = None
        self._timers: list[Timer] = []
        self._old_b = None
        self.hold = None
        self.no_answer = None
        self.created = b2bua.clock.seconds()
        self.answered = None

    @property
    def call_id(self) -> str:
        return self.a.invite.call_id

    # --- for the call logic -------------------------------------------------------------

    def timer(self, delay: float, callback, *args) -> Timer:
        """A timer that is cancelled when the call ends."""
        t = Timer(self.b2bua.clock, callback, *args)
        self._timers.append(t)
        t.start(delay)
        return t

    def provisional(self, status: int = 180, reason: str | None = None, headers=None, body: bytes = b"") -> None:
        """Send a 1xx to leg A (an early dialog when status > 100)."""
        if self.state not in ("new", "calling", "early"):
            return
        resp = self._a_response(status, reason, body)
        for name, value in (headers or {}).items():
            resp.headers.set(name, value)
        self.a.server.respond(resp)

    def answer(self, body: bytes = b"", headers=None) -> None:
        """
        Answer leg A ourselves, with no leg B: for an endpoint built on the
        core (the MCP simulator).  The 2xx is retransmitted until ACK as
        any other (§13.3.1.4); the call is then C{connected} with C{b} None.
        """
        if self.state != "new":
            raise ValueError(f"answer() on a call in state {self.state}")
        if self.hold is not None:
            self.hold.cancel()
        resp = self._a_response(200, None, body)
        for name, value in (headers or {}).items():
            resp.headers.set(name, value)
        self.state = "connected"
        self.answered = self.b2bua.clock.seconds()
        self._send_2xx(self.a, self.a.server, resp)

    def accept(self, leg: Leg, server, request: Request, body: bytes = b"", headers=None) -> None:
        """
        Answer an in-dialog INVITE on C{leg} ourselves (a session refresh or
        hold towards an endpoint answered with L{answer}): 200, retransmitted
        until ACK.
        """
        resp = make_response(request, 200)
        resp.headers.set("Contact", NameAddr(self.b2bua.contact_uri(self._leg_transport(leg))))
        for name, value in (headers or {}).items():
            resp.headers.set(name, value)
        resp.body = body
        self._send_2xx(leg, server, resp)

    def reject(self, status: int, reason: str | None = None, headers=None) -> None:
        """Answer leg A's INVITE with a final failure and end the call."""
        if self.state not in ("new", "calling", "early"):
            return
        resp = self._a_response(status, reason)
        for name, value in (headers or {}).items():
            resp.headers.set(name, value)
        self.a.server.respond(resp)
        self._end(f"rejected {status}")

    def connect(self, uri, peer=None, from_=None, to=None, headers=None, body=None) -> None:
        """Create leg B: an INVITE to C{uri} (via C{peer}, default: from the URI)."""
        if self.state != "new":
            raise ValueError(f"connect() on a call in state {self.state}")
        self.state = "calling"
        if self.hold is not None:
            self.hold.cancel()
        self.b = self._invite_b(uri, peer, from_, to, headers, body)
        if self.no_answer is None:
            self.no_answer = self.timer(self.b2bua.no_answer_timeout, self._no_answer)
        else:
            self.no_answer.start(self.b2bua.no_answer_timeout)

    def _no_answer(self) -> None:
        """Leg B rang too long (the B2BUA's Timer C): CANCEL it, 408 to leg A."""
        if self.state in ("calling", "early"):
            log.info("No answer on leg B of {call_id} in {seconds}s", call_id=self.call_id,
                     seconds=self.b2bua.no_answer_timeout)
            self.hangup("no answer", status=408)

    def hangup(self, reason: str = "hangup", headers=None, status: int = 487) -> None:
        """
        End the call from our side: BYE on each confirmed leg; before an
        answer, CANCEL leg B and answer leg A's INVITE with C{status}.
        """
        if self.state == "ended":
            return
        if self.state == "new":
            self.reject(480, headers=headers)
            return
        if self.state in ("calling", "early"):
            if self.b is not None and self.b.client is not None:
                self.b.client.cancel()
            self.a.server.respond(self._a_response(status))
            self.state = "ending"
            self.end_reason = reason
            self.timer(64 * self.b2bua.txns.timers.t1, self._end, reason)
            return
        for leg in (self.a, self.b):
            if leg is not None and leg.dialog is not None and leg.dialog.state == "confirmed":
                self._bye(leg, headers)
        self._end(reason)

    def replace_b(self, uri, peer=None, from_=None, to=None, headers=None, on_result=None) -> None:
        """
        Transfer: call C{uri} with leg A's last offer; when it answers, hang up
        the old leg B and re-INVITE leg A with the new answer.  C{on_result}
        gets the new leg's final response (the old leg stays if it failed).
        """
        if self.state != "connected":
            raise ValueError(f"replace_b() on a call in state {self.state}")
        self._old_b = self.b
        new = self._invite_b(uri, peer, from_, to, headers, self.data.get("a_offer", self.a.invite.body))
        new.call = self
        self.data["replacing"] = (new, on_result)

    def send_request(self, leg: Leg, method: str, body: bytes = b"", headers=None, on_response=None):
        """An in-dialog request of our own on one leg (e.g. INFO with user data)."""
        if leg.dialog is None:
            raise ValueError("leg has no dialog")
        h = Headers()
        for name, value in (headers or {}).items():
            h.set(name, value)
        req = leg.dialog.create_request(method, body, h)
        txn = self.b2bua.txns.send_request(req, self._leg_peer(leg))
        if on_response is not None:
            txn.on_response = on_response
        return txn

    # --- building blocks ----------------------------------------------------------------

    def _a_response(self, status, reason=None, body: bytes = b"") -> Response:
        inv = self.a.invite
        resp = make_response(inv, status, reason, to_tag=self.a_tag)
        if status > 100:
            resp.headers.set("Contact", NameAddr(self.b2bua.contact_uri(self._leg_transport(self.a))))
            if status < 300 and inv.record_route:
                # RFC 3261 §12.1.1: the UAS copies Record-Route into every
                # dialog-creating response, so the proxies stay in the path.
                resp.headers.set("Record-Route", [r.copy() for r in inv.record_route])
        resp.body = body
        if status > 100 and status < 300:
            if self.a.dialog is None:
                self.a.dialog = Dialog.as_uas(inv, resp, self.b2bua.contact_uri(self._leg_transport(self.a)))
                self.a.dialog.owner = self.a
                self.b2bua.dialogs.add(self.a.dialog)
            elif status >= 200:
                self.a.dialog.state = "confirmed"  # the early dialog of a 1xx, confirmed by the 2xx (§12.1.1)
        return resp

    def _leg_transport(self, leg: Leg) -> str:
        return leg.peer.transport if leg.peer is not None else "UDP"

    def _leg_peer(self, leg: Leg):
        if leg.side == "b" and self.b2bua.outbound_proxy is not None and leg.dialog is not None \
                and not leg.dialog.route_set:
            # A leg whose far end did not record-route still goes through our
            # outbound proxy (a CTIC's Resource Manager), never around it.
            return leg.peer
        if leg.dialog is not None:
            peer = leg.dialog.next_hop(self._leg_transport(leg))
            if peer is not None:
                return peer
        return leg.peer

    def _invite_b(self, uri, peer, from_, to, headers, body) -> Leg:
        b2bua = self.b2bua
        leg = Leg(self, "b")
        src = self.a.invite
        if isinstance(uri, str):
            uri = parse_uri(uri)
        peer = peer or uri_peer(uri)
        leg.peer = peer
        h = Headers()
        req = Request("INVITE", uri, h, src.body if body is None else body)
        b2bua.policy.apply(src, req, "a->b")
        frm = from_.copy() if from_ is not None else NameAddr(src.from_.uri.copy(), src.from_.display)
        frm.params = {"tag": new_tag()}
        d = h._d
        d["from"] = [frm]
        d["to"] = [to.copy() if to is not None else NameAddr(uri.copy() if isinstance(uri, SIPURI) else uri)]
        d["call-id"] = [new_call_id(b2bua.contact_uri(peer.transport).host)]
        d["cseq"] = [CSeq(1, "INVITE")]
        d["max-forwards"] = [70]
        d["contact"] = [NameAddr(b2bua.contact_uri(peer.transport))]
        for name, value in (headers or {}).items():
            h.set(name, value)
        leg.invite = req
        txn = b2bua.txns.send_request(req, peer)
        leg.client = txn
        txn.on_response = lambda response: self._b_response(leg, response)
        b2bua._by_b_call_id[req.call_id] = leg
        return leg

    def _relay_response(self, src: Response, status=None) -> Response:
        resp = self._a_response(status or src.status, src.reason, src.body)
        self.b2bua.policy.apply(src, resp, "b->a")
        return resp

    # --- leg B's INVITE ------------------------------------------------------------------

    def _b_response(self, leg: Leg, response: Response) -> None:
        status = response.status
        if status == 100:
            return
        replacing = self.data.get("replacing")
        if replacing is not None and leg is replacing[0]:
            self._replacement_response(leg, response)
            return
        if leg is not self.b:
            if 200 <= status < 300:
                self._ack_and_bye(leg, response)
            return
        if status < 200:
            if response.to.tag and leg.dialog is None:
                self._b_dialog(leg, response)
            if self.state in ("calling", "early"):
                self.state = "early"
                self.a.server.respond(self._relay_response(response))
            return
        if status < 300:
            self._b_answered(leg, response)
            return
        # A failure on leg B.
        leg.client = None
        self._drop_leg(leg)
        leg.dialog = None
        if self.state == "ending":
            self._end(self.end_reason or "cancelled")
            return
        if self.state not in ("calling", "early"):
            return
        handler = getattr(self.b2bua.logic, "on_b_failure", None)
        if handler is not None:
            # Held again: the logic may wait (e.g. on its CTI link) before it
            # connects or rejects; hold_timeout bounds that wait as it does
            # the first one (connect() stops the timer).
            self.state = "new"
            if self.hold is not None:
                self.hold.start(self.b2bua.hold_timeout)
            if handler(self, response):
                return
            if self.hold is not None:
                self.hold.cancel()
            self.state = "calling"
        self.a.server.respond(self._relay_response(response))
        self._end(f"leg B failed {status}")

    def _b_dialog(self, leg: Leg, response: Response) -> None:
        dialog = Dialog.as_uac(leg.invite, response, self.b2bua.contact_uri(self._leg_transport(leg)))
        dialog.owner = leg
        leg.dialog = dialog
        self.b2bua.dialogs.add(dialog)

    def _b_answered(self, leg: Leg, response: Response) -> None:
        if self.state == "ended":
            # A 2xx (or its retransmission) after the call ended: ACK it
            # again, or ACK and BYE it; it must not bring the call back.
            if leg.last_ack is not None:
                self.b2bua.transport.send(leg.last_ack, self._leg_peer(leg))
            else:
                self._ack_and_bye(leg, response)
            return
        if leg.dialog is None or leg.dialog.remote_tag != response.to.tag:
            if leg.dialog is not None and leg.dialog.state == "confirmed":
                self._ack_and_bye(leg, response)  # a second fork answered
                return
            if leg.dialog is not None:
                self.b2bua.dialogs.remove(leg.dialog)
            self._b_dialog(leg, response)
        leg.dialog.update_from_response(response)
        if leg.last_ack is not None:
            self.b2bua.transport.send(leg.last_ack, self._leg_peer(leg))  # 2xx retransmission
            return
        if self.state == "ending":
            self._ack_and_bye(leg, response)
            self._end(self.end_reason or "cancelled")
            return
        if leg.invite.body or not response.body:
            self._ack(leg, leg.invite.cseq.seq)
        else:
            leg.pending_ack = response  # the answer will come in leg A's ACK
        self.state = "connected"
        self.answered = self.b2bua.clock.seconds()
        if self.no_answer is not None:
            self.no_answer.cancel()
        self.data["a_offer"] = self.a.invite.body
        self._send_2xx(self.a, self.a.server, self._relay_response(response))
        on_answered = getattr(self.b2bua.logic, "on_answered", None)
        if on_answered is not None:
            on_answered(self)

    def _ack(self, leg: Leg, seq: int, body: bytes = b"") -> None:
        ack = leg.dialog.create_request("ACK", body, seq=seq)
        peer = self._leg_peer(leg)
        self.b2bua.txns.push_via(ack, peer)  # §13.2.2.4: the 2xx ACK is sent outside any transaction
        leg.last_ack = ack
        self.b2bua.transport.send(ack, peer)

    def _ack_and_bye(self, leg: Leg, response: Response) -> None:
        """A 2xx nobody wants: ACK it, then BYE it (§13.2.2.4)."""
        dialog = Dialog.as_uac(leg.invite, response, self.b2bua.contact_uri(self._leg_transport(leg)))
        tmp = Leg(self, "b")
        tmp.dialog = dialog
        tmp.peer = leg.peer
        self._ack(tmp, leg.invite.cseq.seq)
        leg.last_ack = tmp.last_ack  # re-sent on retransmissions of the 2xx
        self._bye(tmp)

    def _send_2xx(self, leg: Leg, server, resp: Response) -> None:
        """Send a 2xx to an INVITE and retransmit it until ACK (§13.3.1.4)."""
        server.respond(resp)
        timers = self.b2bua.txns.timers
        reliable = leg.peer is not None and leg.peer.reliable
        # [server transaction, 2xx, next interval, time waited so far]
        leg.unacked = [server, resp, 64 * timers.t1 if reliable else timers.t1, 0.0]
        if leg.retransmit is None:
            leg.retransmit = Timer(self.b2bua.clock, self._retransmit_2xx, leg)
            self._timers.append(leg.retransmit)
        leg.retransmit.start(leg.unacked[2])

    def _retransmit_2xx(self, leg: Leg) -> None:
        unacked = leg.unacked
        if unacked is None:
            return
        server, resp, interval, waited = unacked
        timers = self.b2bua.txns.timers
        limit = 64 * timers.t1
        waited += interval
        if waited >= limit - 1e-9:
            log.info("No ACK for 2xx on leg {side} of {call_id}", side=leg.side, call_id=self.call_id)
            leg.unacked = None
            self.hangup("no ACK")
            return
        server.respond(resp)
        interval = min(2 * interval, timers.t2, limit - waited)
        unacked[2], unacked[3] = interval, waited
        leg.retransmit.start(interval)

    # --- transfers ------------------------------------------------------------------------

    def _replacement_response(self, leg: Leg, response: Response) -> None:
        status = response.status
        new, on_result = self.data["replacing"]
        if status < 200:
            if response.to.tag and leg.dialog is None:
                self._b_dialog(leg, response)
            return
        del self.data["replacing"]
        if status >= 300:
            self._drop_leg(leg)
            self._old_b = None
            if on_result:
                on_result(response)
            return
        self._b_dialog(leg, response) if leg.dialog is None else leg.dialog.update_from_response(response)
        self._ack(leg, leg.invite.cseq.seq)
        old, self._old_b = self._old_b, None
        self.b = leg
        if old is not None:
            if old.dialog is not None:
                self._bye(old)
            self._drop_leg(old)
        if response.body and response.body != self.data.get("b_answer"):
            self.data["b_answer"] = response.body
            reinvite = self.a.dialog.create_request("INVITE", response.body)
            self.b2bua.policy.apply(response, reinvite, "b->a")
            self._reinvite(self.a, reinvite, None)
        if on_result:
            on_result(response)

    # --- in-dialog requests ---------------------------------------------------------------

    def in_dialog(self, leg: Leg, server, request: Request) -> None:
        method = request.method
        status = leg.dialog.receive_request(request)
        if status is not None:
            server.respond(make_response(request, status))
            return
        handler = getattr(self.b2bua.logic, "on_request", None)
        if handler is not None and handler(self, leg, server, request):
            return
        if method == "BYE":
            self._bye_received(leg, server, request)
            return
        other = leg.other
        if other is None or other.dialog is None or self.state not in ("connected", "early"):
            server.respond(make_response(request, 481 if method != "INVITE" else 491))
            return
        if method == "INVITE":
            if other.reinvite is not None or leg.reinvite is not None:
                server.respond(make_response(request, 491))  # glare (§14.1)
                return
            if leg is self.a:
                self.data["a_offer"] = request.body or self.data.get("a_offer")
        out = other.dialog.create_request(method, request.body)
        self.b2bua.policy.apply(request, out, "a->b" if leg is self.a else "b->a")
        if method == "INVITE":
            self._reinvite(other, out, (leg, server, request))
            return
        txn = self.b2bua.txns.send_request(out, self._leg_peer(other))
        txn.on_response = lambda r: self._relay_in_dialog(leg, server, request, r) if r.status > 100 else None

    def _relay_in_dialog(self, leg: Leg, server, request: Request, response: Response) -> None:
        resp = make_response(request, response.status, response.reason)
        resp.body = response.body
        self.b2bua.policy.apply(response, resp, "b->a" if leg is self.a else "a->b")
        server.respond(resp)

    def _reinvite(self, leg: Leg, out: Request, origin) -> None:
        """Send a re-INVITE on C{leg}; relay its answer to C{origin} (leg, txn, request) if any."""
        txn = self.b2bua.txns.send_request(out, self._leg_peer(leg))
        leg.reinvite = txn

        def on_response(r):
            if r.status == 100:
                return
            if r.status >= 200:
                leg.reinvite = None
            if 200 <= r.status < 300:
                if origin is not None and not out.body and r.body:
                    leg.pending_ack = r  # offer in the 2xx: the ACK waits for the answer
                else:
                    self._ack(leg, out.cseq.seq)
                if r.contact:
                    leg.dialog.remote_target = r.contact[0].uri
            if origin is None:
                return
            o_leg, o_server, o_request = origin
            resp = make_response(o_request, r.status, r.reason)
            resp.body = r.body
            self.b2bua.policy.apply(r, resp, "b->a" if o_leg is self.a else "a->b")
            if 200 <= r.status < 300:
                resp.headers.set("Contact", NameAddr(self.b2bua.contact_uri(self._leg_transport(o_leg))))
                self._send_2xx(o_leg, o_server, resp)
            else:
                o_server.respond(resp)

        txn.on_response = on_response

    def ack(self, leg: Leg, ack: Request) -> None:
        """An ACK for a 2xx we sent on C{leg}."""
        first = leg.unacked is not None and leg.unacked[1].cseq.seq == ack.cseq.seq
        if first:
            leg.unacked = None
            if leg.retransmit is not None:
                leg.retransmit.cancel()
        other = leg.other
        if other is not None and other.pending_ack is not None:
            pending, other.pending_ack = other.pending_ack, None
            self._ack(other, pending.cseq.seq, ack.body)
        on_ack = getattr(self.b2bua.logic, "on_ack", None)
        if first and on_ack is not None:
            on_ack(self, leg)

    def _bye(self, leg: Leg, headers=None, on_response=None):
        if leg.dialog is None:
            return None
        h = Headers()
        for name, value in (headers or {}).items():
            h.set(name, value)
        bye = self._with_end_headers(leg.dialog.create_request("BYE", b"", h), leg)
        leg.dialog.state = "terminated"
        txn = self.b2bua.txns.send_request(bye, self._leg_peer(leg))
        if on_response is not None:
            txn.on_response = on_response
        return txn

    def _with_end_headers(self, msg, leg: Leg):
        """
        Add the call logic's C{end_headers(call, leg)} to a BYE we send on
        C{leg} or to our final response to a BYE from it (a CTIC's
        C{X-Genesys-GVP-CDR}); a failing hook is logged and adds nothing.
        """
        hook = getattr(self.b2bua.logic, "end_headers", None)
        if hook is not None:
            try:
                for name, value in (hook(self, leg) or {}).items():
                    msg.headers.set(name, value)
            except Exception:
                log.failure("Call logic end_headers failed for {call_id}", call_id=self.call_id)
        return msg

    def _bye_received(self, leg: Leg, server, request: Request) -> None:
        other = leg.other
        if self.state in ("calling", "early"):
            # §15: a caller may BYE an early dialog; to leg B that is a CANCEL.
            # A callee must not, but if leg B does, leg A gets a failure, never
            # a BYE on the early dialog where we are its callee.
            self.data.setdefault("bye_from", leg.side)
            server.respond(self._with_end_headers(make_response(request, 200), leg))
            self.hangup(f"BYE from {leg.side} before answer", status=487 if leg is self.a else 480)
            return
        self.data.setdefault("bye_from", leg.side)
        leg.dialog.state = "terminated"
        if other is None or other.dialog is None or other.dialog.state == "terminated":
            server.respond(self._with_end_headers(make_response(request, 200), leg))
            self._end(f"BYE from {leg.side}")
            return
        out = other.dialog.create_request("BYE", b"")
        self.b2bua.policy.apply(request, out, "a->b" if leg is self.a else "b->a")
        self._with_end_headers(out, other)
        other.dialog.state = "terminated"

        def relayed(r):
            if r.status < 200:
                return
            resp = make_response(request, r.status, r.reason)
            self.b2bua.policy.apply(r, resp, "b->a" if leg is self.a else "a->b")
            server.respond(self._with_end_headers(resp, leg))

        txn = self.b2bua.txns.send_request(out, self._leg_peer(other))
        txn.on_response = relayed
        self._end(f"BYE from {leg.side}")

    # --- CANCEL from leg A --------------------------------------------------------------

    def cancelled(self, cancel: Request) -> None:
        if self.state == "new":
            self.a.server.respond(self._a_response(487))
            self._end("cancelled")
        elif self.state in ("calling", "early"):
            self.hangup("cancelled")

    def _drop_leg(self, leg: Leg) -> None:
        """Take a leg out of the B2BUA's tables (its dialog, its leg B Call-ID)."""
        b2bua = self.b2bua
        if leg.dialog is not None:
            b2bua.dialogs.remove(leg.dialog)
        if leg.side == "b" and leg.invite is not None:
            if b2bua._by_b_call_id.get(leg.invite.call_id) is leg:
                del b2bua._by_b_call_id[leg.invite.call_id]

    # --- the end ----------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        """The one place a call ends: timers, dialogs and table entries go."""
        if self.state == "ended":
            return
        self.state = "ended"
        self.end_reason = reason
        for t in self._timers:
            t.cancel()
        b2bua = self.b2bua
        replacing = self.data.pop("replacing", None)
        for leg in (self.a, self.b, self._old_b, replacing[0] if replacing else None):
            if leg is None:
                continue
            if leg.side == "b" and leg.client is not None:
                leg.client.cancel()  # a leg B still ringing (no-op once it has answered)
            self._drop_leg(leg)
        b2bua._calls.pop(self.a.server, None)
        log.info("Call {call_id} ended: {reason}", call_id=self.call_id, reason=reason)
        on_end = getattr(b2bua.logic, "on_end", None)
        if on_end is not None:
            try:
                on_end(self, reason)
            except Exception:
                log.failure("Call logic on_end failed for {call_id}", call_id=self.call_id)

    def __repr__(self):
        return f"<Call {self.call_id} {self.state}>"


