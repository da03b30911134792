"""GLI framing: the 6-byte header, partial and coalesced reads, limits, bad headers."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctic.ivrserver import gli
from ctic.ivrserver.gli import BadFrame, Frame, FramingError, GLIDecoder, encode_frame


def test_header_bytes_match_the_reference_examples():
    assert gli.KEEP_ALIVE_REQUEST_FRAME == bytes.fromhex("000000020200")
    assert gli.KEEP_ALIVE_RESPONSE_FRAME == bytes.fromhex("000100020200")
    # a 251-byte LoginReq goes out as a 257-byte frame with length 0x00FD [WIRE]
    frame = encode_frame(gli.DATA, b"x" * 251)
    assert frame[:6] == bytes.fromhex("000300FD0200") and len(frame) == 257


def test_login_resp_and_flow_control_in_one_read_then_split_byte_by_byte():
    a, b = encode_frame(gli.DATA, b"a" * 224), encode_frame(gli.DATA, b"b" * 175)
    assert len(a + b) == 230 + 181
    assert GLIDecoder().feed(a + b) == [Frame(3, b"a" * 224), Frame(3, b"b" * 175)]
    dec, got = GLIDecoder(), []
    for i in range(len(a + b)):
        got += dec.feed((a + b)[i:i + 1])
    assert got == [Frame(3, b"a" * 224), Frame(3, b"b" * 175)] and len(dec) == 0


def test_the_64k_limit_and_a_configurable_lower_one():
    assert encode_frame(gli.DATA, b"x" * gli.MAX_PAYLOAD)[2:4] == b"\xff\xff"
    with pytest.raises(ValueError):
        encode_frame(gli.DATA, b"x" * (gli.MAX_PAYLOAD + 1))
    with pytest.raises(FramingError):
        GLIDecoder(max_payload=100).feed(struct.pack("!HHBB", 3, 103, 2, 0))  # header alone is enough
    assert GLIDecoder(max_payload=100).feed(encode_frame(gli.DATA, b"y" * 100)) == [Frame(3, b"y" * 100)]


def test_wrong_version_is_skipped_and_the_stream_stays_framed():
    bad = struct.pack("!HHBB", 3, 5, 1, 0) + b"abc"
    good = encode_frame(gli.DATA, b"ok")
    out = GLIDecoder().feed(bad + good)
    assert isinstance(out[0], BadFrame) and out[0].version == 1
    assert out[1] == Frame(3, b"ok")


@pytest.mark.parametrize("header", [struct.pack("!HHBB", 7, 2, 2, 0), struct.pack("!HHBB", 3, 1, 2, 0),
                                    b"<?xml "])
def test_unknown_type_or_short_length_means_framing_is_lost(header):
    with pytest.raises(FramingError):
        GLIDecoder().feed(header)


frames = st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]), st.binary(max_size=300)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(frames, st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_any_chunking_yields_the_same_frames(items, cuts):
    wire = b"".join(encode_frame(t, p) for t, p in items)
    dec, got, i, k = GLIDecoder(), [], 0, 0
    while i < len(wire):
        n = cuts[k % len(cuts)]
        got += dec.feed(wire[i:i + n])
        i, k = i + n, k + 1
    assert got == [Frame(t, p) for t, p in items]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_raises_anything_but_framing_error(data):
    try:
        for item in GLIDecoder(max_payload=200).feed(data):
            assert isinstance(item, (Frame, BadFrame))
    except FramingError:
        pass
