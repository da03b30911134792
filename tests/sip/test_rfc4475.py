"""
RFC 4475 torture messages through the datagram and stream parsers: valid
ones parse and survive serialise→parse with the same meaning, invalid ones
raise SIPParseError with the right status and enough to answer.
"""

from __future__ import annotations

import re

import pytest

from ctic.sip.errors import SIPParseError
from ctic.sip.message import Request, Response
from ctic.sip.parser import PING, StreamParser, parse_datagram
from ctic.sip.transport import error_response_bytes
from ctic.sip.uri import SIPURI, unescape
from tests.sip.corpus import INCOMPLETE, INVALID, RESPONSES, SEMANTIC, VALID, load


GOOD = VALID + SEMANTIC


def parse(name):
    return parse_datagram(load(name))


@pytest.mark.parametrize("name", GOOD)
def test_good_message_parses_and_round_trips(name):
    msg = parse(name)
    assert isinstance(msg, Response if name in RESPONSES else Request)
    again = parse_datagram(bytes(msg))
    assert again == msg
    # And the canonical rendering is a fixed point.
    assert bytes(parse_datagram(bytes(again))) == bytes(again)


def test_meaning_equality_is_not_trivial():
    a, b = parse("cparam01"), parse("cparam02")
    assert a != b
    c = parse("wsinv")
    c.via[0].params["branch"] = "other"
    assert c != parse("wsinv")
    d = parse("mpart01")
    d.body = d.body[:-1]
    assert d != parse("mpart01")


@pytest.mark.parametrize("name", INVALID)
def test_invalid_message_is_rejected(name):
    with pytest.raises(SIPParseError) as info:
        parse(name)
    err = info.value
    assert err.status == (505 if name == "badvers" else 400)
    assert err.reason
    if name in RESPONSES:
        assert err.is_request is False
        assert not err.can_answer()
        return
    assert err.is_request is True
    if name in INCOMPLETE:
        assert sorted(err.raw_headers) == sorted(INCOMPLETE[name])
        return
    assert sorted(err.raw_headers) == ["call-id", "cseq", "from", "to", "via"]
    assert err.can_answer()
    text = error_response_bytes(err).decode("utf-8", "surrogateescape")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0].startswith(f"SIP/2.0 {err.status} ") and body == ""
    # Every Via echoed as written, in order (§8.2.6.2), and one of each of the rest.
    assert [l[5:] for l in lines if l.startswith("Via: ")] == err.raw_headers["via"]
    assert f"Call-ID: {err.raw_headers['call-id'][0]}" in lines
    assert f"CSeq: {err.raw_headers['cseq'][0]}" in lines
    (to,) = [l for l in lines if l.startswith("To: ")]
    assert "tag=" in to
    assert any(l.startswith('Warning: 399 ctic "') for l in lines)
    # Where the fault is not in Via/From/To/Call-ID/CSeq, the answer is a
    # well-formed response (elsewhere it echoes the sender's bad text as is).
    if name in ("clerr", "ncl", "ltgtruri", "lwsruri", "lwsstart", "trws", "escruri", "baddate",
                "regbadct", "mismatch01", "mismatch02", "multi01", "mcl01"):
        answer = parse_datagram(error_response_bytes(err))
        assert answer.status == err.status and answer.to.tag


def test_test_dat_cannot_be_answered():
    # php-sip's extra fixture has no Via: nowhere to send an answer.
    with pytest.raises(SIPParseError) as info:
        parse("test")
    assert not info.value.can_answer()


# --- specific meanings ----------------------------------------------------------


def test_wsinv_folding_and_lws():
    m = parse("wsinv")
    assert m.method == "INVITE"
    assert str(m.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    # One folded Via, then "v:" holding two comma-joined values: three in all.
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.to.tag == "1918181833n"  # "tag    = 1918181833n"
    assert m.from_.tag == "98asjd8"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    assert m.max_forwards == 68
    assert m.headers.get("subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = m.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    (route,) = m.route
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert len(m.body) == 150


def test_esc01_escapes_kept_and_decoded_once():
    m = parse("esc01")
    assert m.uri.user == "sips%3Auser%40example.com"
    assert unescape(m.uri.user) == "sips:user@example.com"
    assert unescape(m.to.uri.user) == "user"
    assert unescape(m.from_.uri.user) == "I have spaces"
    (contact,) = m.contact
    assert unescape(contact.uri.params["n%61me"]) == "value%41"  # never recursive


def test_esc02_escaped_header_name_is_not_contact():
    m = parse("esc02")
    assert m.method == "RE%47IST%45R"
    assert [c.uri.host for c in m.contact] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") is not None


def test_escnull_two_contacts_and_full_aor():
    m = parse("escnull")
    assert [c.uri.user for c in m.contact] == ["%00", "%00%00"]
    assert unescape(m.to.uri.user) == "null-\x00-null"


def test_semiuri_user_with_semicolon():
    m = parse("semiuri")
    assert m.uri.user == "user;par=u%40example.net"
    assert m.uri.host == "example.com"
    assert m.uri.params == {}


def test_transports():
    m = parse("transports")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [v.host for v in m.via] == [f"t{i}.example.com" for i in range(1, 6)]


def test_mpart01_binary_body_exact():
    data = load("mpart01")
    m = parse_datagram(data)
    declared = int(re.search(rb"Content-Length: *([0-9]+)", data).group(1))
    assert len(m.body) == declared
    assert m.body == data[data.index(b"\r\n\r\n") + 4:][:declared]
    assert b"\x00" in m.body


def test_dblreq_trailing_octets_ignored_on_udp():
    m = parse("dblreq")
    assert m.method == "REGISTER" and m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_cparam01_contact_param_vs_cparam02_uri_param():
    c1 = parse("cparam01").contact[0]
    c2 = parse("cparam02").contact[0]
    assert c1.params == {"unknownparam": None} and c1.uri.params == {}
    assert c2.params == {} and c2.uri.params == {"unknownparam": None}
    assert c1.uri == SIPURI("gw1.example.net", "+19725552222")


def test_intmeth_method_and_uri():
    m = parse("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq.method == m.method
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.call_id.startswith("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")


def test_lwsdisp_token_display_without_space():
    m = parse("lwsdisp")
    assert m.from_.display_name == "caller"
    assert str(m.from_.uri) == "sip:caller@example.com"


def test_reason_phrases():
    assert parse("unreason").reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    r = parse("noreason")
    assert (r.status, r.reason) == (100, "")


def test_inv2543_rfc2543_syntax():
    m = parse("inv2543")
    assert m.via[0].branch is None and m.from_.tag is None
    assert m.max_forwards is None
    assert m.body.startswith(b"v=0")


def test_regescrt_uri_header_kept():
    (c,) = parse("regescrt").contact
    assert c.uri.headers == "Route=%3Csip:sip.example.com%3E"


def test_longreq_many_vias():
    m = parse("longreq")
    assert len(m.via) == 34
    assert len(m.to.display) > 100


# --- stream framing ---------------------------------------------------------------


def feed_in_chunks(data, size):
    """(events, fatal error or None, bytes left buffered)."""
    parser = StreamParser()
    events = []
    for i in range(0, len(data), size):
        try:
            events += parser.feed(data[i:i + size])
        except SIPParseError as err:
            return events + err.framed, err, parser.buffered
    return events, None, parser.buffered


def kinds(events):
    return [type(e).__name__ if e is not PING else "PING" for e in events]


# Over a stream, Content-Length is mandatory (RFC 3261 §18.3): inv2543 has
# none; dblreq frames both requests, then the trailing octets are no message.
STREAM_FATAL = {"ncl", "mcl01", "inv2543", "dblreq"}


@pytest.mark.parametrize("size", [1, 7, None])
@pytest.mark.parametrize("name", GOOD + INVALID)
def test_stream_framing(name, size):
    data = load(name)
    events, fatal, left = feed_in_chunks(data, size or len(data))
    if name == "clerr":
        # Content-Length larger than what arrived: wait for more.
        assert (events, fatal) == ([], None) and left == len(data)
        return
    assert (fatal is not None) == (name in STREAM_FATAL)
    if fatal is not None:
        assert fatal.fatal
    if name == "dblreq":
        assert [e.method for e in events] == ["REGISTER", "INVITE"]
        assert events[0] == parse("dblreq")
        return
    if name in STREAM_FATAL:
        assert events == []
        return
    assert left == 0
    (event,) = events
    if name in INVALID:
        assert isinstance(event, SIPParseError) and not event.fatal
        assert event.status == (505 if name == "badvers" else 400)
    else:
        assert event == parse(name)


def test_whole_corpus_as_one_stream():
    """Every frameable message back to back, then read in odd chunk sizes."""
    names = [n for n in GOOD + INVALID if n not in STREAM_FATAL and n != "clerr"]
    stream = b"".join(load(n) for n in names)
    for size in (1, 13, 1000, len(stream)):
        events, fatal, left = feed_in_chunks(stream, size)
        assert fatal is None and left == 0
        assert len(events) == len(names)
        for name, event in zip(names, events):
            assert isinstance(event, SIPParseError) == (name in INVALID), name
