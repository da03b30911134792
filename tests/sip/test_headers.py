"""Via, name-addr, CSeq, parameters, comma splitting and compact forms."""

from __future__ import annotations

import pytest

from ctic.sip.errors import SIPParseError
from ctic.sip.headers import (
    CSeq, NameAddr, Via, header_key, parse_params, quote_display, split_commas,
)
from ctic.sip.message import Headers
from ctic.sip.parser import parse_datagram
from ctic.sip.uri import SIPURI


# --- name-addr ------------------------------------------------------------------

def test_quoted_display_name_with_specials():
    na = NameAddr.parse('"Watson, Thomas <A.>" <sip:t.watson@example.org>;tag=1a')
    assert na.display_name == "Watson, Thomas <A.>"
    assert na.uri.user == "t.watson" and na.tag == "1a"
    assert NameAddr.parse(str(na)) == na


def test_quoted_pairs_in_display_name():
    na = NameAddr.parse(r'"say \"hi\" \\ ok" <sip:a@b>')
    assert na.display_name == 'say "hi" \\ ok'
    assert NameAddr.parse(quote_display(na.display_name) + " <sip:a@b>").display_name == na.display_name


def test_token_display_name_and_no_display():
    na = NameAddr.parse("Bob  Smith <sips:bob@biloxi.example.com>")
    assert na.display_name == "Bob  Smith" and na.uri.secure
    na = NameAddr.parse("<sip:bob@biloxi.example.com>;tag=x")
    assert na.display is None and na.tag == "x"


def test_addr_spec_params_belong_to_header():
    na = NameAddr.parse("sip:alice@atlanta.example.com;tag=88sja8x")
    assert na.tag == "88sja8x" and na.uri.params == {}
    na = NameAddr.parse("<sip:alice@atlanta.example.com;lr>;tag=88sja8x")
    assert na.tag == "88sja8x" and na.uri.params == {"lr": None}
    assert str(na) == "<sip:alice@atlanta.example.com;lr>;tag=88sja8x"


def test_setting_tag_and_uri():
    na = NameAddr.parse("<sip:a@b>")
    na.tag = "t1"
    na.uri = SIPURI("c", "d")
    assert str(na) == "<sip:d@c>;tag=t1"


def test_contact_star():
    assert NameAddr.parse("*", allow_star=True).is_star
    assert str(NameAddr.parse("*", allow_star=True)) == "*"
    with pytest.raises(SIPParseError):
        NameAddr.parse("*")


def test_contact_star_through_parser():
    msg = parse_datagram(
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\n"
        b"CSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n")
    (star,) = msg.contact
    assert star.is_star and star.uri is None


@pytest.mark.parametrize("text", [
    '"unterminated <sip:a@b>', "<sip:a@b", "Bell, Alexander <sip:a@b>", "sip:a@b?x=y",
    "<not a uri>", "<>", "sip:a b@c", "<sip:a@b>;;tag=1", "<sip:a@b> junk",
])
def test_bad_name_addr(text):
    with pytest.raises(SIPParseError):
        NameAddr.parse(text)


def test_name_addr_copy_is_deep():
    a = NameAddr.parse('"A" <sip:a@b;lr>;tag=1')
    b = a.copy()
    b.params["tag"] = "2"
    b.uri.params["x"] = None
    assert a.tag == "1" and "x" not in a.uri.params


# --- Via ------------------------------------------------------------------------

def test_via_received_rport_maddr():
    v = Via.parse("SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.4;maddr=224.2.0.1")
    assert (v.transport, v.host, v.port) == ("UDP", "pc33.atlanta.example.com", 5066)
    assert v.branch == "z9hG4bK776asdhds"
    assert v.rport is True and v.received == "192.0.2.4" and v.maddr == "224.2.0.1"
    assert Via.parse("SIP/2.0/UDP h;rport=5070").rport == 5070
    assert Via.parse("SIP/2.0/UDP h").rport is None


def test_via_lws_everywhere_and_case():
    v = Via.parse("SIP / 2.0 / tcp   host.example.com : 5070 ; branch = z9hG4bKx ; rport")
    assert (v.transport, v.host, v.port, v.branch, v.rport) == ("TCP", "host.example.com", 5070, "z9hG4bKx", True)
    assert str(v) == "SIP/2.0/TCP host.example.com:5070;branch=z9hG4bKx;rport"


def test_via_ipv6():
    v = Via.parse("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKq")
    assert (v.host, v.port) == ("2001:db8::9", 5061)
    assert v.sent_by == "[2001:db8::9]:5061"
    assert Via.parse(str(v)) == v


@pytest.mark.parametrize("text", [
    "SIP/2.0/UDP", "SIP/2.0/UDP host:70000", "SIP/2.0/UDP host:x", "SIP/3.0/UDP host",
    "SIP/2.0/UDP host;;branch=1", "SIP/2.0/UDP ho st", "HTTP/1.1 host", "SIP/2.0/UDP [::1",
    "SIP/2.0/UDP host;=x",
])
def test_bad_via(text):
    with pytest.raises(SIPParseError):
        Via.parse(text)


def test_via_equality_ignores_host_case_only():
    assert Via.parse("SIP/2.0/UDP Host;branch=1") == Via.parse("SIP/2.0/udp host;branch=1")
    assert Via.parse("SIP/2.0/UDP host;branch=1") != Via.parse("SIP/2.0/UDP host;branch=2")


# --- CSeq -----------------------------------------------------------------------

def test_cseq_limits():
    assert CSeq.parse("4294967295 INVITE").seq == 2**32 - 1
    assert CSeq.parse("0 ACK").seq == 0
    for bad in ("4294967296 INVITE", "12345678901 INVITE", "-1 INVITE", "1", "INVITE 1", "1 IN VITE", "x INVITE"):
        with pytest.raises(SIPParseError):
            CSeq.parse(bad)
    c = CSeq.parse("0009\t INVITE")
    assert (c.seq, c.method, str(c)) == (9, "INVITE", "9 INVITE")


# --- parameters and splitting ------------------------------------------------------

def test_parse_params():
    assert parse_params(";a=1;B;c=x") == {"a": "1", "b": None, "c": "x"}
    assert parse_params(' ; a = "x; y, z" ;b') == {"a": '"x; y, z"', "b": None}
    assert parse_params("") == {}
    for bad in ("a=1", ";", ";a;;b", ' ;a="unterminated'):
        with pytest.raises(SIPParseError):
            parse_params(bad)


def test_split_commas_respects_quotes_and_angles():
    assert split_commas('"Doe, John" <sip:a@b>, <sip:c@d;x=1,2>, sip:e@f') == [
        '"Doe, John" <sip:a@b>', "<sip:c@d;x=1,2>", "sip:e@f"]
    assert split_commas(r'"a\", b" <sip:a@b>') == [r'"a\", b" <sip:a@b>']
    assert split_commas("INVITE,ACK ,  BYE") == ["INVITE", "ACK", "BYE"]
    with pytest.raises(SIPParseError):
        split_commas("a,,b")


def _msg(*extra: bytes):
    return parse_datagram(
        b"OPTIONS sip:u@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: c1\r\n"
        b"CSeq: 1 OPTIONS\r\n" + b"".join(e + b"\r\n" for e in extra) + b"Content-Length: 0\r\n\r\n")


def test_comma_lists_split_only_where_the_grammar_allows():
    m = _msg(
        b"Contact: \"Doe, John\" <sip:a@b>, <sip:c@d>",
        b"Date: Sat, 13 Nov 2010 23:29:00 GMT",
        b'WWW-Authenticate: Digest realm="a, b", nonce="x", qop="auth,auth-int"',
        b"Allow: INVITE, ACK", b"Allow: BYE",
        b"Subject: one, two",
        b"Route: <sip:p1;lr>, <sip:p2;lr>",
    )
    assert [c.display_name for c in m.contact] == ["Doe, John", None]
    assert m.headers.getlist("date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert len(m.headers.getlist("www-authenticate")) == 1
    assert m.headers.getlist("allow") == ["INVITE", "ACK", "BYE"]
    assert m.headers.getlist("subject") == ["one, two"]
    assert [r.uri.host for r in m.route] == ["p1", "p2"]


def test_compact_forms_are_the_same_headers():
    raw = (b"OPTIONS sip:u@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
           b"f: <sip:a@example.com>;tag=1\r\nt: <sip:u@example.com>\r\ni: c1\r\n"
           b"CSeq: 1 OPTIONS\r\nm: <sip:a@h>\r\nk: timer\r\nc: text/plain\r\ns: hi\r\nl: 2\r\n\r\nok")
    m = parse_datagram(raw)
    assert (m.call_id, m.from_.tag, m.to.uri.user, m.body) == ("c1", "1", "u", b"ok")
    assert m.headers.get("Supported") == "timer" and m.headers.get("content-type") == "text/plain"
    assert m.headers.get("subject") == "hi" and len(m.contact) == 1
    assert b"\r\nCall-ID: c1\r\n" in bytes(m) and b"\r\nVia: " in bytes(m)
    assert header_key("I") == "call-id" and header_key("Call-Id") == "call-id"


# --- Headers API ------------------------------------------------------------------

def test_headers_api():
    h = Headers()
    h.add("X-Genesys-GVP-Session-ID", "abc;gvp.rm.datanodes=1")
    h.add("x-genesys-gvp-session-id", "def")
    h.add("Route", "first", first=True)
    h.add("Route", "zeroth", first=True)
    assert "X-GENESYS-GVP-SESSION-ID" in h
    assert h["x-genesys-gvp-session-id"] == ["abc;gvp.rm.datanodes=1", "def"]
    assert h.get("route") == "zeroth" and h.getlist("route") == ["zeroth", "first"]
    assert h.get("missing", "dflt") == "dflt" and h.getlist("missing") == []
    h.set("Allow", "INVITE, BYE")
    assert h.getlist("allow") == ["INVITE", "BYE"] and h["allow"] == ["INVITE, BYE"]
    assert [n for n, _ in h.items()] == ["X-Genesys-GVP-Session-ID", "X-Genesys-GVP-Session-ID", "Route", "Route", "Allow"]
    assert h.remove("route") == ["zeroth", "first"] and "route" not in h and h.remove("route") == []
    assert h.keys() == ["x-genesys-gvp-session-id", "allow"]
    c = h.copy()
    assert c == h
    c.add("allow", "ACK")
    assert c != h


def test_headers_equality_by_meaning():
    a, b = Headers(), Headers()
    a.add("Allow", "INVITE, BYE")
    b.add("allow", "INVITE")
    b.add("ALLOW", "BYE")
    assert a == b
    a.add("Subject", "x, y")
    b.add("Subject", "x")
    b.add("Subject", "y")
    assert a != b  # Subject is not a list header


def test_list_headers_split_on_demand_drop_empty_elements():
    """A stray comma in a non-hot list header must not fail its reader (or ==)."""
    from ctic.sip.parser import parse_datagram

    raw = (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
           b"To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nSupported: ,timer,,\r\nRequire:\r\n\r\n")
    msg = parse_datagram(raw)
    assert msg.headers.getlist("supported") == ["timer"]
    assert msg.headers.getlist("require") == []
    assert msg == parse_datagram(raw)
    assert split_commas("a,,b", strict=False) == ["a", "b"]
    with pytest.raises(SIPParseError):
        split_commas("a,,b")


def test_unicode_digits_and_case_folding_are_not_ascii():
    """Only ASCII digits are numbers and only ASCII letters fold to 'SIP' (RFC 3261 §25 is ABNF over ASCII)."""
    from ctic.sip.parser import parse_datagram

    base = ("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
            "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n{extra}\r\n")
    with pytest.raises(SIPParseError):
        parse_datagram(base.format(extra="Max-Forwards: \u0667\u0660\r\n").encode())
    with pytest.raises(SIPParseError):
        parse_datagram(base.replace("SIP/2.0\r\nVia", "\u017fIP/2.0\r\nVia").format(extra="").encode())
    with pytest.raises(SIPParseError):
        parse_datagram(base.replace("UDP h;", "UDP h:\u0665\u0660\u0666\u0660;").format(extra="").encode())
