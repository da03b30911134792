"""
An RM in memory for call-flow tests: the real proxy core and RM router on a
task.Clock, with a wire that records every message sent, and user agents
(gateway, CTIC, MCP) that send parsed SIP text from their own addresses.
"""

from __future__ import annotations

import itertools
import random

from twisted.internet.task import Clock

from ctic.config import loads
from ctic.rm.cdr import MemorySink
from ctic.rm.model import build
from ctic.rm.router import RMRouter
from ctic.rm.session import SessionTable
from ctic.rm.tap import SCHEMA
from ctic.sip.message import Request, Response
from ctic.sip.parser import parse_datagram
from ctic.sip.proxy import Proxy
from ctic.sip.transport import Peer, response_peer, stamp_via

RM_HOST, RM_PORT = "10.0.0.1", 5060
GW = Peer("UDP", "192.0.2.10", 5060)
CTIC1 = Peer("UDP", "10.0.0.21", 5070)
CTIC2 = Peer("UDP", "10.0.0.22", 5070)
MCP1 = Peer("UDP", "10.0.0.31", 5090)
MCP2 = Peer("UDP", "10.0.0.32", 5090)

BASE = f"""
[tenant:Environment]
dbid-path = 1.101
default-ivr-profile = fallback

[mcp-group:mcp]
members = {MCP1.host}:{MCP1.port}
monitor-method = none

[ivr-profile:sales]
dnis = 800, 5550000-5550099, 1866xxx
voicexml-url = http://apps/sales.vxml

[ivr-profile:sales/gvp.service-parameters]
cti.DefaultAgent = fixed,5000
cti.TransferOnCTI = fixed,Yes
voicexml.gvp.config.asr.load_once_per_call = fixed,1

[ivr-profile:fallback]
voicexml-url = http://apps/fallback.vxml
"""


def ctic_group(extra="", members=f"{CTIC1.host}:{CTIC1.port}, {CTIC2.host}:{CTIC2.port}"):
    return f"""
[ctic-group:ctic]
members = {members}
monitor-method = none
{extra}
"""


def gateway_group(use_cti, extra=""):
    return f"""
[gateway-group:gw]
members = {GW.host}
use-cti = {use_cti}
{extra}
"""


class Wire:
    """The transport: records (peer, message) for every send."""

    def __init__(self):
        self.addresses = {"UDP": (RM_HOST, RM_PORT)}
        self.user = None
        self.sent: list[tuple[Peer, object]] = []

    def send(self, msg, peer):
        self.sent.append((peer, parse_datagram(bytes(msg))))

    def send_response(self, response, request=None):
        self.send(response, response_peer(response.top_via, "UDP"))


class RM:
    def __init__(self, ini: str, sink=None):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.model = build(loads(ini, SCHEMA, "test.ini"))
        self.wire = Wire()
        self.sink = sink if sink is not None else MemorySink()
        self.sessions = SessionTable(self.clock, self.sink, self.model.session_timeout)
        self.router = RMRouter(self.clock, self.model, self.sessions, rng=random.Random(7))
        self.proxy = Proxy(self.clock, self.wire, self.router)
        self.router.is_us = self.proxy.is_us

    def deliver(self, msg, peer):
        msg = parse_datagram(bytes(msg))
        msg.source = peer
        if isinstance(msg, Request):
            stamp_via(msg, peer.host, peer.port)
        self.wire.user.messageReceived(msg)

    def take(self, *, keep_100=False):
        out, self.wire.sent = self.wire.sent, []
        if not keep_100:
            out = [(p, m) for p, m in out if not (isinstance(m, Response) and m.status == 100)]
        return out

    def one(self, to: Peer | None = None):
        """The single message sent (to C{to}); fails if there is not exactly one."""
        out = self.take()
        assert len(out) == 1, [(str(p), m.start_line()) for p, m in out]
        peer, msg = out[0]
        if to is not None:
            assert (peer.host, peer.port) == (to.host, to.port), (str(peer), msg.start_line())
        return msg

    @property
    def cdrs(self):
        return self.sink.records


_counter = itertools.count(1)


class UA:
    """A SIP peer at a fixed address that talks to the RM."""

    def __init__(self, rm: RM, peer: Peer, user="ua"):
        self.rm = rm
        self.peer = peer
        self.user = user

    def _via(self):
        return f"SIP/2.0/UDP {self.peer.host}:{self.peer.port};branch=z9hG4bK{next(_counter)}x"

    def request(self, method, ruri, call_id, *, cseq=1, from_tag="ft", to_tag=None, to=None, headers=(),
                route=(), body=b""):
        to = to or ruri.split(";")[0]
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: {self._via()}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.peer.host}>;tag={from_tag}",
            f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.peer.host}:{self.peer.port}>",
        ]
        lines += [f"Route: {r}" for r in route]
        lines += list(headers)
        text = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n"
        msg = parse_datagram(text.encode() + body)
        self.rm.deliver(msg, self.peer)
        return msg

    def invite(self, ruri, call_id, headers=()):
        return self.request("INVITE", ruri, call_id, headers=headers)

    def cancel(self, invite):
        """CANCEL for an INVITE this UA sent (same branch, §9.1)."""
        lines = [
            f"CANCEL {invite.uri} SIP/2.0",
            f"Via: {invite.top_via}",
            "Max-Forwards: 70",
            f"From: {invite.from_}",
            f"To: {invite.to}",
            f"Call-ID: {invite.call_id}",
            f"CSeq: {invite.cseq.seq} CANCEL",
        ]
        text = "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
        self.rm.deliver(parse_datagram(text.encode()), self.peer)

    def respond(self, request, status, headers=(), to_tag="uas"):
        """Answer a request the RM sent us."""
        lines = [f"SIP/2.0 {status} Reason"]
        lines += [f"Via: {v}" for v in request.via]
        lines += [f"From: {request.from_}"]
        to = request.to
        tag = "" if to.tag or status == 100 else f";tag={to_tag}"
        lines += [f"To: {to}{tag}", f"Call-ID: {request.call_id}", f"CSeq: {request.cseq}"]
        if request.method == "INVITE" and 200 <= status < 300:
            lines.append(f"Contact: <sip:{self.user}@{self.peer.host}:{self.peer.port}>")
            lines += [f"Record-Route: {rr}" for rr in request.record_route]
        lines += list(headers)
        text = "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
        self.rm.deliver(parse_datagram(text.encode()), self.peer)

    def ack(self, invite_to_me, response):
        """The ACK for a 2xx (routed by the record-route set, as a UAC does)."""
        routes = [str(rr) for rr in response.record_route]
        contact = response.contact[0].uri
        return self.request("ACK", str(contact), invite_to_me.call_id, to=str(invite_to_me.to.uri),
                            to_tag=response.to.tag, route=routes)
