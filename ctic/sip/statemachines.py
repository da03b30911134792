# -*- test-case-name: tests.sip.test_transaction -*-
"""
The four RFC 3261 §17 transaction state machines (INVITE and non-INVITE,
client and server, with RFC 6026's Accepted state) and their timers, A to M,
on an injected clock.  L{ctic.sip.transaction.TransactionLayer} creates,
matches and forgets them; nothing here touches a socket.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from twisted.logger import Logger

from ctic.sip.headers import MAGIC_COOKIE, CSeq
from ctic.sip.message import Headers, Request, Response, make_response
from ctic.timers import Timer

log = Logger(namespace="ctic.sip.transaction")


@dataclass(frozen=True)
class Timers:
    """RFC 3261 T1, T2, T4 in seconds (§17.1.1.1, table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


_branch_counter = itertools.count(1)
_branch_prefix = MAGIC_COOKIE + os.urandom(5).hex()


def new_branch() -> str:
    """A unique RFC 3261 branch (magic cookie + per-process random + counter)."""
    return f"{_branch_prefix}.{next(_branch_counter):x}"


def is_rfc3261_branch(branch) -> bool:
    # A bare magic cookie identifies nothing (RFC 4475 §3.2.1): fall back.
    return bool(branch) and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


def local_response(request: Request, status: int, reason: str | None = None) -> Response:
    """A response the transaction layer makes up itself (408, 503) for its TU."""
    return make_response(request, status, reason)


# --- client transactions ------------------------------------------------------------


class _Transaction:
    """What every transaction shares: its layer, request, state and timers."""

    def __init__(self, layer, request: Request):
        self.layer = layer
        self.request = request
        self.state = None
        self.last_response = None
        self._timers: list[Timer] = []

    def _timer(self, callback, *args) -> Timer:
        """A timer on the layer's clock, cancelled when the transaction ends."""
        t = Timer(self.layer.clock, callback, *args)
        self._timers.append(t)
        return t

    def _end(self) -> bool:
        """Enter C{terminated} and cancel every timer; False if already there."""
        if self.state == "terminated":
            return False
        self.state = "terminated"
        for t in self._timers:
            t.cancel()
        return True


class ClientTransaction(_Transaction):
    """
    Base for client transactions.  C{on_response} is called with every
    response the TU should see.

    @ivar state: C{"calling"}/C{"trying"}, C{"proceeding"}, C{"completed"},
        C{"accepted"}, C{"terminated"}.
    """

    def __init__(self, layer, request: Request, peer):
        super().__init__(layer, request)
        self.peer = peer
        self.branch = request.top_via.branch
        self.key = (self.branch, request.method)
        self.reliable = peer.reliable
        self.on_response = None

    def _send(self) -> None:
        self.layer.send(self.request, self.peer)

    def _deliver(self, response: Response) -> None:
        if self.on_response is not None:
            self.on_response(response)

    def terminate(self) -> None:
        if self._end():
            self.layer._client_done(self)

    def transport_error(self, reason: str) -> None:
        if self.state in ("terminated", "completed", "accepted"):
            return
        log.info("Transport error on {method} to {peer}: {reason}", method=self.request.method,
                 peer=str(self.peer), reason=reason)
        self.terminate()
        response = local_response(self.request, 503, "Service Unavailable (transport error)")
        if self.on_response is None:
            # The first send failed inside send_request, before the TU could
            # set on_response: hand the 503 over on the next turn instead.
            Timer(self.layer.clock, self._deliver, response).start(0)
        else:
            self._deliver(response)

    def __repr__(self):
        return f"<{type(self).__name__} {self.request.method} {self.branch} {self.state}>"


class InviteClientTransaction(ClientTransaction):
    """§17.1.1 with RFC 6026: Calling, Proceeding, Completed, Accepted, Terminated."""

    def __init__(self, layer, request, peer):
        super().__init__(layer, request, peer)
        t = layer.timers
        self.timer_a = self._timer(self._fire_a)
        self.timer_b = self._timer(self._fire_b)
        self.timer_d = self._timer(self.terminate)
        self.timer_m = self._timer(self.terminate)
        # §9.1: with no final response 64*T1 after our CANCEL, give the INVITE up.
        self.timer_cancel = self._timer(self._fire_cancel)
        self._a_interval = t.t1
        self._cancel_pending = None
        self._cancelled = False
        self.cancel_txn = None

    def start(self) -> None:
        self.state = "calling"
        self._send()
        if self.state == "terminated":
            return  # the first send failed
        if not self.reliable:
            self.timer_a.start(self._a_interval)
        self.timer_b.start(64 * self.layer.timers.t1)

    def _fire_a(self) -> None:
        if self.state != "calling":
            return
        self._send()
        if self.state != "calling":
            return  # the send failed and ended the transaction
        self._a_interval *= 2
        self.timer_a.start(self._a_interval)

    def _fire_b(self) -> None:
        if self.state != "calling":
            return
        self.terminate()
        self._deliver(local_response(self.request, 408, "Request Timeout (Timer B)"))

    def receive_response(self, response: Response) -> None:
        status = response.status
        state = self.state
        if state in ("calling", "proceeding"):
            self.timer_a.cancel()
            self.timer_b.cancel()
            if status >= 200:
                self.timer_cancel.cancel()
            if status < 200:
                self.state = "proceeding"
                self.last_response = response
                self._deliver(response)
                if self._cancel_pending is not None:
                    self._send_cancel()
            elif status < 300:
                self.state = "accepted"
                self.last_response = response
                self.timer_m.start(64 * self.layer.timers.t1)
                self._deliver(response)
            else:
                self.state = "completed"
                self.last_response = response
                self._send_ack(response)
                self.timer_d.start(0 if self.reliable else max(32.0, 64 * self.layer.timers.t1))
                self._deliver(response)
        elif state == "completed":
            if status >= 300:
                self._send_ack(response)  # §17.1.1.2: retransmitted final response
        elif state == "accepted":
            if 200 <= status < 300:
                self._deliver(response)  # RFC 6026 §8.4: 2xx retransmissions go to the TU

    def _hop_request(self, method: str, to) -> Request:
        """An ACK or CANCEL built from this INVITE (§17.1.1.3, §9.1): same branch and Route."""
        inv = self.request
        h = Headers()
        d = h._d
        d["via"] = [inv.top_via]
        if inv.route:
            d["route"] = list(inv.route)
        d["max-forwards"] = [70]
        d["from"] = [inv.from_]
        d["to"] = [to]
        d["call-id"] = [inv.call_id]
        d["cseq"] = [CSeq(inv.cseq.seq, method)]
        return Request(method, inv.uri, h)

    def _send_ack(self, response: Response) -> None:
        """§17.1.1.3: the ACK for a non-2xx final response, inside the transaction."""
        self.layer.send(self._hop_request("ACK", response.to), self.peer)

    def cancel(self, reason: str | None = None) -> None:
        """
        Send a CANCEL for this INVITE (§9.1): at once if a provisional
        response has arrived, else as soon as one does; never after a final.
        """
        if self.state in ("completed", "accepted", "terminated") or self._cancelled:
            return
        self._cancelled = True
        self._cancel_pending = reason or ""
        if self.state == "proceeding":
            self._send_cancel()

    def _send_cancel(self) -> None:
        cancel = self._hop_request("CANCEL", self.request.to)
        if self._cancel_pending:
            cancel.headers._d["reason"] = [self._cancel_pending]
        self._cancel_pending = None
        self.timer_cancel.start(64 * self.layer.timers.t1)
        self.cancel_txn = self.layer.send_request(cancel, self.peer, push_via=False)

    def _fire_cancel(self) -> None:
        if self.state not in ("calling", "proceeding"):
            return
        log.info("No final response to a cancelled INVITE {call_id} from {peer}",
                 call_id=self.request.call_id, peer=str(self.peer))
        self.terminate()
        self._deliver(local_response(self.request, 408, "Request Timeout (no answer to CANCEL)"))


class NonInviteClientTransaction(ClientTransaction):
    """§17.1.2: Trying, Proceeding, Completed, Terminated."""

    def __init__(self, layer, request, peer):
        super().__init__(layer, request, peer)
        self.timer_e = self._timer(self._fire_e)
        self.timer_f = self._timer(self._fire_f)
        self.timer_k = self._timer(self.terminate)
        self._e_interval = layer.timers.t1

    def start(self) -> None:
        self.state = "trying"
        self._send()
        if self.state == "terminated":
            return  # the first send failed
        if not self.reliable:
            self.timer_e.start(self._e_interval)
        self.timer_f.start(64 * self.layer.timers.t1)

    def _fire_e(self) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        self._send()
        if self.state == "terminated":
            return  # the send failed and ended the transaction
        t2 = self.layer.timers.t2
        self._e_interval = t2 if self.state == "proceeding" else min(2 * self._e_interval, t2)
        self.timer_e.start(self._e_interval)

    def _fire_f(self) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        self.terminate()
        self._deliver(local_response(self.request, 408, "Request Timeout (Timer F)"))

    def receive_response(self, response: Response) -> None:
        if self.state not in ("trying", "proceeding"):
            return  # completed: retransmissions absorbed
        if response.status < 200:
            self.state = "proceeding"
            self.last_response = response
            self._deliver(response)
            return
        self.timer_e.cancel()
        self.timer_f.cancel()
        self.state = "completed"
        self.last_response = response
        self.timer_k.start(0 if self.reliable else self.layer.timers.t4)
        self._deliver(response)


# --- server transactions ------------------------------------------------------------


class ServerTransaction(_Transaction):
    """
    Base for server transactions.  The TU answers with C{respond(response)}.
    C{on_terminated(txn, reason)} (optional) reports the end, with
    C{"timer-h"} when no ACK came for a final response.
    """

    def __init__(self, layer, request: Request, key):
        super().__init__(layer, request)
        self.key = key
        self.reliable = request.source is not None and request.source.reliable
        self.on_terminated = None
        self.on_ack = None

    @property
    def method(self) -> str:
        return self.request.method

    def _send(self, response: Response) -> None:
        self.layer.send_response(response, self.request)

    def terminate(self, reason: str = "done") -> None:
        if not self._end():
            return
        self.layer._server_done(self)
        if self.on_terminated is not None:
            self.on_terminated(self, reason)

    def __repr__(self):
        return f"<{type(self).__name__} {self.request.method} {self.state}>"


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 with RFC 6026: Proceeding, Completed, Confirmed, Accepted, Terminated."""

    def __init__(self, layer, request, key):
        super().__init__(layer, request, key)
        self.state = "proceeding"
        self.timer_g = self._timer(self._fire_g)
        self.timer_h = self._timer(self._fire_h)
        self.timer_i = self._timer(self.terminate)
        self.timer_l = self._timer(self.terminate)
        self._g_interval = layer.timers.t1

    def respond(self, response: Response) -> None:
        state = self.state
        status = response.status
        if state == "proceeding":
            self.last_response = response
            self._send(response)
            if status < 200:
                return
            if status < 300:
                # RFC 6026 §8.5: Accepted; the TU retransmits the 2xx itself.
                self.state = "accepted"
                self.timer_l.start(64 * self.layer.timers.t1)
            else:
                self.state = "completed"
                if not self.reliable:
                    self.timer_g.start(self._g_interval)
                self.timer_h.start(64 * self.layer.timers.t1)
        elif state == "accepted" and 200 <= status < 300:
            self._send(response)  # 2xx retransmission from the TU / a forked 2xx
        else:
            log.debug("Dropped a {status} on an INVITE server transaction in {state}", status=status, state=state)

    def receive_request(self, request: Request) -> None:
        method = request.method
        state = self.state
        if method == "ACK":
            if state == "completed":
                self.state = "confirmed"
                self.timer_g.cancel()
                self.timer_h.cancel()
                self.timer_i.start(0 if self.reliable else self.layer.timers.t4)
                if self.on_ack is not None:
                    self.on_ack(request)
            elif state == "accepted":
                self.layer._ack_for_2xx(request)
            return
        # A retransmitted INVITE.
        if state in ("proceeding", "completed") and self.last_response is not None:
            self._send(self.last_response)

    def _fire_g(self) -> None:
        if self.state != "completed":
            return
        self._send(self.last_response)
        self._g_interval = min(2 * self._g_interval, self.layer.timers.t2)
        self.timer_g.start(self._g_interval)

    def _fire_h(self) -> None:
        if self.state == "completed":
            log.info("No ACK for {status} to INVITE {call_id} (Timer H)",
                     status=self.last_response.status, call_id=self.request.call_id)
            self.terminate("timer-h")


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2: Trying, Proceeding, Completed, Terminated."""

    def __init__(self, layer, request, key):
        super().__init__(layer, request, key)
        self.state = "trying"
        self.timer_j = self._timer(self.terminate)

    def respond(self, response: Response) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        self.last_response = response
        self._send(response)
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self.timer_j.start(0 if self.reliable else 64 * self.layer.timers.t1)

    def receive_request(self, request: Request) -> None:
        if self.state in ("proceeding", "completed") and self.last_response is not None:
            self._send(self.last_response)
