# -*- test-case-name: tests.sip.test_responder -*-
"""
A stateless SIP responder (RFC 3261 §8.2, §8.2.7): the smallest useful SIP
element, so the transport layer runs end to end before transactions exist,
and what a node answers to requests no call logic wants.

- OPTIONS: 200 with Allow, Accept and Supported (a peer's health probe).
- A Request-URI scheme other than sip, sips or tel: 416 (RFC 4475 §3.3.2).
- A Require naming an extension we do not support: 420 with Unsupported.
- ACK: never answered.
- Anything else: 501.
- Responses: dropped.

To-tags are derived from the request (Call-ID, From tag, branch), so a
retransmitted request gets the same answer, as §8.2.7 asks of a stateless UAS.
"""

from __future__ import annotations

import hashlib

from twisted.logger import Logger

from ctic.sip.message import Request, make_response

log = Logger(namespace="ctic.sip.responder")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE"
ACCEPT = "application/sdp"
SUPPORTED: frozenset[str] = frozenset()
SCHEMES = frozenset(("sip", "sips", "tel"))


def stateless_tag(request: Request) -> str:
    """A To-tag that is the same for every retransmission of a request."""
    via = request.top_via
    seed = f"{request.call_id}|{request.from_.tag if request.from_ else ''}|{via.branch if via else ''}"
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


def check_request(request: Request):
    """
    The answer RFC 3261 §8.2.2 requires before any method is looked at, as
    (status, extra headers), or C{None} when the request may proceed.
    """
    if request.uri.scheme not in SCHEMES:
        return 416, {}
    required = [r.strip() for r in request.headers.getlist("require")]
    unsupported = [r for r in required if r and r not in SUPPORTED]
    if unsupported and request.method not in ("ACK", "CANCEL"):
        return 420, {"Unsupported": ", ".join(unsupported)}
    return None


class StatelessResponder:
    """A transport user that answers every request statelessly."""

    def __init__(self, transport=None, server_name: str = "ctic"):
        self.transport = transport
        self.server_name = server_name
        self.answered: dict[int, int] = {}

    def messageReceived(self, msg) -> None:
        if type(msg) is not Request:
            log.debug("Dropped a response ({status}) sent to a stateless responder", status=msg.status)
            return
        if msg.method == "ACK":
            return
        status, extra = self.decide(msg)
        response = make_response(msg, status, to_tag=stateless_tag(msg))
        for name, value in extra.items():
            response.headers.set(name, value)
        response.headers.set("Server", self.server_name)
        self.answered[status] = self.answered.get(status, 0) + 1
        if status >= 400:
            log.info(
                "Answered {method} {call_id} from {peer} with {status}",
                method=msg.method, call_id=msg.call_id, peer=str(msg.source), status=status,
            )
        self.transport.send_response(response, msg)

    def decide(self, msg: Request):
        early = check_request(msg)
        if early is not None:
            return early
        if msg.method == "OPTIONS":
            extra = {"Allow": ALLOW, "Accept": ACCEPT}
            if SUPPORTED:
                extra["Supported"] = ", ".join(sorted(SUPPORTED))
            return 200, extra
        return 501, {}

    def transportError(self, peer, message, reason) -> None:
        log.warn("Could not answer {peer}: {reason}", peer=str(peer), reason=reason)
