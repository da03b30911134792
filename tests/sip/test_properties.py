"""
Property tests: generated messages survive serialise→parse, and mutated or
truncated real messages raise nothing but SIPParseError (datagram and stream).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctic.sip.errors import SIPParseError
from ctic.sip.headers import COMPACT, LIST_HEADERS, CSeq, NameAddr, Via, header_key, quote_display
from ctic.sip.message import Headers, Request, Response
from ctic.sip.parser import StreamParser, parse_datagram
from ctic.sip.uri import SIPURI, AbsoluteURI, TelURI
from tests.sip.corpus import SEMANTIC, VALID, load

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
token = st.text(TOKEN_CHARS, min_size=1, max_size=12)
label = st.text(ALNUM, min_size=1, max_size=10)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(lambda g: ":".join(f"{x:x}" for x in g))
host = st.one_of(hostname, ipv4, ipv6)
port = st.one_of(st.none(), st.integers(1, 65535))
escaped = st.sampled_from(["%20", "%40", "%00", "%3A", "%25"])
user = st.lists(st.one_of(st.text(ALNUM + "-_.!~*'()&=+$,;?/", min_size=1, max_size=5), escaped),
                min_size=1, max_size=4).map("".join)
param_value = st.one_of(st.none(), st.text(ALNUM + "-_.!~*'()[]/:&+$", min_size=1, max_size=8))
uri_params = st.dictionaries(st.text(ALNUM + "-_.", min_size=1, max_size=8), param_value, max_size=3)
uri_headers = st.one_of(st.none(), st.lists(st.tuples(label, label).map("=".join), min_size=1, max_size=2).map("&".join))

sip_uri = st.builds(
    SIPURI, host=host, user=st.one_of(st.none(), user), port=port, params=uri_params,
    headers=st.just(None), password=st.one_of(st.none(), label), scheme=st.sampled_from(["sip", "sips"]),
)
tel_uri = st.builds(TelURI, st.text("0123456789-.()", min_size=1, max_size=12).map(lambda s: "+" + s), uri_params)
absolute_uri = st.builds(AbsoluteURI, st.sampled_from(["urn", "http", "im", "mailto"]),
                         st.text(ALNUM + ":/.@-_?=&", min_size=1, max_size=20).filter(lambda s: s[0] != "/" or True))
any_uri = st.one_of(sip_uri, sip_uri, tel_uri, absolute_uri)

header_param_value = st.one_of(
    st.none(), token, st.text(ALNUM + " ,;:<>@=", max_size=10).map(quote_display))
header_params = st.dictionaries(st.text(ALNUM + "-", min_size=1, max_size=8), header_param_value, max_size=3)
display = st.one_of(
    st.none(),
    st.lists(token, min_size=1, max_size=3).map(" ".join),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(quote_display),
)


@st.composite
def name_addrs(draw, uris=any_uri):
    uri = draw(uris)
    uri_copy = uri
    if isinstance(uri, SIPURI) and draw(st.booleans()):
        uri_copy = SIPURI(uri.host, uri.user, uri.port, uri.params, draw(uri_headers), uri.password, uri.scheme)
    return NameAddr(uri_copy, draw(display), draw(header_params))


vias = st.builds(
    Via, st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]), host, port,
    st.dictionaries(st.sampled_from(["branch", "received", "rport", "maddr", "ttl", "x-y"]),
                    st.one_of(st.none(), token), max_size=4),
)

# Unknown header names that cannot collide with a hot, compact or list header.
extra_name = token.filter(lambda n: header_key(n) not in COMPACT.values() and n.lower() not in COMPACT
                          and header_key(n) not in LIST_HEADERS and header_key(n) not in ("date", "cseq", "max-forwards"))
extra_value = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"),
                      max_size=30).map(str.strip)
body = st.binary(max_size=200)


@st.composite
def headers(draw, method):
    h = Headers()
    for v in draw(st.lists(vias, min_size=1, max_size=3)):
        h.add("Via", v)
    h.add("From", draw(name_addrs()))
    h.add("To", draw(name_addrs()))
    h.add("Call-ID", draw(st.text(TOKEN_CHARS + "@:()<>\\\"/[]?{}", min_size=1, max_size=20)))
    h.add("CSeq", CSeq(draw(st.integers(0, 2**32 - 1)), method))
    if draw(st.booleans()):
        h.add("Max-Forwards", draw(st.integers(0, 255)))
    for key in ("contact", "route", "record-route"):
        for na in draw(st.lists(name_addrs(sip_uri), max_size=2)):
            h.add(key, na)
    for name, value in draw(st.lists(st.tuples(extra_name, extra_value), max_size=4)):
        h.add(name, value)
    return h


@st.composite
def requests(draw):
    method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "OPTIONS", "BYE", "INFO"]), token))
    return Request(method, draw(any_uri), draw(headers(method)), draw(body))


@st.composite
def responses(draw):
    method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS"]))
    reason = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)).strip()
    return Response(draw(st.integers(100, 699)), reason, draw(headers(method)), draw(body))


@SETTINGS
@given(st.one_of(requests(), responses()))
def test_generated_messages_round_trip(msg):
    data = bytes(msg)
    again = parse_datagram(data)
    assert again == msg
    assert again.body == msg.body
    assert bytes(again) == data
    (streamed,) = StreamParser().feed(data)
    assert streamed == msg


# --- mutations -------------------------------------------------------------------------

SEEDS = [load(n) for n in VALID + SEMANTIC]


def check_survives(data: bytes, chunk: int) -> None:
    try:
        msg = parse_datagram(data)
    except SIPParseError:
        pass
    else:
        # Whatever is accepted must serialise to something that means the same.
        assert parse_datagram(bytes(msg)) == msg
    parser = StreamParser()
    for i in range(0, len(data), chunk):
        try:
            events = parser.feed(data[i:i + chunk])
        except SIPParseError as err:
            assert err.fatal
            break
        for event in events:
            assert not isinstance(event, Exception) or isinstance(event, SIPParseError)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete", "special"]))
        if op == "set":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = draw(st.sampled_from(
                [b"\r\n", b"\r\n\r\n", b":", b";", b",", b'"', b"<", b">", b"%", b"\x00", b" ", b"\t",
                 b"\r\n ", b"@", b"[", b"]", b"=", b"?", b"\xff", b"\xc3"]))
    return bytes(data)


@SETTINGS
@given(mutated(), st.integers(1, 64))
def test_mutations_raise_only_parse_errors(data, chunk):
    check_survives(data, chunk)


@SETTINGS
@given(st.sampled_from(SEEDS), st.data())
def test_truncations_raise_only_parse_errors(seed, data):
    cut = data.draw(st.integers(0, len(seed)))
    check_survives(seed[:cut], data.draw(st.integers(1, 64)))
