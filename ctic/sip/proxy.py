# -*- test-case-name: tests.sip.test_proxy -*-
"""
A transaction-stateful, record-routing proxy core (RFC 3261 §16).

The proxy does the mechanics: request validation (URI scheme 416, Max-Forwards 483, loop
detection 482, Proxy-Require 420), Route processing (loose routing, with the
strict-route compatibility of §16.4), Record-Route with our own URI
parameters (double Record-Route when the transport changes, RFC 5658), Via
handling, 100 Trying, Timer C, CANCEL propagation, serial retries, final
response forwarding, and stateless forwarding of ACKs for 2xx and of stray
responses.  A I{router} decides where each request goes::

    router.route_request(request, ctx) -> Forward | Reject | None | Deferred
    router.on_response(response, ctx)  -> None | Forward | Reject   (optional)
    router.on_finished(ctx, response)                                (optional)
    router.on_ack(ack)                                               (optional)

C{None} from C{route_request} forwards by Route and Request-URI (what an
in-dialog request wants); for an out-of-dialog request it is a 404.

Whatever the router decided, the request ends with one final response
upstream and one C{on_finished}: a failure after the decision (copying or
building the forwarded request, starting its client transaction, relaying a
response, Timer C) is a 500, a send that cannot happen a 503, and either way
the router releases what it holds for the request (ours).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel

from ctic.sip.dialog import new_tag
from ctic.sip.headers import MAGIC_COOKIE, NameAddr, Via
from ctic.sip.message import Request, Response, make_response
from ctic.sip.responder import SCHEMES
from ctic.sip.transaction import InviteClientTransaction, TransactionLayer, Timers, new_branch
from ctic.sip.transport import DEFAULT_PORTS, Peer, uri_peer
from ctic.sip.uri import SIPURI, TelURI
from ctic.timers import Timer

log = Logger(namespace="ctic.sip.proxy")

SUPPORTED_PROXY_EXTENSIONS: frozenset = frozenset()
DIALOG_CREATING = frozenset(("INVITE", "SUBSCRIBE", "REFER", "NOTIFY"))


@dataclass
class Forward:
    """
    Send the request on.

    @ivar peer: the next hop; default: from the top Route, else the Request-URI.
    @ivar uri: a new Request-URI (retargeting).
    @ivar headers: headers to set on the forwarded copy ({name: value or list}).
    @ivar remove: header names to remove from the forwarded copy.
    @ivar record_route: False, True, or a dict of URI parameters for our Record-Route.
    @ivar timeout: Timer C for this attempt (INVITE), seconds; default the proxy's.
    """

    peer: Peer | None = None
    uri: Any = None
    headers: dict = field(default_factory=dict)
    remove: tuple = ()
    record_route: Any = True
    timeout: float | None = None


@dataclass
class Reject:
    """Answer the request upstream with this status (and headers)."""

    status: int
    reason: str | None = None
    headers: dict = field(default_factory=dict)


class RequestContext:
    """One request the proxy is handling, from arrival to final response."""

    __slots__ = ("request", "server", "client", "attempts", "data", "cancelled", "finished", "timer_c", "peer",
                 "loop_key")

    def __init__(self, request: Request, server):
        self.request = request
        self.server = server
        self.client = None
        self.attempts: list = []
        self.data: dict = {}
        self.cancelled = False
        self.finished = False
        self.timer_c = None
        self.peer = None
        self.loop_key = None

    @property
    def source(self) -> Peer:
        return self.request.source

    @property
    def call_id(self) -> str:
        return self.request.call_id

    @property
    def in_dialog(self) -> bool:
        to = self.request.to
        return to is not None and to.tag is not None


def loop_hash(request: Request) -> str:
    """§16.6 step 8: what identifies a request for loop detection."""
    to = request.to
    seed = "|".join((
        request.uri_text, request.from_.tag or "", to.tag or "" if to else "",
        request.call_id, str(request.cseq.seq), ",".join(str(r) for r in request.route),
        ",".join(request.headers.getlist("proxy-require")),
    ))
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


class Proxy:
    """The proxy core; it is the transaction user of its own L{TransactionLayer}."""

    def __init__(self, clock, transport, router, *, record_route: bool = True,
                 timers: Timers | None = None, timer_c: float = 180.0, name: str = "ctic"):
        self.clock = clock
        self.transport = transport
        self.router = router
        self.record_route = record_route
        self.timer_c = timer_c
        self.name = name
        self.txns = TransactionLayer(clock, transport, self, timers)
        transport.user = self.txns
        self.contexts: dict = {}  # INVITE server transaction -> RequestContext

    # --- who we are ----------------------------------------------------------------

    def is_us(self, uri) -> bool:
        """Whether a URI (e.g. a Route entry) names this proxy."""
        if not isinstance(uri, SIPURI):
            return False
        for transport, (host, port) in self.transport.addresses.items():
            if uri.host == host and (uri.port or DEFAULT_PORTS.get(transport, 5060)) == port:
                return True
        return False

    def _our_uri(self, transport: str, params) -> SIPURI:
        host, port = self.txns.local_address(transport)
        p = {}
        if transport != "UDP":
            p["transport"] = transport.lower()
        p["lr"] = None
        if isinstance(params, dict):
            p.update(params)
        return SIPURI(host, None, port, p)

    # --- requests -------------------------------------------------------------------

    def request_received(self, server, request: Request) -> None:
        # §16.6 step 8: the loop hash is over the request as received, before
        # Route processing, so a request that comes back the same way matches.
        key = loop_hash(request)
        early = self._validate(request, key)
        if early is not None:
            to = early.headers._d.get("to")
            if to and to[0].tag is None:
                to[0] = to[0].copy()
                to[0].params["tag"] = new_tag()
            server.respond(early)
            return
        self._process_routes(request)
        ctx = RequestContext(request, server)
        ctx.loop_key = key
        if request.method == "INVITE":
            self.contexts[server] = ctx
        self._guarded(ctx, "routing", self._route, ctx)

    def _route(self, ctx: RequestContext) -> None:
        request = ctx.request
        if request.method == "INVITE":
            ctx.server.respond(make_response(request, 100))
        try:
            decision = self.router.route_request(request, ctx)
        except Exception:
            log.failure("Router failed on {method} {call_id}", method=request.method, call_id=request.call_id)
            self._reject(ctx, Reject(500, "Server Internal Error (routing)"))
            return
        if isinstance(decision, Deferred):
            decision.addCallbacks(lambda d: self._guarded(ctx, "forwarding", self._apply, ctx, d),
                                  lambda f: self._routing_failed(ctx, f))
        else:
            self._guarded(ctx, "forwarding", self._apply, ctx, decision)

    def _validate(self, request: Request, key: str) -> Response | None:
        if request.uri.scheme not in SCHEMES:
            return make_response(request, 416)  # §16.3 step 1
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            return make_response(request, 483)
        required = [r.strip() for r in request.headers.getlist("proxy-require") if r.strip()]
        unsupported = [r for r in required if r not in SUPPORTED_PROXY_EXTENSIONS]
        if unsupported:
            resp = make_response(request, 420)
            resp.headers.set("Unsupported", ", ".join(unsupported))
            return resp
        # §16.3 step 4: our own Via carrying this request's loop hash means a loop.
        vias = request.via
        if len(vias) > 1:
            for via in vias[1:]:
                branch = via.branch or ""
                if branch.startswith(MAGIC_COOKIE + "-") and self._is_our_via(via):
                    if branch[len(MAGIC_COOKIE) + 1:].startswith(key):
                        return make_response(request, 482)
        return None

    def _is_our_via(self, via: Via) -> bool:
        for transport, (host, port) in self.transport.addresses.items():
            if via.host == host and (via.port or 5060) == port:
                return True
        return False

    def _process_routes(self, request: Request) -> None:
        """§16.4: strict-route compatibility, then pop Route entries that are us."""
        uri = request.uri
        routes = request.headers._d.get("route")
        if routes and self.is_us(uri) and getattr(uri, "user", None) is None:
            # A strict router put our Record-Route URI (as we wrote it, lr and
            # all) in the Request-URI: the real one is the last Route (§16.4).
            # Ours never has a user part; sip:800@us with a pre-loaded Route
            # to us is a request for us (the DNIS), not a strict route.
            request.uri = routes.pop().uri
        while routes and self.is_us(routes[0].uri):
            routes.pop(0)
        if routes is not None and not routes:
            request.headers.remove("route")

    def _routing_failed(self, ctx, failure) -> None:
        log.failure("Routing failed for {method} {call_id}", failure, method=ctx.request.method, call_id=ctx.call_id)
        self._guarded(ctx, "rejecting", self._reject, ctx, Reject(500, "Server Internal Error (routing)"))

    def _apply(self, ctx: RequestContext, decision) -> None:
        if ctx.finished:
            return
        if ctx.cancelled:
            self._reject(ctx, Reject(487))
            return
        if decision is None:
            if ctx.in_dialog or ctx.request.route:
                decision = Forward(record_route=False)
            else:
                decision = Reject(404)
        if isinstance(decision, Reject):
            self._reject(ctx, decision)
        else:
            self._forward(ctx, decision)

    def _reject(self, ctx: RequestContext, rej: Reject) -> None:
        request = ctx.request
        resp = make_response(request, rej.status, rej.reason, to_tag=new_tag())
        for name, value in rej.headers.items():
            resp.headers.set(name, value)
        self._send_final(ctx, resp)

    def _forward(self, ctx: RequestContext, fwd: Forward) -> None:
        request = ctx.request
        out = request.copy()
        if fwd.uri is not None:
            out.uri = fwd.uri
        for name in fwd.remove:
            out.headers.remove(name)
        for name, value in fwd.headers.items():
            out.headers.set(name, value)
        mf = out.max_forwards
        out.headers._d["max-forwards"] = [70 if mf is None else mf - 1]  # §16.6 step 3
        # Where it goes: explicit, else the top Route, else the Request-URI.
        peer = fwd.peer
        if peer is None:
            target = out.route[0].uri if out.route else out.uri
            peer = uri_peer(target)
        if peer is None:
            self._reject(ctx, Reject(416 if not isinstance(out.uri, (SIPURI, TelURI)) else 404))
            return
        if fwd.record_route and self.record_route and out.method in DIALOG_CREATING and not ctx.in_dialog:
            inbound = request.source.transport if request.source else "UDP"
            if inbound != peer.transport:
                out.headers.add("Record-Route", NameAddr(self._our_uri(inbound, fwd.record_route)), first=True)
            out.headers.add("Record-Route", NameAddr(self._our_uri(peer.transport, fwd.record_route)), first=True)
        ctx.attempts.append(fwd)
        ctx.peer = peer
        branch = f"{MAGIC_COOKIE}-{ctx.loop_key or loop_hash(request)}.{new_branch()[len(MAGIC_COOKIE):]}"
        client = self.txns.send_request(out, peer, branch=branch)
        ctx.client = client
        client.on_response = lambda response: self._guarded(ctx, "relaying a response", self._response, ctx,
                                                            client, response)
        if out.method == "INVITE":
            if ctx.timer_c is None:
                ctx.timer_c = Timer(self.clock, self._guarded, ctx, "on Timer C", self._timer_c, ctx)
            ctx.timer_c.start(fwd.timeout or self.timer_c)

    def _timer_c(self, ctx: RequestContext) -> None:
        """§16.8: no final response in time; CANCEL the branch (or give up on it)."""
        client = ctx.client
        if client is None or ctx.finished:
            return
        log.info("Timer C fired for INVITE {call_id} to {peer}", call_id=ctx.call_id, peer=str(ctx.peer))
        if client.state == "proceeding":
            client.cancel("SIP;cause=408;text=\"Timer C\"")
        else:
            client.terminate()
            self._response(ctx, client, make_response(client.request, 408, "Request Timeout (Timer C)"))

    # --- responses -------------------------------------------------------------------

    def _response(self, ctx: RequestContext, client, response: Response) -> None:
        if client is not ctx.client:
            return  # a response for an abandoned attempt
        status = response.status
        if status == 100:
            return
        up = response.copy()
        vias = up.headers._d.get("via")
        if vias:
            vias.pop(0)
        if not vias:
            if status < 200:
                return  # §16.7 step 3: for us alone
            # A final response that lost the upstream Vias (e.g. a UAS that
            # built its 487 from our CANCEL, which carries one Via) still ends
            # this branch: answer upstream ourselves with its status, or the
            # caller's transaction and this context would wait forever.
            log.warn("{status} for {call_id} from {peer} has no Via beyond ours; answering upstream ourselves",
                     status=status, call_id=ctx.call_id, peer=str(ctx.peer))
            to = response.to
            up = make_response(ctx.request, status, response.reason, to_tag=to.tag if to is not None else None)
        on_response = getattr(self.router, "on_response", None)
        decision = None
        if on_response is not None:
            try:
                decision = on_response(up, ctx)
            except Exception:
                log.failure("Router on_response failed for {call_id}", call_id=ctx.call_id)
        if status < 200:
            if ctx.timer_c is not None:
                ctx.timer_c.start(ctx.attempts[-1].timeout or self.timer_c)
            if not ctx.finished:
                ctx.server.respond(up)
            return
        if status >= 300 and not ctx.cancelled and not ctx.finished:
            if isinstance(decision, Forward):
                log.info("Retrying {method} {call_id} after {status} from {peer}",
                         method=ctx.request.method, call_id=ctx.call_id, status=status, peer=str(ctx.peer))
                self._forward(ctx, decision)
                return
            if isinstance(decision, Reject):
                self._reject(ctx, decision)
                return
        if status < 300 and ctx.finished:
            ctx.server.respond(up)  # a 2xx retransmission, through the Accepted state
            return
        if response.source is None:
            # Made up here (Timer B/C/F 408, transport error 503): as a UAS
            # would, give it a To tag (§8.2.6.2, §16.7 step 6).
            to = up.headers._d.get("to")
            if to and to[0].tag is None:
                to[0].params["tag"] = new_tag()
        self._send_final(ctx, up)

    def _send_final(self, ctx: RequestContext, response: Response) -> None:
        if ctx.finished:
            return
        ctx.finished = True
        if ctx.timer_c is not None:
            ctx.timer_c.cancel()
        if response.status >= 300 or ctx.request.method != "INVITE":
            self.contexts.pop(ctx.server, None)
        else:
            # Keep the context while 2xx retransmissions may still come (Timer L).
            server = ctx.server
            server.on_terminated = lambda txn, reason: self.contexts.pop(txn, None)
        try:
            ctx.server.respond(response)
        except Exception:
            log.failure("Could not answer {status} to {method} {call_id}", level=LogLevel.error,
                        status=response.status, method=ctx.request.method, call_id=ctx.call_id)
        on_finished = getattr(self.router, "on_finished", None)
        if on_finished is not None:
            try:
                on_finished(ctx, response)
            except Exception:
                log.failure("Router on_finished failed for {call_id}", call_id=ctx.call_id)

    # --- failures after the routing decision ------------------------------------------

    def _guarded(self, ctx: RequestContext, step: str, fn, *args) -> None:
        """Run one step of handling C{ctx}; if it raises, give the request up (L{_failed})."""
        try:
            fn(*args)
        except Exception:
            self._failed(ctx, step)

    def _failed(self, ctx: RequestContext, step: str) -> None:
        """
        A bug while C{step} for C{ctx}: abandon the attempt in flight (an
        INVITE is CANCELled once it can be) and answer 500 upstream, which
        calls the router's C{on_finished}, so that what it holds for the
        request (an RM session, a CTIC or MCP port) is released now, not at
        a session timeout hours later.
        """
        log.failure("Proxy failed {step} {method} {call_id}; answering 500", level=LogLevel.error, step=step,
                    method=ctx.request.method, call_id=ctx.call_id)
        client, ctx.client = ctx.client, None
        if isinstance(client, InviteClientTransaction):
            try:
                client.cancel()
            except Exception:
                log.failure("Could not CANCEL the abandoned INVITE {call_id}", level=LogLevel.error,
                            call_id=ctx.call_id)
        if ctx.finished:
            return
        reason = f"Server Internal Error ({step})"
        try:
            response = make_response(ctx.request, 500, reason, to_tag=new_tag())
        except Exception:
            response = Response(500, reason)  # for on_finished; there is nothing to send it with
        self._send_final(ctx, response)

    # --- CANCEL, ACK, stray responses -----------------------------------------------

    def cancel_received(self, server, cancel: Request) -> None:
        ctx = self.contexts.get(server)
        if ctx is None or ctx.finished:
            return
        ctx.cancelled = True
        if ctx.client is not None:
            reason = cancel.headers.get("reason")
            ctx.client.cancel(reason)
        else:
            self._reject(ctx, Reject(487))

    def ack_received(self, ack: Request) -> None:
        """An ACK for a 2xx: forwarded statelessly by Route / Request-URI (§16.6, §16.11)."""
        if ack.max_forwards is not None and ack.max_forwards <= 0:
            return
        self._process_routes(ack)
        on_ack = getattr(self.router, "on_ack", None)
        peer = None
        if on_ack is not None:
            peer = on_ack(ack)
        out = ack.copy()
        mf = out.max_forwards
        out.headers._d["max-forwards"] = [70 if mf is None else mf - 1]  # §16.6 step 3
        if peer is None:
            target = out.route[0].uri if out.route else out.uri
            if self.is_us(target):
                log.info("Dropped an ACK for {call_id} addressed to us with no route onward", call_id=ack.call_id)
                return
            peer = uri_peer(target)
        if peer is None:
            return
        self.txns.push_via(out, peer)
        self.txns.send(out, peer)

    def stray_response(self, response: Response) -> None:
        """§16.7: a response without a transaction (e.g. a late 2xx): forward statelessly."""
        vias = response.headers._d.get("via")
        if not vias or len(vias) < 2 or not self._is_our_via(vias[0]):
            return
        if not (200 <= response.status < 300):
            return
        up = response.copy()
        up.headers._d["via"].pop(0)
        self.txns.send_response(up)

    def transport_error(self, peer, msg, reason) -> None:
        pass  # client transactions report it as 503 to _response
