"""SIP, SIPS, tel and absolute URIs (RFC 3261 §19.1, RFC 3966)."""

from __future__ import annotations

import pytest

from ctic.sip.errors import SIPParseError
from ctic.sip.uri import AbsoluteURI, SIPURI, TelURI, escape, parse_uri, unescape


def test_full_sip_uri():
    u = parse_uri("sip:alice:secret@atlanta.example.com:5070;transport=tcp;lr?subject=hi&priority=urgent")
    assert isinstance(u, SIPURI)
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sip", "alice", "secret", "atlanta.example.com", 5070)
    assert u.params == {"transport": "tcp", "lr": None}
    assert u.transport == "TCP"
    assert u.headers == "subject=hi&priority=urgent"
    assert not u.secure
    assert str(u) == "sip:alice:secret@atlanta.example.com:5070;transport=tcp;lr?subject=hi&priority=urgent"


def test_sips_and_case_of_scheme():
    u = parse_uri("SIPS:bob@biloxi.example.com")
    assert u.scheme == "sips" and u.secure
    assert str(u) == "sips:bob@biloxi.example.com"


def test_host_only_and_ipv4():
    u = parse_uri("sip:192.0.2.1:5060")
    assert (u.user, u.host, u.port) == (None, "192.0.2.1", 5060)
    assert u.hostport == "192.0.2.1:5060"


@pytest.mark.parametrize("text,host,port", [
    ("sip:[2001:db8::1]", "2001:db8::1", None),
    ("sip:alice@[2001:db8::10]:5070;transport=udp", "2001:db8::10", 5070),
    ("sips:[::ffff:192.0.2.1]:5061", "::ffff:192.0.2.1", 5061),
])
def test_ipv6_references(text, host, port):
    u = parse_uri(text)
    assert (u.host, u.port) == (host, port)
    assert u.hostport.startswith("[") and str(u) == text


@pytest.mark.parametrize("text", [
    "sip:[2001:db8::1", "sip:[2001:db8::1]x", "sip:[nothex]", "sip:host:99999", "sip:host:12a",
    "sip:host:", "sip:@host", "sip:", "sip:ho st", "sip:<host>", 'sip:"a"@h', "sip:host;;lr",
    "sip:host;=x", "nocolon", ":nothing", "1abc:foo", "tel:", "foo:", "sip:bad/host",
])
def test_malformed(text):
    with pytest.raises(SIPParseError):
        parse_uri(text)


def test_params_keep_their_case_and_are_looked_up_without_it():
    u = parse_uri("sip:gw.example.com;Transport=UDP;LR;maddr=239.255.255.1;ttl=15;CustomerID=42")
    assert dict(u.params) == {"Transport": "UDP", "LR": None, "maddr": "239.255.255.1", "ttl": "15",
                              "CustomerID": "42"}
    assert str(u) == "sip:gw.example.com;Transport=UDP;LR;maddr=239.255.255.1;ttl=15;CustomerID=42"
    assert u.transport == "UDP" and "lr" in u.params and u.params["customerid"] == "42"
    assert u.params.get("MADDR") == "239.255.255.1" and u.params.get("nope") is None
    u.params["transport"] = "tcp"  # replaces ;Transport, keeping the name as written
    copy = u.copy()
    assert copy.params.pop("lr", "absent") is None and "LR" not in copy.params and "LR" in u.params
    assert str(copy) == "sip:gw.example.com;Transport=tcp;maddr=239.255.255.1;ttl=15;CustomerID=42"
    assert dict(parse_uri("sip:h;a=1;A=2").params) == {"a": "2"}  # a repeated name: the last one wins


def test_tel_uri():
    u = parse_uri("tel:+1-201-555-0123;phone-context=example.com;ext=22")
    assert isinstance(u, TelURI)
    assert u.number == u.user == "+1-201-555-0123"
    assert u.params == {"phone-context": "example.com", "ext": "22"}
    assert str(u) == "tel:+1-201-555-0123;phone-context=example.com;ext=22"
    assert parse_uri("TEL:911").scheme == "tel"


def test_absolute_uri_opaque():
    u = parse_uri("urn:service:sos")
    assert isinstance(u, AbsoluteURI)
    assert (u.scheme, u.opaque, u.user) == ("urn", "service:sos", None)
    assert str(parse_uri("http://www.example.com/x?y=1")) == "http://www.example.com/x?y=1"


def test_equality_and_copy():
    a = parse_uri("sip:alice@example.com;lr")
    b = a.copy()
    assert a == b and a is not b and hash(a) == hash(b)
    b.params["lr"] = "1"
    assert a != b
    assert parse_uri("tel:123") != parse_uri("sip:123@h")


def test_user_part_keeps_semicolons_and_escapes():
    u = parse_uri("sip:user;par=u%40example.net@example.com")
    assert u.user == "user;par=u%40example.net" and u.host == "example.com"
    assert unescape(u.user) == "user;par=u@example.net"


def test_unescape_once_only():
    assert unescape("value%2541") == "value%41"
    assert unescape("a%20b%ZZ") == "a b%ZZ"  # a malformed escape stays as written
    assert unescape("caf%C3%A9") == "café"
    assert unescape("%FF") == "\xff"  # not UTF-8: the octet itself
    assert unescape("plain") == "plain"


def test_escape():
    assert escape("alice") == "alice"
    assert escape("a b@c") == "a%20b%40c"
    assert escape("é") == "%C3%A9"
    assert unescape(escape("sips:user@example.com")) == "sips:user@example.com"


def test_built_uri_renders():
    u = SIPURI("2001:db8::1", user="ivr", port=5060, params={"transport": "tcp"})
    assert str(u) == "sip:ivr@[2001:db8::1]:5060;transport=tcp"
    assert parse_uri(str(u)) == u
