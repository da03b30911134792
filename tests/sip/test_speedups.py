"""
The C fast path (ctic.sip._speedups) against the pure-Python parser: the
whole RFC 4475 corpus, generated messages, header soups aimed at the C fast
paths' edges, and byte mutations/truncations of real messages, through the
datagram parser and StreamParser framing.  Both must give the same message
(slot by slot, not only by meaning) or the same SIPParseError.  Then the
codec's own test files run again with CTIC_PURE_PYTHON=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctic.sip import parser
from ctic.sip.errors import SIPParseError
from ctic.sip.headers import CSeq, NameAddr, Via
from ctic.sip.message import Request
from ctic.sip.parser import PING, Limits, StreamParser
from tests.sip.corpus import SEMANTIC, VALID, every_name, load
from tests.sip.test_properties import mutated, requests, responses
from tests.support import in_ci

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
C = parser._accel

# In CI the accelerator must be built (a compiler is part of the install), so
# a missing one fails there instead of skipping the differential tests.
needs_c = pytest.mark.skipif(
    C is None and (not in_ci() or os.environ.get("CTIC_PURE_PYTHON")),
    reason="ctic.sip._speedups is not built (or CTIC_PURE_PYTHON is set): nothing to compare")
pytestmark = needs_c

INVITE = (
    b"INVITE sip:8005551212@mcp1.example.com:5070;gvp-tenant-id=Environment;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-524287-1;rport\r\n"
    b"v: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK776asdhds;received=10.0.0.2, SIP/2.0/UDP [::1]:5060;branch=z9hG4bK2\r\n"
    b"Max-Forwards: 69\r\n"
    b"Record-Route: <sip:10.0.0.5:5060;lr>, <sip:p2.example.com;lr>\r\n"
    b"m: Alice <sip:4085551234@10.0.0.2:5060;transport=udp>;expires=60\r\n"
    b'To: "IVR \\"x\\"" <sip:8005551212@gvp.example.com>\r\n'
    b"f: sip:4085551234@10.0.0.2:5060 ;tag=1928301774\r\n"
    b"i: a84b4c76e66710@10.0.0.2\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Supported: timer,\r\n replaces\r\n"
    b"X-Genesys-GVP-Session-ID: 7A0B6C3D;gvp.rm.datanodes=1\r\n"
    b"Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 4\r\n\r\nv=0\nxx"
)


# --- comparing results slot by slot ------------------------------------------------


def value_state(v):
    """Everything observable about a header value, with its type."""
    if isinstance(v, Via):
        return ("Via", v.transport, v.host, v.port, list(v.params.items()))
    if isinstance(v, NameAddr):
        uri = v._uri if v._uri is None else (type(v._uri).__name__, str(v._uri))
        return ("NameAddr", v.display, uri, v._uri_text, list(v.params.items()))
    if isinstance(v, CSeq):
        return ("CSeq", v.seq, v.method)
    return (type(v).__name__, v)


def message_state(m):
    h = m.headers
    state = [type(m).__name__, m.start_line(), m.body, type(m.body).__name__, m.source, dict(h._names),
             [(k, [value_state(v) for v in vs]) for k, vs in h._d.items()]]
    if isinstance(m, Request):
        state += [m.method, type(m.uri).__name__, str(m.uri)]  # parse_message has parsed it already
    else:
        state += [m.status, m.reason]
    return state


def error_state(e):
    return ("SIPParseError", e.reason, e.status, e.is_request, e.method, e.raw_headers, e.fatal)


def outcome(fn, *args, **kw):
    try:
        msg = fn(*args, **kw)
    except SIPParseError as e:
        return error_state(e), None
    return message_state(msg), msg


def _comparable(msg) -> bool:
    """Message.__eq__ splits list headers lazily, and raises on one with an empty element ("k: ,")."""
    try:
        return msg == msg
    except SIPParseError:
        return False


def assert_same_datagram(data: bytes, limits: Limits = parser.DEFAULT_LIMITS, exact_body: bool = False):
    """parse_message with the C fast path and the pure-Python one agree on data."""
    fast, fast_msg = outcome(parser.parse_message, data, limits, exact_body=exact_body)
    slow, slow_msg = outcome(parser._parse_message_py, data, limits, exact_body=exact_body)
    assert fast == slow
    if slow_msg is not None and _comparable(slow_msg):
        assert fast_msg == slow_msg
    raw = C(data, limits.max_message_size, limits.max_headers, exact_body)
    if raw is not None:
        # Whatever C builds on its own is exactly what Python builds.
        assert slow_msg is not None and message_state(raw) == slow
    return raw is not None


def stream_events(data: bytes, chunk: int, accel):
    """Every event and the fatal error (if any) of feeding data in chunks, with parse_message in one mode."""
    saved = parser._accel
    parser._accel = accel
    try:
        sp = StreamParser()
        out = []
        for i in range(0, max(len(data), 1), chunk):
            try:
                events = sp.feed(data[i:i + chunk])
            except SIPParseError as e:
                out.append(("fatal", error_state(e), [event_state(x) for x in e.framed]))
                break
            out.extend(event_state(x) for x in events)
        out.append(("buffered", sp.buffered))
        return out
    finally:
        parser._accel = saved


def event_state(event):
    if event is PING:
        return "PING"
    if isinstance(event, SIPParseError):
        return error_state(event)
    return message_state(event)


def assert_same_stream(data: bytes, chunk: int = 1 << 20):
    assert stream_events(data, chunk, C) == stream_events(data, chunk, None)


# --- the corpus and hand-picked messages ----------------------------------------------------


@pytest.mark.parametrize("name", every_name())
def test_corpus_message_same_in_both(name):
    data = load(name)
    assert_same_datagram(data)
    assert_same_datagram(data, exact_body=True)
    assert_same_stream(data)
    assert_same_stream(data + b"\r\n\r\n" + data, chunk=37)


def test_c_path_builds_the_valid_corpus_itself():
    # The comparison above is only worth something if C does the work.
    built = [n for n in VALID + SEMANTIC if C(load(n), 65535, 128, False) is not None]
    assert built == list(VALID + SEMANTIC)


def test_mixed_forms_built_by_c():
    assert assert_same_datagram(INVITE)
    msg = parser.parse_message(INVITE)
    assert [v.host for v in msg.via] == ["10.0.0.5", "10.0.0.2", "::1"]  # the IPv6 one by Via.parse
    assert msg.to.display == '"IVR \\"x\\""' and msg.from_.tag == "1928301774"
    assert msg.headers.get("Supported") == "timer, replaces" and msg.body == b"v=0\n"


@pytest.mark.parametrize("data", [
    INVITE.replace(b"l: 4", b"l: 5"),                         # body too short for Content-Length
    INVITE.replace(b"l: 4", b"l: 4\r\nContent-Length: 3"),   # conflicting Content-Length
    INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"),
    INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 4294967296 INVITE"),
    INVITE.replace(b"i: a84b", b"i: a 84b"),
    INVITE.replace(b"Max-Forwards: 69", b"Max-Forwards: 256"),
    INVITE.replace(b"Max-Forwards: 69", b"Max-Forwards: \xd9\xa9"),  # Arabic-Indic 9: isdigit()
    INVITE.replace(b"Date: Sat", b"Date: Sat").replace(b"GMT", b"PST"),
    INVITE.replace(b"i: a84b4c76e66710@10.0.0.2\r\n", b""),
    INVITE.replace(b"To:", b"To :").replace(b"f:", b"t:"),      # two To
    INVITE.replace(b"Max-Forwards", b"Max Forwards"),
    INVITE.replace(b"Max-Forwards", b"Max-Forwards\xe2\x80\xa8"),
    INVITE.replace(b"\r\n\r\n", b"\n\n"),
    INVITE.replace(b"\r\n", b"\n"),
    INVITE.replace(b"INVITE sip:", b"INVITE  sip:"),
    INVITE.replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1),
    INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1),
    INVITE.replace(b"SIP/2.0\r\n", b"\xc5\xbfIP/2.0\r\n", 1),  # long s: upper() is S
    INVITE.replace(b":5070;", b":65000;"),
    INVITE.replace(b":5070;", b":65536;"),
    INVITE.replace(b":5070;", b":05070;"),
    INVITE.replace(b"sip:8005551212@mcp1", b"tel:+18005551212;x=sip:8005551212@mcp1"),
    INVITE.replace(b"user=phone", b"user=phone?subject=x"),
    INVITE.replace(b"X-Genesys-GVP-Session-ID: ", b"X-Genesys-GVP-Session-ID:\xc2\xa0"),
    INVITE.replace(b"X-Genesys-GVP-Session-ID: ", b"X-Genesys-GVP-Session-ID: \xc3\xa9\xff"),
    INVITE.replace(b"Via: SIP/2.0/UDP 10.0.0.5:5060", b"Via: SIP/2.0/UDP 10.0.0.5:99999"),
    INVITE.replace(b";rport", b";;rport"),
    INVITE.replace(b";rport", b";RPort;Branch=X"),
    INVITE.replace(b"<sip:10.0.0.5:5060;lr>,", b"<sip:10.0.0.5:5060;lr>,,"),
    INVITE.replace(b"Alice <sip", b"Al\"ice <sip"),
    INVITE.replace(b";expires=60", b" ; expires = 60"),
    INVITE.replace(b";expires=60", b';expires="6 0"'),
    INVITE.replace(b"m: Alice <sip:4085551234@10.0.0.2:5060;transport=udp>;expires=60", b"m: *"),
    INVITE.replace(b"Record-Route: <sip:10.0.0.5:5060;lr>", b"Record-Route: *"),
    INVITE.replace(b"Content-Type", b"Content-Type\x00"),
    INVITE.replace(b"v=0", b"v=\x00"),
    b"SIP/2.0 200 OK\r\n" + INVITE.split(b"\r\n", 1)[1],
    b"SIP/2.0 200\r\n" + INVITE.split(b"\r\n", 1)[1],
    b"SIP/2.0 099 Low\r\n" + INVITE.split(b"\r\n", 1)[1],
    b"\r\n\r\n",
    b"",
])
def test_edge_cases_same_in_both(data):
    assert_same_datagram(data)
    assert_same_datagram(data, exact_body=True)
    assert_same_stream(data, chunk=11)


def test_limits_same_in_both():
    for limits in (Limits(max_message_size=len(INVITE) - 1), Limits(max_headers=13), Limits(max_headers=14)):
        assert_same_datagram(INVITE, limits)


def test_only_bytes_take_the_c_path():
    assert C(bytearray(INVITE), 65535, 128, False) is None
    assert_same_datagram(bytearray(INVITE))


# --- generated messages -------------------------------------------------------------------

SEEDS = [load(n) for n in VALID + SEMANTIC]


@SETTINGS
@given(st.one_of(requests(), responses()))
def test_generated_messages_same_in_both(msg):
    data = bytes(msg)
    assert assert_same_datagram(data)
    assert_same_stream(data)


# Header soups: names and values drawn from the pieces the fast paths branch on.
PIECES = [
    "sip:", "sips:", "tel:", "<", ">", '"', "\\", ";", "=", ",", " ", "\t", "@", ":", "[", "]", "?",
    "*", "a", "Bob", "host.example.com", "10.0.0.1", "5060", "65535", "99999", "tag=x", "branch=z9hG4bK1",
    "SIP/2.0/", "SIP/2.0/UDP ", "UDP", "\x00", "\u00e9", "\udcff", "\u00a0", "\r\n ", "%41", "GMT", "0", "255",
]
NAMES = ["Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Max-Forwards", "Content-Length", "l",
         "Contact", "m", "Route", "Record-Route", "Date", "Subject", "s", "X-Custom", "x-custom", "VIA ", "k"]
soup_value = st.lists(st.sampled_from(PIECES), max_size=10).map("".join)


@st.composite
def soups(draw):
    base = draw(st.sampled_from(SEEDS))
    head, sep, body = base.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for _ in range(draw(st.integers(1, 4))):
        line = (draw(st.sampled_from(NAMES)) + ":" + draw(soup_value)).encode("utf-8", "surrogateescape")
        pos = draw(st.integers(1, len(lines)))
        if draw(st.booleans()) and pos < len(lines):
            lines[pos] = line
        else:
            lines.insert(pos, line)
    return b"\r\n".join(lines) + sep + body


@SETTINGS
@given(soups())
def test_header_soups_same_in_both(data):
    assert_same_datagram(data)
    assert_same_stream(data)


@SETTINGS
@given(mutated(), st.integers(1, 64))
def test_mutations_same_in_both(data, chunk):
    assert_same_datagram(data)
    assert_same_stream(data, chunk)


@SETTINGS
@given(st.sampled_from(SEEDS), st.data())
def test_truncations_same_in_both(seed, data):
    cut = data.draw(st.integers(0, len(seed)))
    assert_same_datagram(seed[:cut])
    assert_same_stream(seed[:cut], data.draw(st.integers(1, 64)))


# --- the codec's own tests without the accelerator ------------------------------------------


@pytest.mark.skipif(os.environ.get("CTIC_PURE_PYTHON"), reason="already the pure-Python run")
def test_codec_suite_passes_in_pure_python():
    files = ["test_parser.py", "test_rfc4475.py", "test_headers.py", "test_uri.py", "test_properties.py",
             "test_transport.py", "test_responder.py", "test_transaction.py"]
    env = dict(os.environ, CTIC_PURE_PYTHON="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         *[str(ROOT / "tests" / "sip" / f) for f in files]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1]


def test_pure_python_mode_is_honoured():
    env = dict(os.environ, CTIC_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", "from ctic.sip import parser; print(parser.IMPLEMENTATION)"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "python"
    assert parser.IMPLEMENTATION == "c"
