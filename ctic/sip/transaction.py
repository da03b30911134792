# -*- test-case-name: tests.sip.test_transaction -*-
"""
RFC 3261 §17 transactions, with the RFC 6026 "Accepted" state.

Four state machines (INVITE and non-INVITE, client and server) run every
timer, A to M, on an injected clock (C{IReactorTime}; tests pass
C{task.Clock}), and talk to the network only through a transport object
with C{send(message, peer)} and C{send_response(response, request)}.

L{TransactionLayer} is the transport's user: it matches each message to its
transaction in O(1) (by branch, RFC 3261 §17.1.3/§17.2.3, with the RFC 2543
fallback when a request carries no RFC 3261 branch), absorbs
retransmissions, answers CANCEL (§9.2) and hands the rest to the
transaction user (TU)::

    tu.request_received(server_txn, request)    # a new request (never a retransmission)
    tu.cancel_received(invite_server_txn, cancel)  # CANCEL for a pending INVITE (already answered 200)
    tu.ack_received(ack)                        # an ACK for a 2xx (end to end, no transaction)
    tu.stray_response(response)                 # a response no client transaction knows

A client transaction reports every response, and a locally built 408
(Timer B/F) or 503 (transport error), through C{txn.on_response(response)}.
A transport reports a send that could not happen with C{transportError};
one that raises instead is treated the same, so no send raises into a timer,
the TU or the reactor.
"""

from __future__ import annotations

from twisted.logger import Logger

from ctic.sip.headers import Via
from ctic.sip.message import Request, Response, make_response
from ctic.sip.responder import stateless_tag
from ctic.sip.statemachines import (  # noqa: F401  (re-exported: the transaction API lives here)
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    Timers,
    is_rfc3261_branch,
    local_response,
    new_branch,
)

log = Logger(namespace="ctic.sip.transaction")


def server_key(request: Request, method: str | None = None):
    """The server transaction key of a request (§17.2.3); ACK keys to its INVITE."""
    method = method or request.method
    if method == "ACK":
        method = "INVITE"
    via = request.top_via
    branch = via.branch
    if is_rfc3261_branch(branch):
        return (branch, via.host, via.port, method)
    # RFC 2543 fallback (§17.2.3 end): Request-URI, From tag, Call-ID, CSeq
    # number and top Via; the To tag is left out so an ACK for a non-2xx
    # response (which carries our tag) finds its INVITE.
    return ("2543", request.uri_text, request.from_.tag, request.call_id, request.cseq.seq, str(via), method)


def _response_key(response: Response):
    via = response.top_via
    cseq = response.cseq
    if via is None or cseq is None:
        return None
    method = cseq.method
    if method == "ACK":
        method = "INVITE"
    return (via.branch, method)


# --- the layer -------------------------------------------------------------------


class TransactionLayer:
    """
    Matches messages to transactions and owns their tables.

    @ivar transport: anything with C{send(msg, peer)} and C{send_response(resp, request)}.
    @ivar tu: the transaction user (see the module docstring).
    """

    def __init__(self, clock, transport, tu=None, timers: Timers | None = None, max_transactions: int = 100_000):
        self.clock = clock
        self.transport = transport
        self.tu = tu
        self.timers = timers or Timers()
        self.max_transactions = max_transactions
        self.server: dict = {}
        self.client: dict = {}
        self.overloaded = 0

    # --- from the transport -----------------------------------------------------

    def messageReceived(self, msg) -> None:
        if type(msg) is Request:
            self._request(msg)
        else:
            key = _response_key(msg)
            txn = self.client.get(key) if key is not None else None
            if txn is not None:
                txn.receive_response(msg)
            elif self.tu is not None and hasattr(self.tu, "stray_response"):
                self.tu.stray_response(msg)

    def _request(self, request: Request) -> None:
        method = request.method
        key = server_key(request)
        txn = self.server.get(key)
        if txn is not None:
            txn.receive_request(request)
            return
        if method == "ACK":
            self._ack_for_2xx(request)
            return
        if method == "CANCEL":
            self._cancel(request)
            return
        if len(self.server) + len(self.client) >= self.max_transactions:
            # Overload: answer statelessly and keep no state (RFC 3261 §21.5.4).
            self.overloaded += 1
            if self.overloaded == 1 or self.overloaded % 1000 == 0:
                log.warn("Transaction table full ({limit}); answering 503 ({count} so far)",
                         limit=self.max_transactions, count=self.overloaded)
            resp = make_response(request, 503, "Service Unavailable (overload)", to_tag=stateless_tag(request))
            resp.headers.set("Retry-After", "5")
            self.send_response(resp, request)
            return
        if method == "INVITE":
            txn = InviteServerTransaction(self, request, key)
        else:
            txn = NonInviteServerTransaction(self, request, key)
        self.server[key] = txn
        tu = self.tu
        if tu is None:
            txn.respond(make_response(request, 500, "No Transaction User"))
            return
        try:
            tu.request_received(txn, request)
        except Exception:
            log.failure("Transaction user failed on {method} {call_id}", method=method, call_id=request.call_id)
            if txn.state in ("trying", "proceeding"):
                txn.respond(make_response(request, 500))

    def _cancel(self, cancel: Request) -> None:
        """§9.2: answer the CANCEL; tell the TU if its INVITE is still pending."""
        key = server_key(cancel, "CANCEL")
        txn = NonInviteServerTransaction(self, cancel, key)
        self.server[key] = txn
        invite = self.server.get(server_key(cancel, "INVITE"))
        if invite is None or invite.state == "terminated":
            txn.respond(make_response(cancel, 481))
            return
        txn.respond(make_response(cancel, 200, to_tag=_to_tag(invite)))
        if invite.state == "proceeding" and self.tu is not None:
            self.tu.cancel_received(invite, cancel)

    def _ack_for_2xx(self, ack: Request) -> None:
        if self.tu is not None and hasattr(self.tu, "ack_received"):
            self.tu.ack_received(ack)

    def transportError(self, peer, msg, reason) -> None:
        if type(msg) is Request:
            via = msg.top_via
            txn = self.client.get((via.branch, msg.method)) if via is not None else None
            if txn is not None:
                txn.transport_error(reason)
        if self.tu is not None and hasattr(self.tu, "transport_error"):
            self.tu.transport_error(peer, msg, reason)

    # --- to the transport -------------------------------------------------------

    def send(self, msg, peer) -> None:
        """Hand a message to the transport; a send that raises is a transport error (L{transportError})."""
        try:
            self.transport.send(msg, peer)
        except Exception as e:
            self._send_raised(peer, msg, e)

    def send_response(self, response: Response, request: Request | None = None) -> None:
        """Hand a response to the transport (on the request's connection, else by the top Via)."""
        try:
            self.transport.send_response(response, request)
        except Exception as e:
            self._send_raised(request.source if request is not None else None, response, e)

    def _send_raised(self, peer, msg, error: Exception) -> None:
        log.error("Sending {summary} to {peer} raised {error}; handled as a transport error",
                  summary=msg.summary(), peer=str(peer), error=repr(error))
        self.transportError(peer, msg, f"send failed: {error}")

    # --- for the TU ---------------------------------------------------------------

    def send_request(self, request: Request, peer, push_via: bool = True, branch: str | None = None) -> ClientTransaction:
        """
        Start a client transaction for C{request} towards C{peer}.  Our Via,
        with a new branch, goes on top unless C{push_via} is false (a CANCEL
        reuses its INVITE's Via, §9.1).
        """
        if push_via:
            self.push_via(request, peer, branch)
        if request.method == "INVITE":
            txn = InviteClientTransaction(self, request, peer)
        else:
            txn = NonInviteClientTransaction(self, request, peer)
        self.client[txn.key] = txn
        try:
            txn.start()
        except Exception:
            txn.terminate()  # leave no half-started transaction (nor its timers) behind
            raise
        return txn

    def push_via(self, request: Request, peer, branch: str | None = None) -> None:
        """Put our Via on top of C{request}, sent towards C{peer}: a new branch, C{rport} asked (RFC 3581)."""
        host, port = self.local_address(peer.transport)
        via = Via(peer.transport, host, port, {"branch": branch or new_branch(), "rport": None})
        request.headers.add("Via", via, first=True)

    def local_address(self, transport: str):
        """The (host, port) we advertise for a transport."""
        addresses = getattr(self.transport, "addresses", {})
        return addresses.get(transport) or addresses.get("UDP") or next(iter(addresses.values()), ("127.0.0.1", 5060))

    def request(self, request: Request, peer):
        """Send a request; a Deferred fires with its final response (408/503 on failure)."""
        from twisted.internet.defer import Deferred

        d = Deferred()

        def on_response(response):
            if response.status >= 200 and not d.called:
                d.callback(response)

        txn = self.send_request(request, peer)
        txn.on_response = on_response
        return d

    # --- bookkeeping ----------------------------------------------------------------

    def _client_done(self, txn) -> None:
        if self.client.get(txn.key) is txn:
            del self.client[txn.key]

    def _server_done(self, txn) -> None:
        if self.server.get(txn.key) is txn:
            del self.server[txn.key]


def _to_tag(txn: ServerTransaction):
    last = txn.last_response
    return last.to.tag if last is not None and last.to is not None else None


__all__ = [
    "TransactionLayer", "Timers", "server_key", "new_branch", "is_rfc3261_branch", "local_response",
    "ClientTransaction", "InviteClientTransaction", "NonInviteClientTransaction",
    "ServerTransaction", "InviteServerTransaction", "NonInviteServerTransaction",
]
