"""The message model, make_response, the datagram parser's rules and limits, and StreamParser."""

from __future__ import annotations

import pytest

from ctic.sip.errors import SIPParseError
from ctic.sip.headers import CSeq, NameAddr, Via
from ctic.sip.message import Headers, Request, Response, make_response
from ctic.sip.parser import PING, Limits, StreamParser, parse_datagram

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Timestamp: 54\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def test_request_fields():
    m = parse_datagram(INVITE)
    assert (m.method, str(m.uri), m.max_forwards, m.call_id) == ("INVITE", "sip:bob@biloxi.example.com", 70, "a84b4c76e66710")
    assert m.top_via.host == "pc33.atlanta.example.com" and len(m.via) == 2
    assert m.cseq == CSeq(314159, "INVITE")
    assert m.body == b"v=0\n"
    assert m.summary() == "INVITE sip:bob@biloxi.example.com SIP/2.0"


def test_serialise_writes_content_length_from_body():
    m = parse_datagram(INVITE)
    m.body = b"v=0\r\no=x\r\n"
    data = bytes(m)
    assert data.count(b"Content-Length") == 1 and data.endswith(b"Content-Length: 10\r\n\r\nv=0\r\no=x\r\n")
    assert parse_datagram(data).body == m.body


def test_built_request_round_trips():
    h = Headers()
    h.add("Via", Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bK42", "rport": None}))
    h.add("From", NameAddr.parse('"A" <sip:a@example.com>;tag=9'))
    h.add("To", NameAddr.parse("<tel:+15551234>"))
    h.add("Call-ID", "x@y")
    h.add("CSeq", CSeq(1, "INFO"))
    h.add("X-Genesys-GVP-Session-ID", "ABC;gvp.rm.datanodes=1")
    req = Request("INFO", "sip:ivr@[2001:db8::1]:5070;transport=tcp", h, b"\x00\xffbinary")
    again = parse_datagram(bytes(req))
    assert again == req
    assert again.uri.host == "2001:db8::1" and again.to.uri.number == "+15551234"


def test_make_response():
    req = parse_datagram(INVITE)
    r = make_response(req, 486, to_tag="abc")
    assert (r.status, r.reason) == (486, "Busy Here")
    assert [str(v) for v in r.via] == [str(v) for v in req.via]
    assert r.to.tag == "abc" and req.to.tag is None  # the request is untouched
    assert (r.from_, r.call_id, r.cseq) == (req.from_, req.call_id, req.cseq)
    assert "timestamp" not in r.headers and "contact" not in r.headers
    trying = make_response(req, 100, to_tag="abc")
    assert trying.to.tag is None and trying.headers.get("timestamp") == "54"
    assert make_response(req, 299, "Fine").reason == "Fine"
    assert Response(799).reason == "Unknown"
    # An existing To-tag is kept.
    req.to.tag = "old"
    assert make_response(req, 200, to_tag="new").to.tag == "old"
    assert parse_datagram(bytes(r)) == r


def test_bare_lf_line_ends_tolerated():
    m = parse_datagram(INVITE.replace(b"\r\n", b"\n"))
    assert m.call_id == "a84b4c76e66710" and m.body == b"v=0\n"


def test_folded_header_continuation():
    m = parse_datagram(INVITE.replace(b"Timestamp: 54", b"Subject: a\r\n  b\r\n\tc"))
    assert m.headers.get("subject") == "a b c"


@pytest.mark.parametrize("old,new", [
    (b"Call-ID: a84b4c76e66710\r\n", b""),                      # missing mandatory
    (b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"),                # method mismatch
    (b"Max-Forwards: 70", b"Max-Forwards: 256"),
    (b"Max-Forwards: 70", b"Max-Forwards: 7x"),
    (b"Call-ID: a84b4c76e66710", b"Call-ID: a b"),
    (b"Content-Length: 4", b"Content-Length: 5"),                 # longer than the body
    (b"Timestamp: 54", b"Timestamp 54"),                          # no colon
    (b"Timestamp: 54", b"Time stamp: 54"),                        # bad header name
    (b"Timestamp: 54", b"To: <sip:x@y>"),                         # second To
    (b"Timestamp: 54", b"Date: Thu, 21 Feb 2002 13:02:03 PST"),
    (b"\r\n\r\n", b"\r\n"),                                       # no end of headers
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INVITE sip:bob@biloxi.example.com"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INVITE sip:bob@bi loxi.example.com SIP/2.0"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INVITE sip:bob@biloxi.example.com SIP/2.0 "),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INV(TE sip:bob@biloxi.example.com SIP/2.0"),
    (b"INVITE sip:bob@biloxi.example.com SIP/2.0", b"INVITE sip:bob@biloxi.example.com HTTP/1.1"),
])
def test_request_faults_are_400(old, new):
    assert old in INVITE
    with pytest.raises(SIPParseError) as info:
        parse_datagram(INVITE.replace(old, new, 1))
    assert info.value.status == 400


def test_version_505():
    with pytest.raises(SIPParseError) as info:
        parse_datagram(INVITE.replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert (info.value.status, info.value.method, info.value.is_request) == (505, "INVITE", True)
    assert info.value.can_answer()


def test_ack_parse_error_is_never_answered():
    ack = INVITE.replace(b"INVITE sip", b"ACK sip", 1).replace(b"314159 INVITE", b"314159 ACK")
    with pytest.raises(SIPParseError) as info:
        parse_datagram(ack.replace(b"Max-Forwards: 70", b"Max-Forwards: x"))
    assert info.value.method == "ACK" and not info.value.can_answer()


@pytest.mark.parametrize("line", [b"SIP/2.0 20 OK", b"SIP/2.0 700 Big", b"SIP/2.0 2000 OK", b"SIP/2.0"])
def test_bad_status_lines(line):
    resp = b"SIP/2.0 200 OK\r\n" + INVITE.split(b"\r\n", 1)[1]
    with pytest.raises(SIPParseError) as info:
        parse_datagram(resp.replace(b"SIP/2.0 200 OK", line, 1))
    assert info.value.is_request is False and not info.value.can_answer()


def test_status_line_without_reason_is_accepted():
    # Strictly "SIP/2.0 200 " needs the SP; a missing one is harmless, so accepted.
    resp = b"SIP/2.0 200\r\n" + INVITE.split(b"\r\n", 1)[1]
    r = parse_datagram(resp)
    assert (r.status, r.reason) == (200, "")
    assert parse_datagram(bytes(r)) == r


# --- limits -------------------------------------------------------------------------

def test_max_message_size_is_513():
    limits = Limits(max_message_size=len(INVITE) - 1)
    with pytest.raises(SIPParseError) as info:
        parse_datagram(INVITE, limits)
    assert info.value.status == 513 and info.value.can_answer()
    assert info.value.raw_headers["call-id"] == ["a84b4c76e66710"]
    assert parse_datagram(INVITE, Limits(max_message_size=len(INVITE)))


def test_max_headers_is_400():
    count = INVITE.split(b"\r\n\r\n")[0].count(b"\r\n")  # header lines
    with pytest.raises(SIPParseError) as info:
        parse_datagram(INVITE, Limits(max_headers=count - 1))
    assert info.value.status == 400 and info.value.can_answer()
    assert parse_datagram(INVITE, Limits(max_headers=count))


def test_stream_limits_are_fatal():
    with pytest.raises(SIPParseError) as info:
        StreamParser(Limits(max_message_size=100)).feed(INVITE)
    assert info.value.fatal and info.value.status == 513
    parser = StreamParser(Limits(max_message_size=600))
    with pytest.raises(SIPParseError) as info:
        parser.feed(b"INVITE sip:a@b SIP/2.0\r\nX: " + b"y" * 700)  # endless header block
    assert info.value.fatal and info.value.status == 513
    events = StreamParser(Limits(max_headers=3)).feed(INVITE)
    assert len(events) == 1 and isinstance(events[0], SIPParseError) and not events[0].fatal


# --- StreamParser -------------------------------------------------------------------

def test_stream_partial_reads():
    parser = StreamParser()
    split = INVITE.index(b"\r\n\r\n") + 2
    assert parser.feed(INVITE[:split]) == []
    assert parser.feed(INVITE[split:-2]) == []
    assert parser.buffered == len(INVITE) - 2
    (msg,) = parser.feed(INVITE[-2:])
    assert msg == parse_datagram(INVITE) and parser.buffered == 0


def test_stream_several_messages_in_one_read():
    bye = INVITE.replace(b"INVITE sip", b"BYE sip").replace(b"314159 INVITE", b"314160 BYE")
    events = StreamParser().feed(INVITE + b"\r\n\r\n" + bye + INVITE[:30])
    assert [getattr(e, "method", e) for e in events] == ["INVITE", PING, "BYE"]


def test_stream_keepalives():
    parser = StreamParser()
    assert parser.feed(b"\r\n\r\n") == [PING]
    assert parser.feed(b"\r\n") == []           # maybe half a ping: wait
    assert parser.feed(b"\r\n") == [PING]
    assert parser.feed(b"\r\n") == []
    (msg,) = parser.feed(INVITE)                # a lone CRLF (pong) before a message is skipped
    assert msg.method == "INVITE" and parser.buffered == 0
    assert parser.feed(b"\r\n\r\n\r\n\r\n") == [PING, PING]


def test_stream_malformed_but_framed_message_keeps_the_stream():
    bad = INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE")
    events = StreamParser().feed(bad + INVITE)
    assert isinstance(events[0], SIPParseError) and not events[0].fatal and events[0].can_answer()
    assert events[1].method == "INVITE"


def test_stream_fatal_keeps_what_was_framed():
    with pytest.raises(SIPParseError) as info:
        StreamParser().feed(INVITE + INVITE.replace(b"Content-Length: 4", b"Content-Length: -4"))
    assert info.value.fatal
    assert [m.method for m in info.value.framed] == ["INVITE"]


def test_stream_requires_content_length():
    with pytest.raises(SIPParseError) as info:
        StreamParser().feed(INVITE.replace(b"Content-Length: 4\r\n", b""))
    assert info.value.fatal and info.value.can_answer()


def test_stream_compact_content_length():
    (msg,) = StreamParser().feed(INVITE.replace(b"Content-Length: 4", b"l : 4"))
    assert msg.body == b"v=0\n"


@pytest.mark.parametrize("method", ["INVITE", "ACK"])
def test_request_uri_with_an_empty_user_is_a_400_at_parse_time(method):
    """sip::pw@host has a password and no user: rejected by the parser (C and Python alike),
    never later when the URI is first read (which left a proxy answering 500, or an ACK unanswered)."""
    raw = (f"{method} sip::pw@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1\r\nFrom: <sip:a@b>;tag=1\r\n"
           f"To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\r\n").encode()
    with pytest.raises(SIPParseError) as e:
        parse_datagram(raw)
    assert e.value.status == 400 and e.value.method == method


# A byte the URI grammar rejects inside a name-addr URI must be a 400 at the
# first parse, in the C and the Python path alike: a later copy or proxy must
# never be the first to find it (it leaked an RM session and an MCP slot).
BAD_URI_BYTES = [b"\xff", b"\x00", b"\x01", b"\x7f"]


@pytest.mark.parametrize("bad", BAD_URI_BYTES)
@pytest.mark.parametrize("header", [b"From", b"Contact", b"To"])
@pytest.mark.parametrize("pure", [False, True])
def test_bad_byte_in_name_addr_uri_is_400(monkeypatch, bad, header, pure):
    from ctic.sip import parser
    if pure:
        monkeypatch.setattr(parser, "_accel", None)
    line = {b"From": b'From: "Fuzz" <sip:4155550101@127.0.0.1%s:47001>;tag=abc' % bad,
            b"To": b"To: <sip:bob@biloxi%s.example.com>" % bad,
            b"Contact": b"Contact: <sip:alice@pc33.atlanta.example.com:50%s60>" % bad}[header]
    old = {b"From": b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
           b"To": b"To: Bob <sip:bob@biloxi.example.com>",
           b"Contact": b"Contact: <sip:alice@pc33.atlanta.example.com>"}[header]
    with pytest.raises(SIPParseError) as info:
        parse_datagram(INVITE.replace(old, line, 1))
    assert info.value.status == 400


@pytest.mark.parametrize("bad", BAD_URI_BYTES + [b"\xcc"])
@pytest.mark.parametrize("pure", [False, True])
def test_bad_byte_in_request_uri_host_is_400_at_the_first_parse(monkeypatch, bad, pure):
    """
    The Request-URI too.  A fuzz run found one (from RFC 4475's semiuri)
    that the start-line check let through and the proxy's first look at
    the URI rejected, as a TU failure, after the transaction existed.
    """
    from ctic.sip import parser
    if pure:
        monkeypatch.setattr(parser, "_accel", None)
    start = INVITE.split(b"\r\n", 1)[0]
    method, _, version = start.split(b" ")
    bad_start = b" ".join((method, b"sip:user;par=u%40example.net@" + bad + b"example.com", version))
    with pytest.raises(SIPParseError) as info:
        parse_datagram(INVITE.replace(start, bad_start, 1))
    assert info.value.status == 400


def test_copy_does_not_reparse(monkeypatch):
    m = parse_datagram(INVITE)
    from ctic.sip import uri
    monkeypatch.setattr(uri, "parse_uri", lambda text: pytest.fail("re-parsed " + text))
    c = m.copy()
    assert bytes(c) == bytes(m)
