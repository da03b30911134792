# -*- test-case-name: tests.sip.test_b2bua -*-
"""
The back-to-back user agent core.

A L{Call} binds leg A (we are its UAS) and leg B (we are its UAC).  Call
logic, one object per B2BUA, decides what each call does::

    logic.new_call(call)                     # required: connect, reject, or hold the call
    logic.on_b_failure(call, response)       # optional: True if handled (e.g. another target)
    logic.on_request(call, leg, txn, request)  # optional: True if handled (INFO, REFER, ...)
    logic.on_answered(call)                  # optional
    logic.on_ack(call, leg)                  # optional: the ACK for our 2xx on a leg arrived
    logic.on_end(call, reason)               # optional
    logic.end_headers(call, leg)             # optional: headers for the BYE (or the BYE's answer) on a leg

and acts through the call: C{connect}, C{reject}, C{provisional},
C{answer} (leg A answered by us, no leg B: an endpoint such as the MCP
simulator) and C{accept} (its re-INVITEs), C{hangup}, C{replace_b} (transfers), C{send_request} (e.g. INFO
to one leg) and C{timer} (timers that die with the call).  A call may be held in
state C{new} while the logic waits on a CTI link; C{hold_timeout} bounds it,
and C{no_answer_timeout} bounds how long leg B may ring (the B2BUA's Timer C).
C{outbound_proxy} (a peer) keeps leg B's in-dialog requests on the proxy
the leg was created through even when the far end did not record-route.
C{health}, a callable, says whether the role can take calls: OPTIONS is
answered 503 while it returns false (a CTIC whose CTI link is down), so a
Resource Manager's health checks take it out.

Requests and responses relayed between the legs carry the headers the
L{HeaderPolicy} lets through.  Every path that ends a call goes through
C{Call._end}, which releases its timers, dialogs and table entries.
"""

from __future__ import annotations

from twisted.logger import Logger

from ctic.sip.call import Call, Leg
from ctic.sip.dialog import DialogTable, new_tag
from ctic.sip.message import Request, Response, make_response
from ctic.sip.responder import ALLOW, check_request
from ctic.sip.transaction import TransactionLayer, Timers
from ctic.sip.uri import SIPURI

log = Logger(namespace="ctic.sip.b2bua")

# Headers that belong to one hop or one dialog and are never copied across.
NEVER_COPIED = frozenset((
    "via", "route", "record-route", "contact", "call-id", "cseq", "from", "to", "max-forwards",
    "content-length", "require", "proxy-require", "supported", "unsupported", "authorization",
    "proxy-authorization", "www-authenticate", "proxy-authenticate", "rseq", "rack", "allow",
    "server", "user-agent",
))


class HeaderPolicy:
    """
    Which headers cross from one leg to the other.

    @param remove: more header names never to copy.
    @param add: headers to set on everything sent on a leg ({name: value}).
    @param rewrite: C{rewrite(source, copy, direction)} for anything else;
        C{direction} is C{"a->b"} or C{"b->a"}.
    """

    def __init__(self, remove=(), add=None, rewrite=None):
        self.never = NEVER_COPIED | frozenset(n.lower() for n in remove)
        self.add = dict(add or {})
        self.rewrite = rewrite

    def apply(self, src, dst, direction: str) -> None:
        never = self.never
        d = dst.headers._d
        names = src.headers._names
        for key, values in src.headers._d.items():
            if key in never:
                continue
            d[key] = [v if isinstance(v, (str, int)) else v.copy() for v in values]
            if key in names:
                dst.headers._names[key] = names[key]
        for name, value in self.add.items():
            dst.headers.set(name, value)
        if self.rewrite is not None:
            self.rewrite(src, dst, direction)


class B2BUA:
    """The transaction user that owns calls; see the module docstring."""

    def __init__(self, clock, transport, logic, *, timers: Timers | None = None,
                 policy: HeaderPolicy | None = None, hold_timeout: float = 30.0, user: str = "ctic",
                 max_calls: int = 10_000, no_answer_timeout: float = 180.0, health=None,
                 outbound_proxy=None):
        self.clock = clock
        self.health = health
        self.outbound_proxy = outbound_proxy
        self.transport = transport
        self.logic = logic
        self.policy = policy or HeaderPolicy()
        self.hold_timeout = hold_timeout
        self.user = user
        self.max_calls = max_calls
        self.no_answer_timeout = no_answer_timeout
        self.txns = TransactionLayer(clock, transport, self, timers)
        transport.user = self.txns
        self.dialogs = DialogTable()
        self._calls: dict = {}
        self._by_b_call_id: dict = {}

    @property
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def contact_uri(self, transport: str = "UDP") -> SIPURI:
        host, port = self.txns.local_address(transport)
        params = {} if transport == "UDP" else {"transport": transport.lower()}
        return SIPURI(host, self.user, port, params)

    # --- transaction user ------------------------------------------------------------------

    def request_received(self, server, request: Request) -> None:
        to = request.to
        if to.tag is not None:
            dialog = self.dialogs.for_request(request)
            if dialog is None or dialog.owner is None:
                server.respond(make_response(request, 481))
                return
            leg = dialog.owner
            leg.call.in_dialog(leg, server, request)
            return
        early = check_request(request)
        if early is not None:
            status, extra = early
            resp = make_response(request, status, to_tag=new_tag())
            for name, value in extra.items():
                resp.headers.set(name, value)
            server.respond(resp)
            return
        method = request.method
        if method == "INVITE":
            self._new_call(server, request)
        elif method == "OPTIONS":
            healthy = self.health is None or self.health()
            resp = make_response(request, 200 if healthy else 503, None if healthy else "Service Unavailable (CTI link down)",
                                 to_tag=new_tag())
            resp.headers.set("Allow", ALLOW)
            resp.headers.set("Accept", "application/sdp")
            server.respond(resp)
        else:
            handler = getattr(self.logic, "out_of_dialog", None)
            if handler is None or not handler(server, request):
                server.respond(make_response(request, 405 if method in ("BYE", "INFO", "REFER", "UPDATE") else 501,
                                             to_tag=new_tag()))

    def _new_call(self, server, request: Request) -> None:
        if len(self._calls) >= self.max_calls:
            log.warn("Refused call {call_id}: {limit} calls in progress", call_id=request.call_id, limit=self.max_calls)
            resp = make_response(request, 503, "Service Unavailable (call limit)", to_tag=new_tag())
            resp.headers.set("Retry-After", "5")
            server.respond(resp)
            return
        server.respond(make_response(request, 100))
        call = Call(self, server, request)
        self._calls[server] = call
        call.hold = call.timer(self.hold_timeout, self._hold_expired, call)
        try:
            self.logic.new_call(call)
        except Exception:
            log.failure("Call logic failed on new call {call_id}", call_id=request.call_id)
            call.reject(500)

    def _hold_expired(self, call: Call) -> None:
        if call.state == "new":
            log.info("Call {call_id} held too long; rejected", call_id=call.call_id)
            call.reject(480, "Temporarily Unavailable (hold timeout)")

    def cancel_received(self, server, cancel: Request) -> None:
        call = self._calls.get(server)
        if call is not None:
            call.cancelled(cancel)

    def ack_received(self, ack: Request) -> None:
        dialog = self.dialogs.for_request(ack)
        if dialog is not None and dialog.owner is not None:
            dialog.owner.call.ack(dialog.owner, ack)

    def stray_response(self, response: Response) -> None:
        leg = self._by_b_call_id.get(response.call_id)
        if leg is not None and leg.last_ack is not None and 200 <= response.status < 300 \
                and response.cseq.method == "INVITE":
            self.transport.send(leg.last_ack, leg.call._leg_peer(leg))


__all__ = ["B2BUA", "Call", "Leg", "HeaderPolicy", "NEVER_COPIED"]
