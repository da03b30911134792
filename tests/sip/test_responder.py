"""The stateless responder: every request gets the answer RFC 3261 §8.2 asks for."""

from __future__ import annotations

import pytest
from twisted.internet.testing import FakeDatagramTransport, MemoryReactorClock

from ctic.sip.parser import parse_datagram
from ctic.sip.responder import ALLOW, StatelessResponder
from ctic.sip.transport import SIPDatagramProtocol, TransportLayer
from tests.sip.corpus import ANSWER, INVALID, RESPONSES, load


class Node:
    """A responder behind a UDP transport with a fake socket."""

    def __init__(self):
        self.responder = StatelessResponder(server_name="test-node")
        self.layer = TransportLayer(MemoryReactorClock(), self.responder)
        self.responder.transport = self.layer
        self.udp = SIPDatagramProtocol(self.layer)
        self.udp.transport = FakeDatagramTransport()
        self.layer._udp = self.udp

    def receive_raw(self, data, addr=("192.0.2.10", 5060)):
        before = len(self.udp.transport.written)
        self.udp.datagramReceived(data, addr)
        return [d for d, _ in self.udp.transport.written[before:]]

    def receive(self, data, addr=("192.0.2.10", 5060)):
        return [parse_datagram(d) for d in self.receive_raw(data, addr)]


OPTIONS = (
    b"OPTIONS sip:rm@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKo1\r\n"
    b"From: <sip:probe@example.com>;tag=p1\r\nTo: <sip:rm@192.0.2.1>\r\nCall-ID: o1\r\n"
    b"CSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def test_options_200_with_allow_and_accept():
    (r,) = Node().receive(OPTIONS)
    assert (r.status, r.reason) == (200, "OK")
    assert r.headers.get("allow") == ALLOW and "OPTIONS" in r.headers.getlist("allow")
    assert r.headers.get("accept") == "application/sdp"
    assert r.headers.get("server") == "test-node"
    assert (r.call_id, r.cseq.seq, r.cseq.method, r.from_.tag) == ("o1", 7, "OPTIONS", "p1")
    assert r.to.tag and r.top_via.branch == "z9hG4bKo1"


def test_invite_501():
    invite = OPTIONS.replace(b"OPTIONS sip", b"INVITE sip").replace(b"7 OPTIONS", b"7 INVITE")
    (r,) = Node().receive(invite)
    assert r.status == 501 and "allow" not in r.headers


def test_same_to_tag_for_retransmissions_and_different_for_new_requests():
    node = Node()
    (a,) = node.receive(OPTIONS)
    (b,) = node.receive(OPTIONS)
    (c,) = node.receive(OPTIONS.replace(b"z9hG4bKo1", b"z9hG4bKo2"))
    assert a.to.tag == b.to.tag != c.to.tag
    assert bytes(a) == bytes(b)


def test_existing_to_tag_kept():
    (r,) = Node().receive(OPTIONS.replace(b"To: <sip:rm@192.0.2.1>", b"To: <sip:rm@192.0.2.1>;tag=dlg"))
    assert r.to.tag == "dlg"


def test_ack_and_responses_get_nothing():
    node = Node()
    ack = OPTIONS.replace(b"OPTIONS sip", b"ACK sip").replace(b"7 OPTIONS", b"7 ACK")
    assert node.receive(ack) == []
    assert node.receive(b"SIP/2.0 200 OK\r\n" + OPTIONS.split(b"\r\n", 1)[1]) == []
    assert node.responder.answered == {}


def test_require_unsupported_420():
    (r,) = Node().receive(OPTIONS.replace(b"Max-Forwards", b"Require: 100rel, foo\r\nMax-Forwards"))
    assert r.status == 420 and r.headers.getlist("unsupported") == ["100rel", "foo"]


def test_unknown_scheme_416():
    (r,) = Node().receive(OPTIONS.replace(b"sip:rm@192.0.2.1 SIP/2.0", b"urn:service:sos SIP/2.0"))
    assert r.status == 416


def test_tel_uri_is_acceptable():
    (r,) = Node().receive(OPTIONS.replace(b"sip:rm@192.0.2.1 SIP/2.0", b"tel:+15551234 SIP/2.0"))
    assert r.status == 200


@pytest.mark.parametrize("name", sorted(ANSWER))
def test_corpus_requests(name):
    node = Node()
    answers = node.receive(load(name))
    (r,) = answers
    assert r.status == ANSWER[name]
    if name == "bext01":
        # Require only; Proxy-Require is for proxies (RFC 3261 §8.2.2.3).
        assert r.headers.getlist("unsupported") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    request = parse_datagram(load(name))
    assert r.call_id == request.call_id and r.cseq == request.cseq
    assert [v.branch for v in r.via] == [v.branch for v in request.via]


@pytest.mark.parametrize("name", [n for n in INVALID if n not in RESPONSES])
def test_corpus_invalid_requests(name):
    # The answer echoes the sender's own (maybe malformed) headers: read its status line.
    answers = Node().receive_raw(load(name))
    if name == "test":
        assert answers == []  # no Via: nowhere to answer
        return
    (r,) = answers
    status = 505 if name == "badvers" else 400
    assert r.startswith(b"SIP/2.0 %d " % status) and b"\r\nWarning: 399 ctic " in r


@pytest.mark.parametrize("name", RESPONSES)
def test_corpus_responses_dropped(name):
    assert Node().receive(load(name)) == []
