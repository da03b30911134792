"""GED-125 codec: reference byte examples, round trips for every message, limits, fuzzing."""

import struct

import pytest
from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock

from ctic.icm import constants as C
from ctic.icm.codec import (
    BASE_LAYOUTS, FIELD_KINDS, SC_LAYOUTS, BOOL, ECC_ARRAY, ECC_NAME, ECC_VALUE, STRING, UINT, UNSPEC,
    Codec, DecodeError, EncodeError, FieldError, GED125Error, Message, base, sc)
from ctic.icm.link import PGLink
from ctic.icm.session import VRUSession
from ctic.icm.settings import LinkSettings
from tests.support import assert_no_pending_calls

# docs/ged125.rst §8, byte for byte
EXAMPLES = {
    "OPEN_REQ": "0000000c 00000003 00000001 00000010 00000078",
    "OPEN_CONF": "00000018 00000004 00000001 00000000 00000000 00000000 00000000 00000001",
    "HEARTBEAT_REQ": "00000004 00000005 00000007",
    "INIT_SERVICE_CTRL_DATA": "00000014 0000002f 00000003 ffffffff ffffffff 00000002 0000000f",
    "NEW_CALL": "00000032 0000002f 00000005 000003e9 00000000 00000001 00000005 00000000"
                "200b383030353535313231320012 0b3430383535353132333400",
    "REGISTER_VARIABLES": "00000011 00000031 03ff 2a0d000000c8757365722e666f6f00",
}


def hexbytes(text):
    return bytes.fromhex(text.replace(" ", ""))


def test_reference_examples_decode_and_encode_byte_for_byte():
    codec = Codec()
    built = {
        "OPEN_REQ": base(C.OPEN_REQ, InvokeID=1, VersionNumber=16, IdleTimeout=120),
        "OPEN_CONF": base(C.OPEN_CONF, InvokeID=1, UseEventFeed=0, UsePolledFeed=0, UseCallRouting=0,
                          UseTimeSynch=0, UseServiceControl=1),
        "HEARTBEAT_REQ": base(C.HEARTBEAT_REQ, InvokeID=7),
        "INIT_SERVICE_CTRL_DATA": sc(C.INIT_SERVICE_CTRL_DATA, InvokeID=2, ServiceFeatures=0x0F),
        "NEW_CALL": sc(C.NEW_CALL, 1001, 0, TrunkGroupID=1, TrunkNumber=5, ServiceID=0)
        .add(C.TAG_DialedNumber, "8005551212").add(C.TAG_ANI, "4085551234"),
        "REGISTER_VARIABLES": base(C.REGISTER_VARIABLES, CallVarsMask=0x03FF)
        .add(C.TAG_ECC_VAR_NAME, (200, "user.foo")),
    }
    for name, text in EXAMPLES.items():
        wire = hexbytes(text)
        msg = codec.decode(wire)
        assert msg.name == name
        assert codec.encode(msg) == wire
        assert codec.encode(built[name]) == wire, name
    assert codec.decode(hexbytes(EXAMPLES["NEW_CALL"])).get(C.TAG_ANI) == "4085551234"


def test_ecc_examples():
    codec = Codec()
    value = sc(C.RUN_SCRIPT_RESULT, 1, 1, InvokeID=1, ResultCode=1).add(C.TAG_ECC_VAR_VALUE, (200, "abc"))
    array = sc(C.RUN_SCRIPT_RESULT, 1, 1, InvokeID=1, ResultCode=1).add(C.TAG_ECC_VAR_ARRAY, (201, 3, "x"))
    assert codec.encode(value).endswith(hexbytes("2b08000000c861626300"))
    assert codec.encode(array).endswith(hexbytes("2c07000000c9037800"))
    assert codec.decode(codec.encode(array)).ecc() == {201: {3: "x"}}


# --- strategies: a valid message of any known type ------------------------------------------

_INT = {"I": st.integers(0, 0xFFFFFFFF), "T": st.integers(0, 0xFFFFFFFF), "B": st.integers(0, 1),
        "i": st.integers(-2**31, 2**31 - 1), "H": st.integers(0, 0xFFFF)}
_TEXT = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=30)


def _floating_value(tag):
    kind = FIELD_KINDS[tag]
    if kind == STRING:
        return _TEXT
    if kind in (UINT, BOOL):
        return st.integers(0, 0xFFFFFFFF)
    if kind in (ECC_NAME, ECC_VALUE):
        return st.tuples(st.integers(0, 0xFFFFFFFF), _TEXT)
    if kind == ECC_ARRAY:
        return st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 255), _TEXT)
    return st.binary(max_size=100 if kind == UNSPEC else 255)


_field = st.integers(1, 255).flatmap(
    lambda tag: st.tuples(st.just(tag), _floating_value(tag), st.sampled_from([None, 0, 1, 2])))


def _tail(kind):
    if kind == "ints":
        return st.lists(_INT["i"], max_size=5)
    if kind == "ushorts":
        return st.lists(_INT["H"], max_size=5)
    return st.lists(st.tuples(_INT["H"], _INT["H"]), max_size=5)


@st.composite
def messages(draw):
    is_sc = draw(st.booleans())
    if is_sc:
        subtype = draw(st.sampled_from(sorted(SC_LAYOUTS)))
        layout = SC_LAYOUTS[subtype]
    else:
        mtype = draw(st.sampled_from(sorted(t for t in BASE_LAYOUTS)))
        layout = BASE_LAYOUTS[mtype]
    fixed = {n: draw(_INT[k]) for n, k in zip(layout.names, layout.kinds)}
    if layout.tail:
        fixed[layout.tail[0]] = draw(_tail(layout.tail[1]))
    floating = draw(st.lists(_field, max_size=8)) if layout.floating else []
    floating = [(t, v, n if FIELD_KINDS[t] in (STRING, ECC_NAME, ECC_VALUE, ECC_ARRAY) else None)
                for t, v, n in floating]
    if is_sc:
        return Message(C.SERVICE_CONTROL, fixed, floating, subtype, draw(_INT["I"]), draw(_INT["I"]))
    return Message(mtype, fixed, floating)


def test_every_message_type_has_a_layout():
    assert set(BASE_LAYOUTS) | {C.SERVICE_CONTROL} == set(C.MESSAGE_NAMES)
    assert set(SC_LAYOUTS) == set(C.SUBTYPE_NAMES) == set(range(1, 31))


@settings(max_examples=300, deadline=None)
@given(messages())
def test_round_trip_every_message(msg):
    codec = Codec(max_lengths={t: 255 for t in range(256)})
    try:
        wire = codec.encode(msg)
    except EncodeError:
        return  # e.g. a string that with its NULs exceeds 255 bytes
    decoded = codec.decode(wire)
    assert codec.encode(decoded) == wire
    assert decoded == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 60), st.integers(0, 40))
def test_decoder_raises_only_its_own_error(body, mtype, subtype):
    codec = Codec()
    if mtype == C.SERVICE_CONTROL and len(body) >= 4:
        body = struct.pack("!I", subtype) + body[4:]
    frame = struct.pack("!II", len(body), mtype) + body
    try:
        msg = codec.decode(frame)
    except GED125Error:
        return
    assert codec.encode(msg) == frame or isinstance(msg, Message)


def test_nul_policy_and_limits():
    strict = Codec(accept_without_nul=False)
    loose = Codec(nul_terminate=False)
    msg = sc(C.RUN_SCRIPT_REQ, 1, 0, InvokeID=1).add(C.TAG_ScriptID, "Hello")
    bare = loose.encode(msg)
    assert bare.endswith(b"\x26\x05Hello")
    assert Codec().encode(msg).endswith(b"\x26\x06Hello\x00")
    assert Codec().decode(bare).get(C.TAG_ScriptID) == "Hello"
    with pytest.raises(FieldError):
        strict.decode(bare)
    with pytest.raises(EncodeError):
        Codec().encode(sc(C.RUN_SCRIPT_REQ, 1, 0, InvokeID=1).add(C.TAG_CallVariable1, "x" * 41))
    long_var = Codec(max_lengths={C.TAG_CallVariable1: 210})
    wire = long_var.encode(sc(C.RUN_SCRIPT_REQ, 1, 0, InvokeID=1).add(C.TAG_CallVariable1, "x" * 41))
    with pytest.raises(FieldError):
        Codec().decode(wire)
    with pytest.raises(EncodeError):
        Codec().encode(base(C.OPEN_REQ, InvokeID=1))  # fixed fields missing


def test_unknown_tags_kept_and_unknown_types_raw():
    codec = Codec()
    wire = codec.encode(sc(C.NEW_CALL, 1, 0, TrunkGroupID=0, TrunkNumber=0, ServiceID=0)
                        .add(C.TAG_DialedNumber, "1").add(200, b"\x01\x02\x03"))
    msg = codec.decode(wire)
    assert msg.get(200) == b"\x01\x02\x03" and codec.encode(msg) == wire
    raw = struct.pack("!II", 3, 99) + b"abc"
    msg = codec.decode(raw)
    assert not msg.known and msg.name == "MESSAGE_TYPE_99" and codec.encode(msg) == raw


def test_truncated_and_overrunning_frames():
    codec = Codec()
    for frame in [struct.pack("!II", 2, C.OPEN_REQ) + b"\0\0",
                  struct.pack("!II", 14, C.SERVICE_CONTROL) + struct.pack("!III", C.NEW_CALL, 1, 0) + b"\0\0",
                  struct.pack("!II", 8, C.SERVICE_CONTROL) + b"\0" * 8,
                  codec.encode(sc(C.RUN_SCRIPT_REQ, 1, 0, InvokeID=1)) + b"\x26\x09ab"]:
        if frame[:4] != struct.pack("!I", len(frame) - 8):
            frame = struct.pack("!I", len(frame) - 8) + frame[4:]
        with pytest.raises(DecodeError):
            codec.decode(frame)


class _Recorder:
    def __init__(self):
        self.out = []
        self.closed = False


@settings(max_examples=150, deadline=None)
@given(st.lists(messages(), max_size=12), st.lists(st.integers(1, 40), max_size=12))
def test_random_message_sequences_never_crash_the_session(msgs, cuts):
    clock = Clock()
    link = PGLink("T/1", LinkSettings(), clock)
    rec = _Recorder()
    session = VRUSession(link, ("127.0.0.1", 1), rec.out.append, lambda: setattr(rec, "closed", True), clock)
    session.connectionMade()
    codec = Codec(max_lengths={t: 255 for t in range(256)}, enforce_on_receive=False)
    stream = b""
    opening = codec.encode(base(C.OPEN_REQ, InvokeID=1, VersionNumber=16, IdleTimeout=30))
    stream += opening + codec.encode(sc(C.INIT_SERVICE_CTRL_REQ, InvokeID=2))
    for m in msgs:
        try:
            stream += codec.encode(m)
        except EncodeError:
            pass
    pos = 0
    for cut in cuts + [len(stream)]:
        session.dataReceived(stream[pos:pos + cut])
        pos += cut
        if rec.closed:
            break
    session.dataReceived(stream[pos:])
    session.connectionLost()
    link.close()
    assert_no_pending_calls(clock)
