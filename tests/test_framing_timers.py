"""The shared framing buffer and timer."""

import struct

import pytest
from twisted.internet.task import Clock

from ctic.framing import FrameBuffer, FramingError
from ctic.timers import Timer
from tests.support import assert_no_pending_calls


def ged_like():
    return FrameBuffer(8, lambda h: struct.unpack("!I", h[:4])[0] + 8, 1024)


def frame(body: bytes, mtype=1) -> bytes:
    return struct.pack("!II", len(body), mtype) + body


def test_partial_and_coalesced_reads():
    fb = ged_like()
    wire = frame(b"abcd") + frame(b"") + frame(b"xyz" * 10)
    got = []
    for i in range(len(wire)):
        got += fb.feed(wire[i:i + 1])
    assert got == [frame(b"abcd"), frame(b""), frame(b"xyz" * 10)]
    assert fb.feed(wire * 3) == [frame(b"abcd"), frame(b""), frame(b"xyz" * 10)] * 3
    assert len(fb) == 0


def test_oversized_frame_raises_before_body():
    fb = ged_like()
    with pytest.raises(FramingError) as e:
        fb.feed(struct.pack("!II", 5000, 1))
    assert e.value.length == 5008


def test_timer_restarts_and_leaves_nothing_behind():
    clock = Clock()
    fired = []
    t = Timer(clock, fired.append, "x")
    t.start(5)
    clock.advance(4)
    t.start(5)
    clock.advance(4)
    assert fired == [] and t.active
    clock.advance(1)
    assert fired == ["x"] and not t.active
    t.start(1)
    t.cancel()
    assert_no_pending_calls(clock)



def test_a_failing_timer_callback_is_logged_not_raised_into_the_reactor():
    from twisted.logger import globalLogPublisher

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        clock = Clock()

        def boom():
            raise RuntimeError("call logic bug")

        t = Timer(clock, boom)
        t.start(1)
        clock.advance(1)  # must not raise
        assert not t.active
        assert any(e.get("log_failure") is not None and "Timer callback" in e.get("log_format", "") for e in events)
        t.start(1)  # still usable
        t.cancel()
        assert_no_pending_calls(clock)
    finally:
        globalLogPublisher.removeObserver(events.append)


def test_frames_before_a_fatal_header_in_the_same_read_are_kept():
    fb = ged_like()
    wire = frame(b"first") + frame(b"second") + struct.pack("!II", 5000, 1)
    with pytest.raises(FramingError) as e:
        fb.feed(wire)
    assert e.value.frames == [frame(b"first"), frame(b"second")]


def test_gli_decoder_hands_over_frames_before_the_fault():
    from ctic.ivrserver import gli

    dec = gli.GLIDecoder()
    good = gli.encode_frame(gli.DATA, b"<GctiMsg/>")
    bad = b"\x00\x07\x00\x02\x02\x00"  # an unknown GLI message type: framing lost
    with pytest.raises(FramingError) as e:
        dec.feed(good + bad)
    assert [f.payload for f in e.value.frames] == [b"<GctiMsg/>"]
