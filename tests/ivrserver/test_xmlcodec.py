"""GctiMsg XML: the whole catalogue both ways, strict output, tolerant input, attacks."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctic.ivrserver import messages as m
from ctic.ivrserver.userdata import Bin, Int, List, Node, Str, as_dict, kvlist
from ctic.ivrserver.xmlcodec import Decoder, EncodeError, Encoder, GctiMsgError, UnknownMessage, decode, encode

UD = kvlist({"Lang": "EN", "Score": 3, "Blob": b"\x00\xff", "Nested": {"a": "1", "b": {"c": 2}}})


def full_instance(cls):
    """An instance with every field set: first choice for enumerations, text otherwise."""
    kwargs = {}
    for f in cls.fields:
        if f.kind == "attr":
            kwargs[f.name] = f.choices[0] if f.choices else f"{f.name} <&'\"> é"
        elif f.kind == "text":
            kwargs[f.name] = f"{f.name} <&> x"
        elif f.kind == "kv":
            kwargs[f.name] = UD
        elif f.kind == "value":
            kwargs[f.name] = "12"
        elif f.kind == "sub":
            kwargs[f.name] = full_instance(f.classes[0])
    if cls.has_call_id and cls.element not in ("Server", "Port", "Agent"):
        kwargs["CallId"] = "IAdapter1_1127155652&0004"
    return cls(**kwargs)


@pytest.mark.parametrize("cls", list(m.CATALOGUE.values()), ids=lambda c: c.element)
@pytest.mark.parametrize("style", [Encoder(), Encoder("UTF-8", "'", False, "other.dtd")], ids=["client", "server"])
def test_round_trip_of_every_message(cls, style):
    msg = full_instance(cls)
    wire = style.encode(msg)
    assert decode(wire) == msg
    minimal = cls(**{f.name: getattr(msg, f.name) for f in cls.fields if f.required},
                  **({"CallId": "1"} if cls.has_call_id else {}))
    assert decode(style.encode(minimal)) == minimal


def test_dtd_element_order_and_escaping_on_output():
    msg = m.RouteRequest(CallId="7", RouteDN="7900", CED="1<2", UDataEx=kvlist({"k": "a&b"}),
                         ExtnsEx=kvlist({"x": "'\""}))
    assert encode(msg).split(b"\n")[2] == (
        b'<GctiMsg><CallId>7</CallId><RouteRequest RouteDN="7900"><CED>1&lt;2</CED>'
        b'<UDataEx><Node Name="k" Type="Str" Val="a&amp;b"/></UDataEx>'
        b'<ExtnsEx><Node Name="x" Type="Str" Val="&apos;&quot;"/></ExtnsEx></RouteRequest></GctiMsg>'
    )
    server = Encoder(quote="'", newlines=False).encode(m.FlowControl(CallId="IAdapter1_1", Status="Off"))
    assert server == (b"<?xml version='1.0' encoding='ISO-8859-1'?><!DOCTYPE GctiMsg SYSTEM 'IServer.dtd'>"
                      b"<GctiMsg><CallId>IAdapter1_1</CallId><FlowControl Status='Off'/></GctiMsg>")


def test_encoding_is_latin1_by_default_and_utf8_when_configured():
    msg = m.LogMsg(CallId="1", MsgType="Standard", Msg="café")
    assert "café".encode("latin-1") in encode(msg)
    assert "café".encode("utf-8") in Encoder("UTF-8").encode(msg)
    with pytest.raises(EncodeError, match="ISO-8859-1"):
        encode(m.LogMsg(CallId="1", MsgType="Standard", Msg="€"))
    assert decode(Encoder("UTF-8").encode(m.LogMsg(CallId="1", MsgType="Standard", Msg="€"))).Msg == "€"


@pytest.mark.parametrize("msg, reason", [
    (m.NewCall(CallId="1", CallControlMode="MakeCall", CalledNum="1"), "not one of"),
    (m.NewCall(CallId="1", CallControlMode="Network", CalledNum=None), "needs the element CalledNum"),
    (m.LogMsg(CallId="1", MsgType="Debug", Msg="bell\x07"), "character XML cannot carry"),
    (m.UDataSet(CallId="1", Action="Add", RequestId="1", UDataEx=()), "non-empty UDataEx"),
    (m.UDataSet(CallId="1", Action="Add", RequestId="1", UDataEx=kvlist({"a:b": "x"})), "contains ':'"),
    (m.CallStatus(Event="Ringing"), "needs a CallId"),
    (m.CallStatus(CallId=" 1", Event="Ringing"), "whitespace"),
])
def test_strict_output_refuses_what_the_dtd_forbids(msg, reason):
    with pytest.raises(EncodeError, match=reason):
        encode(msg)


def corpus(name):
    from tests.support import IVR_WIRE

    path = IVR_WIRE / name
    return [line.rstrip("\n").replace("\\n", "\n").encode("latin-1") for line in open(path, encoding="latin-1")
            if line.strip()]


def expected(doc: bytes):
    """Element name, CallId and attributes straight from the text, as an independent oracle."""
    text = doc.decode("latin-1")
    call_id = re.search(r"<CallId>([^<]*)</CallId>", text).group(1)
    element, attrs = re.search(r"</CallId><(\w+)([^>]*?)/?>", text).groups()
    return element, call_id, dict(re.findall(r"(\w+)=['\"]([^'\"]*)['\"]", attrs))


def test_every_real_server_document_parses_into_the_right_message():
    docs = corpus("from-ivr-server.txt")
    assert len(docs) == 38
    for doc in docs:
        msg = decode(doc)
        element, call_id, attrs = expected(doc)
        assert type(msg).__name__ == element and msg.CallId == call_id
        for name, value in attrs.items():
            assert getattr(msg, name) == value, (doc, name)
        for rid in re.findall(rb"<RequestId>(\d+)</RequestId>", doc):
            assert msg.RequestId == rid.decode()
    by_kind = {}
    for doc in docs:
        msg = decode(doc)
        by_kind.setdefault(msg.element, []).append(msg)
    assert {"LoginResp", "FlowControl", "CallStatus", "CallInfoResp", "UDataResp", "CallError",
            "EndCall"} <= set(by_kind)
    hit = [u for u in by_kind["UDataResp"] if u.UDataEx]
    assert hit and all(as_dict(u.UDataEx) == {"UEI": "bridgetec"} for u in hit)
    assert {e.TlibErrCode for e in by_kind["CallError"]} >= {"1183", "INVALID_REQ", "BLOCKED_REQ", None}


def test_every_real_client_document_parses():
    docs = corpus("to-ivr-server.txt")
    assert len(docs) == 20
    kinds = {decode(d).element for d in docs}
    assert kinds == {"LoginReq", "NewCall", "CallInfoReq", "UDataGet", "UDataSet", "RouteRequest", "OneStepXfer",
                     "EndCall"}
    end = [decode(d) for d in docs if b"<EndCall" in d][0]
    assert end.ExtnsEx == (Node("GCTIActiveRelease", Str("false")),)


def test_tolerant_input():
    msg = decode(b"<GctiMsg>\n  <CallId> 12 </CallId>\n  <RouteResponse Extra='x'><Dest>5550700</Dest>"
                 b"<Unknown/><ExtnsEx><Node Name='CUSTOMER_ID' Type='Str' Val='Test'/></ExtnsEx></RouteResponse>"
                 b"</GctiMsg>")
    assert msg == m.RouteResponse(CallId="12", Dest="5550700", ExtnsEx=(Node("CUSTOMER_ID", Str("Test")),))
    old = decode(b'<GctiMsg><CallId>1</CallId><NewCall CallControlMode="Network"><CalledNum>1</CalledNum>'
                 b"<UserData><NVPair><NVName>k</NVName><NVVal>v</NVVal></NVPair></UserData></NewCall></GctiMsg>")
    assert old.UDataEx == (Node("k", Str("v")),)
    stat = decode(b"<GctiMsg><CallId>1</CallId><StatResp ResultCode='Success'><RequestId>4</RequestId>"
                  b"<Result Value='12'/></StatResp></GctiMsg>")
    assert stat.Result == "12"
    dial = decode(b"<GctiMsg><DialOut RefID='9' OrigNum='1' DestNum='2' TimeToAnswer='20'/></GctiMsg>")
    assert dial.CallId is None and dial.RefID == "9"


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE GctiMsg [<!ENTITY a "aaaaaaaaaa">'
          + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
                     for i in range(8))
          + b"]><GctiMsg><CallId>&i;</CallId><CallStatus Event='Ringing'/></GctiMsg>")


@pytest.mark.parametrize("doc, reason", [
    (LAUGHS, "entity declarations"),
    (b'<!DOCTYPE GctiMsg [<!ENTITY x SYSTEM "file:///etc/passwd">]><GctiMsg><CallId>&x;</CallId>'
     b"<CallStatus Event='Ringing'/></GctiMsg>", "entity declarations"),
    (b'<!DOCTYPE GctiMsg [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><GctiMsg/>', "entity declarations"),
    (b"<!DOCTYPE GctiMsg SYSTEM 'IServer.dtd'><GctiMsg><CallId>&x;</CallId><CallStatus Event='Ringing'/>"
     b"</GctiMsg>", "entity references"),
    ("<GctiMsg/>".encode("utf-16"), "ISO-8859-1 and UTF-8"),
    # UTF-7 spells '<' as '+ADw-': libxml2 would decode it and expand the entity in the attribute
    (b"<?xml version='1.0' encoding='UTF-7'?><!DOCTYPE GctiMsg [+ADw-!ENTITY x 'EXPANDED'>]><GctiMsg>"
     b"<CallId>1</CallId><LoginReq Version='4.0' ClientName='+ACY-x;'/></GctiMsg>", "ISO-8859-1 and UTF-8"),
    # an undeclared entity in an attribute: libxml2 would drop it silently (ClientName 'ab')
    (b"<!DOCTYPE GctiMsg SYSTEM 'IServer.dtd'><GctiMsg><CallId>1</CallId>"
     b"<LoginReq Version='4.0' ClientName='a&x;b'/></GctiMsg>", "entity references"),
    (b"<GctiMsg><CallId>1</CallId><NewCall", "malformed XML"),
    (b"<Other/>", "root element"),
    (b"<GctiMsg><CallId>1</CallId></GctiMsg>", "no message element"),
    (b"<GctiMsg><CallId>1</CallId><LoginResp Result='Success'/></GctiMsg>", "IServerVer"),
    (b"<GctiMsg><CallStatus Event='Ringing'/></GctiMsg>", "no CallId"),
    (b"<GctiMsg><CallId>1</CallId><UDataResp Result='Success'><RequestId>1</RequestId><UDataEx>"
     b"<Node Name='n' Type='Int' Val='x'/></UDataEx></UDataResp></GctiMsg>", "non-integer"),
])
def test_attacks_and_bad_input_are_rejected_clearly(doc, reason):
    with pytest.raises(GctiMsgError, match=reason):
        decode(doc)


def test_unknown_message_keeps_the_call_id_for_the_answer():
    with pytest.raises(UnknownMessage) as e:
        decode(b"<GctiMsg><CallId>42</CallId><Frobnicate/></GctiMsg>")
    assert e.value.call_id == "42" and e.value.element == "Frobnicate"


def test_nesting_limit_is_configurable():
    deep = b"<GctiMsg><CallId>1</CallId><EndCall EndCause='Normal'><UDataEx>" + b"<List Name='l'>" * 5 + \
        b"<Node Name='n' Type='Str' Val='v'/>" + b"</List>" * 5 + b"</UDataEx></EndCall></GctiMsg>"
    assert decode(deep)
    with pytest.raises(GctiMsgError, match="deeper"):
        Decoder(max_depth=3).decode(deep)


names = st.text(st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters=":"), min_size=1, max_size=8)
scalars = st.one_of(st.builds(Str, st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12)),
                    st.builds(Int, st.integers(-2**40, 2**40)), st.builds(Bin, st.binary(max_size=8)))
trees = st.recursive(st.builds(Node, names, scalars),
                     lambda kids: st.builds(List, names, st.lists(kids, min_size=1, max_size=3).map(tuple)),
                     max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(st.lists(trees, min_size=1, max_size=5).map(tuple), names.filter(lambda s: s == s.strip()))
def test_user_data_trees_round_trip(items, call_id):
    msg = m.UDataSet(CallId=call_id, Action="Replace", RequestId="1", UDataEx=items)
    assert decode(encode(msg)) == msg
    assert decode(Encoder("UTF-8", "'").encode(msg)) == msg


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda a, b: b"<GctiMsg><CallId>" + a + b"</CallId>" + b + b"</GctiMsg>",
                           st.binary(max_size=20), st.binary(max_size=120))))
def test_garbage_raises_only_gctimsg_error(data):
    try:
        decode(data)
    except GctiMsgError:
        pass


# --- the canonical-document fast path reads exactly what lxml reads ------------------------

_FAST, _LXML = Decoder(), Decoder(fast_path=False)


def _outcome(decoder, data):
    try:
        return ("ok", decoder.decode(data))
    except GctiMsgError as e:
        return ("error", type(e).__name__, str(e))


def _canonical_documents():
    """Every message of the catalogue, written as our encoder and as a real server write it."""
    docs = []
    for cls in m.CATALOGUE.values():
        msg = full_instance(cls)
        for enc in (Encoder(), Encoder("UTF-8", "'", False)):
            try:
                docs.append(enc.encode(msg))
            except Exception:
                continue
    return docs + corpus("from-ivr-server.txt") + corpus("to-ivr-server.txt")


CANONICAL = _canonical_documents()


def test_fast_path_is_taken_for_real_documents():
    """Not vacuous: some real documents really do go the fast way and decode the same."""
    from unittest import mock

    with mock.patch("ctic.ivrserver.xmlread.etree.fromstring", side_effect=AssertionError("lxml used")):
        fast = 0
        for doc in corpus("from-ivr-server.txt"):
            try:
                _FAST.decode(doc)
                fast += 1
            except AssertionError:
                pass
    assert fast >= 10
    for doc in CANONICAL:
        assert _outcome(_FAST, doc) == _outcome(_LXML, doc)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CANONICAL), st.lists(st.tuples(st.integers(0, 4096), st.sampled_from(
    [b"", b"&", b"&amp;", b"&lt;", b"<", b">", b"'", b'"', b" ", b"\n", b"=", b"/", b"<!ENTITY x 'y'>",
     b"<!DOCTYPE GctiMsg [<!ENTITY e 'x'>]>", b"\xe9", b"\x00", b"]]>", b"<X/>", b"&e;", b"xmlns='u'"])),
    max_size=3), st.integers(0, 5000))
def test_fast_path_and_lxml_agree_on_mutated_documents(doc, edits, cut):
    """Inserted bytes (entities, quotes, markup, non-ASCII) and truncations: same message or same error."""
    for at, ins in edits:
        at %= len(doc) + 1
        doc = doc[:at] + ins + doc[at:]
    doc = doc[:cut] if cut < len(doc) else doc
    assert _outcome(_FAST, doc) == _outcome(_LXML, doc)
