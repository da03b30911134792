"""
Duplex VRU-PG: side A active, side B quiescent, takeover mid-call (the GVP
CTI Connector documentation, "Duplex Mode": docs/gvp-rm-ctic.rst §3.4,
docs/ged125.rst §5.5).
"""

from ctic.icm import constants as C
from ctic.icm.dialogue import ENDED
from ctic.icm.session import CONNECTED, READY
from ctic.icm.settings import LinkSettings
from tests.icm.harness import Recorder, Wire
from tests.support import assert_no_pending_calls


def finish(w):
    w.pg.stop()
    w.link.close()
    w.pump()
    assert_no_pending_calls(w.clock)


def test_one_active_one_quiescent():
    w = Wire(sides=("A", "B"))
    assert w.connections["A"].vru.state == READY
    assert w.connections["B"].vru.state == CONNECTED
    assert w.link.active is w.connections["A"].vru
    finish(w)


def test_takeover_mid_script_outstanding_result_goes_on_new_session():
    w = Wire("run Long; connect 5001", sides=("A", "B"))
    logic = Recorder(connect_event=C.ANSWER)
    d = w.link.newCall(logic, "8005551212")
    w.pump()
    run = logic.calls[0][1]  # RUN_SCRIPT_REQ received on side A, not answered yet
    a = w.connections["A"].vru
    assert w.pg.failover("supersede")
    w.pump()
    assert "A" not in w.connections and w.link.takeovers == 1
    b = w.connections["B"].vru
    assert w.link.active is b and b.state == READY
    d.scriptResult(run.invoke_id, ced="42")
    w.pump()
    result = [e for e in w.ladder if e.name == "RUN_SCRIPT_RESULT"][0]
    assert result.peer == b.peer_text != a.peer_text
    assert result.message["InvokeID"] == run.invoke_id
    assert logic.names() == ["runScript", "connect"]
    assert d.state == ENDED and logic.ended_with == ("reported", None)
    assert w.pg.finished[-1].outcome == "completed"
    # SendSeqNo continues across the switch
    seqs = [e.message.send_seq for e in w.ladder if e.dialogue_id == d.id and e.direction == "out"]
    assert seqs == [0, 1, 2]
    finish(w)


def test_active_side_drops_messages_are_held_then_flushed():
    w = Wire("run Long; connect 5001")
    logic = Recorder(connect_event=C.ANSWER)
    d = w.link.newCall(logic, "1")
    w.pump()
    run = logic.calls[0][1]
    w.connections["A"].lose()  # side A's TCP connection dies
    w.pump()
    assert not w.link.ready
    d.scriptResult(run.invoke_id)  # produced in the gap: held, in order
    assert [m.name for m in w.link._held] == ["RUN_SCRIPT_RESULT"]
    w.advance(5)  # within FailoverHold (10 s) side B connects and opens
    w.connect("B")
    assert w.connections["B"].vru.state == READY
    assert logic.ended_with == ("reported", None)
    assert w.pg.finished[-1].outcome == "completed"
    finish(w)


def test_a_message_that_cannot_be_sent_fails_for_the_caller_not_at_the_flush():
    import pytest

    from ctic.icm.codec import EncodeError

    w = Wire("run Long; connect 5001")
    logic = Recorder(connect_event=C.ANSWER)
    d = w.link.newCall(logic, "1")
    w.pump()
    first = logic.calls[0][1]
    w.connections["A"].lose()
    w.pump()
    with pytest.raises(EncodeError):
        d.scriptResult(first.invoke_id, ced="9" * 41)  # CED is at most 40 characters
    assert w.link._held == []
    w.advance(5)
    w.connect("B")  # the new session comes up; nothing unsendable is waiting for it
    assert w.connections["B"].vru.state == READY and w.link.ready
    finish(w)


def test_active_side_drops_and_sim_fails_over_to_connected_standby():
    w = Wire("run Long; connect 5001", sides=("A", "B"))
    logic = Recorder(results={"Long": {}}, connect_event=C.ANSWER)
    w.link.newCall(logic, "1")
    w.pump()
    assert logic.ended_with == ("reported", None)
    d = w.link.newCall(Recorder(), "1")
    w.pump()
    w.connections["A"].lose()
    w.pump()
    assert w.pg.failovers == 1 and w.link.ready and w.link.active is w.connections["B"].vru
    assert d.id in w.link.dialogues and d.id in w.pg.dialogues
    finish(w)


def test_no_session_within_failover_hold_fails_dialogues_locally():
    w = Wire("run Long", settings=LinkSettings(failover_hold=3))
    logic = Recorder()
    d = w.link.newCall(logic, "1")
    w.pump()
    w.connections["A"].lose()
    w.pump()
    d.scriptResult(logic.calls[0][1].invoke_id)  # held
    w.advance(3)
    assert d.state == ENDED and logic.ended_with == ("link-lost", None)
    assert not w.link._held
    finish(w)


def test_a_takeover_that_never_gets_ready_fails_dialogues_after_failover_hold():
    w = Wire("run Long", sides=("A", "B"), settings=LinkSettings(failover_hold=3))
    logic = Recorder()
    d = w.link.newCall(logic, "1")
    w.pump()
    side_b = w.connections["B"].pg
    side_b.ged_OPEN_CONF = lambda msg: None  # side B opens but never sends INIT_SERVICE_CTRL_REQ
    side_b.open()
    w.pump()
    assert w.link.takeovers == 1 and not w.link.ready and d.state != ENDED
    w.advance(3)
    assert d.state == ENDED and logic.ended_with == ("link-lost", None)
    finish(w)


def test_second_open_refused_when_supersede_is_off():
    w = Wire(sides=("A", "B"), settings=LinkSettings(supersede_on_new_open=False))
    w.pg.failover("supersede")
    w.pump()
    assert w.connections["B"].pg.failures == [C.E_SESSION_ALREADY_ACTIVE]
    assert w.link.active is w.connections["A"].vru
    # ... unless the active side has been silent longer than its IdleTimeout
    w.connections["A"].pg._heartbeat.cancel()
    w.connections["A"].pg.send = lambda msg: None
    w.clock.advance(19)
    w.connections["B"].vru.last_received = w.clock.seconds()
    w.link.active.last_received -= 5
    w.connections["B"].pg.open()
    w.pump()
    assert w.link.active is w.connections["B"].vru
    finish(w)


def test_scheduled_failovers_keep_calls():
    from ctic.sim.vrupg.pg import PGSettings
    w = Wire("run Long; delay 3; connect 5001", sides=("A", "B"),
             pg_settings=PGSettings(idle_timeout=20, failover_every=2))
    logic = Recorder(results={"Long": {}}, connect_event=C.ANSWER)
    w.link.newCall(logic, "1")
    w.advance(2.5)  # failover at t=2 while the sim waits in "delay 3"
    assert w.link.takeovers == 1
    w.advance(1)
    assert logic.ended_with == ("reported", None)
    finish(w)
