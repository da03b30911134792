"""VRU-side GED-125 session against the VRU-PG simulator, in memory, on task.Clock."""

import pytest
from ctic.icm import constants as C
from ctic.icm.codec import Codec, base
from ctic.icm.session import READY, idle_timeout_seconds
from ctic.icm.settings import LinkSettings
from ctic.sim.vrupg.pg import PGSettings
from tests.icm.harness import Wire
from tests.support import assert_no_pending_calls


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_open_init_register_ladder():
    w = Wire(settings=LinkSettings(ecc_names=["user.account", "user.lang"], services=[7], trunk_groups=[3]))
    assert w.link.ready
    assert w.names() == [
        "OPEN_REQ", "OPEN_CONF", "INIT_SERVICE_CTRL_REQ", "INIT_SERVICE_CTRL_CONF",
        "INIT_SERVICE_CTRL_DATA", "INIT_SERVICE_CTRL_TRKGRP", "INIT_SERVICE_CTRL_SERVICE",
        "INIT_SERVICE_CTRL_VRU", "INIT_SERVICE_CTRL_END", "REGISTER_VARIABLES"]
    conf = w.ladder[1].message
    assert conf["UseServiceControl"] == 1 and conf["UseEventFeed"] == 0
    side = w.connections["A"].pg
    assert side.features == 0x0F
    assert w.pg.ecc == {"user.account": 1, "user.lang": 2}
    assert w.pg.call_vars_mask == 0x03FF
    data = w.ladder[4].message
    assert (data.dialogue_id, data.send_seq) == (C.NULL, C.NULL)


def test_heartbeats_keep_the_session_and_silence_ends_it():
    w = Wire()
    session = w.connections["A"].vru
    w.advance(60)  # PG heartbeats every IdleTimeout/4 = 5 s
    assert session.state == READY
    hb = [e for e in w.ladder if e.name == "HEARTBEAT_CONF"]
    assert len(hb) >= 10
    req = [e.message["InvokeID"] for e in w.ladder if e.name == "HEARTBEAT_REQ"]
    assert [e.message["InvokeID"] for e in hb] == req[:len(hb)]
    # the PG goes silent: after IdleTimeout (20 s) the VRU resets the session
    w.connections["A"].pg._heartbeat.cancel()
    w.connections["A"].pg.send = lambda msg: None
    w.advance(21)
    assert "A" not in w.connections and not w.link.ready
    w.pg.stop()
    assert_no_pending_calls(w.clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_vru_heartbeat_when_configured():
    w = Wire(settings=LinkSettings(vru_heartbeat=True))
    w.connections["A"].pg._heartbeat.cancel()
    w.pg.settings.idle_timeout = 10_000  # the PG side stays quiet; the VRU must speak first
    w.advance(6)
    assert any(e.name == "HEARTBEAT_REQ" and e.direction == "out" and e.peer.startswith("127.")
               for e in w.ladder)


def test_invalid_version_refused():
    w = Wire(settings=LinkSettings(min_version=1, max_version=10), pg_settings=PGSettings(version=16))
    assert not w.link.ready
    assert w.connections["A"].pg.failures == [C.E_INVALID_VERSION]


def test_peer_not_allowed_refused():
    import ipaddress
    w = Wire(settings=LinkSettings(allowed_peers=[ipaddress.ip_network("10.0.0.0/8")]))
    assert not w.link.ready
    assert "A" not in w.connections
    refused = [e.message for e in w.ladder if e.name == "FAILURE_CONF"]
    assert refused[0]["Status"] == C.E_REQUEST_REFUSED


def test_close_from_pg_and_from_vru():
    w = Wire()
    w.connections["A"].pg.close()
    w.pump()
    assert w.names()[-2:] == ["CLOSE_REQ", "CLOSE_CONF"]
    assert not w.link.ready and "A" not in w.connections
    w2 = Wire()
    w2.link.close()
    w2.pump()
    assert w2.names()[-2:] == ["CLOSE_REQ", "CLOSE_CONF"]
    assert not w2.connections
    w2.pg.stop()
    assert_no_pending_calls(w2.clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_status_when_availability_changes():
    w = Wire(settings=LinkSettings(services=[7]))
    w.link.setAvailable(False)
    w.pump()
    assert w.names()[-2:] == ["SERVICE_STATUS", "VRU_STATUS"]
    assert w.pg.service_status == {7: False} and w.pg.vru_status == 64
    w.link.setAvailable(True)
    w.pump()
    assert w.pg.service_status == {7: True} and w.pg.vru_status == 0


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_unsupported_interfaces_are_refused():
    w = Wire()
    side = w.connections["A"].pg
    side.send(base(C.TIME_SYNCH_REQ, InvokeID=77, VRUTimeLag=0))
    side.send(base(C.INIT_DATA_REQ, InvokeID=78))
    w.pump()
    fails = [e.message.fixed for e in w.ladder if e.name == "FAILURE_CONF"]
    assert fails == [{"InvokeID": 77, "Status": C.E_TIME_SYNCH_NOT_SUPPORTED},
                     {"InvokeID": 78, "Status": C.E_EVENTS_NOT_SUPPORTED}]
    assert w.link.ready


def test_idle_timeout_units():
    assert idle_timeout_seconds(120, "auto") == 120
    assert idle_timeout_seconds(30000, "auto") == 30
    assert idle_timeout_seconds(30000, "seconds") == 30000
    assert idle_timeout_seconds(500, "milliseconds") == 0.5


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_bad_input_on_the_wire():
    for kind, reset in [("truncated", True), ("oversize", True), ("garbage", True),
                        ("unknown-type", False), ("unknown-subtype", False), ("bad-field", False)]:
        w = Wire()
        w.connections["A"].pg.inject(kind)
        w.pump()
        assert w.link.ready is not reset, kind
        if reset:
            assert w.names("out")[-1] == "FAILURE_EVENT", kind
            assert w.ladder[-1].message["Status"] == C.E_INVALID_MESSAGE
    w = Wire()
    w.connections["A"].pg.inject("unknown-dialogue")
    w.pump()
    last = w.ladder[-1].message
    assert (last.name, last.dialogue_id, last["ErrorCode"]) == ("DIALOGUE_FAILURE_EVENT", 0x7777,
                                                                 C.E_INVALID_DIALOGUEID)


def test_messages_before_open_are_refused():
    w = Wire(sides=())
    from tests.icm.harness import Connection

    c = Connection(w, "A", 45000)
    w.connections["A"] = c
    c.vru.connectionMade()  # no PG-side open: send a heartbeat first
    c.to_vru.append(Codec().encode(base(C.HEARTBEAT_REQ, InvokeID=5)))
    w.pump()
    assert w.ladder[-1].message.fixed == {"InvokeID": 5, "Status": C.E_SESSION_NOT_ACTIVE}


def test_idle_timeout_zero_means_no_idle_supervision():
    w = Wire(sides=(), settings=LinkSettings(vru_heartbeat=True))
    from tests.icm.harness import Connection

    c = Connection(w, "A", 45001)
    w.connections["A"] = c
    c.vru.connectionMade()
    codec = Codec()
    c.to_vru.append(codec.encode(base(C.OPEN_REQ, InvokeID=1, VersionNumber=16, IdleTimeout=0)))
    c.to_vru.append(codec.encode(base(C.HEARTBEAT_REQ, InvokeID=2)))
    w.pump()
    assert w.names()[:4] == ["OPEN_REQ", "OPEN_CONF", "HEARTBEAT_REQ", "HEARTBEAT_CONF"]
    w.clock.advance(0)
    assert c.open and c.vru.state == READY
    w.advance(60)  # the PG heartbeats every 5 s; the VRU neither resets nor loops heartbeats
    assert c.open and c.vru.state == READY
    assert not [e for e in w.ladder if e.name == "HEARTBEAT_REQ" and e.direction == "out"]
    w.pg.stop()
    w.link.close()
    w.pump()
    assert_no_pending_calls(w.clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_a_non_dialogue_sc_message_from_the_pg_gets_no_dialogue_failure():
    from ctic.icm.codec import sc

    w = Wire()
    before = len(w.ladder)
    w.connections["A"].pg.send(sc(C.SERVICE_STATUS, ServiceID=7, ServiceAvailable=1))  # a VRU-to-PG message
    w.pump()
    assert [e.name for e in w.ladder[before:]] == ["SERVICE_STATUS"] and w.link.ready


@pytest.mark.allow_open_state("leak debt (issue 13): the ladder stops at what it asserts and leaves the session's heartbeat timers running; close the session instead")
def test_a_failing_ladder_observer_does_not_break_the_session():
    w = Wire()

    def broken(event):
        raise RuntimeError("ladder bug")

    unsubscribe = w.events.subscribe(broken)
    w.advance(6)  # a PG heartbeat in, its answer out, both through the broken observer
    assert w.link.ready and w.names()[-2:] == ["HEARTBEAT_REQ", "HEARTBEAT_CONF"]
    unsubscribe()


def test_a_message_before_a_fatal_frame_in_the_same_read_is_still_handled():
    """The heartbeat that arrived with the garbage is answered, then the session is reset."""
    import struct

    w = Wire()
    c = w.connections["A"]
    w.pump()
    heartbeat = Codec().encode(base(C.HEARTBEAT_REQ, InvokeID=42))
    c.to_vru.append(heartbeat + struct.pack("!II", 10_000_000, 1))
    w.pump()
    out = [(e.name, e.message.fixed.get("InvokeID")) for e in w.ladder if e.direction == "out"]
    assert ("HEARTBEAT_CONF", 42) in out
    assert w.names("out")[-1] == "FAILURE_EVENT" and not w.link.ready
