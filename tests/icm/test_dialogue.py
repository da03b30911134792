"""Service Control dialogues: call flows (docs/ged125.rst §7) through the wire, on task.Clock."""

from ctic.icm import constants as C
from ctic.icm.dialogue import ENDED
from ctic.icm.link import LinkUnavailable
from ctic.icm.settings import LinkSettings
from tests.icm.harness import Recorder, Wire
from tests.support import assert_no_pending_calls

import pytest


def dialogue_ladder(w):
    return [(e.direction, e.name) for e in w.ladder if e.dialogue_id is not None]


def finish(w):
    w.pg.stop()
    w.link.close()
    w.pump()
    assert_no_pending_calls(w.clock)


def test_new_call_script_connect_answer():
    w = Wire("run GetDigits CallVariable1=abc ECC:user.account=42; connect 5001",
             settings=LinkSettings(ecc_names=["user.account"]))
    logic = Recorder(results={"GetDigits": dict(ced="1234", call_variables={2: "x"},
                                                ecc={"user.account": "43"})},
                     connect_event=C.ANSWER)
    d = w.link.newCall(logic, "8005551212", ani="4085551234", dnis="5551212")
    w.pump()
    assert dialogue_ladder(w) == [("out", "NEW_CALL"), ("in", "RUN_SCRIPT_REQ"), ("out", "RUN_SCRIPT_RESULT"),
                                  ("in", "CONNECT"), ("out", "EVENT_REPORT")]
    run = logic.calls[0][1]
    assert (run.script_id, run.call_variables, run.ecc) == ("GetDigits", {1: "abc"}, {"user.account": "42"})
    result = [e.message for e in w.ladder if e.name == "RUN_SCRIPT_RESULT"][0]
    assert result["InvokeID"] == run.invoke_id and result["ResultCode"] == 1
    assert result.get(C.TAG_CED) == "1234" and result.call_variables() == {2: "x"}
    assert result.ecc() == {1: "43"}
    connect = logic.calls[1][1]
    assert (connect.label, connect.label_type) == ("5001", C.LABEL_NORMAL)
    assert d.state == ENDED and logic.ended_with == ("reported", None)
    sim = w.pg.finished[-1]
    assert sim.outcome == "completed" and sim.dialed_number == "8005551212"
    seqs = [e.message.send_seq for e in w.ladder if e.dialogue_id is not None and e.direction == "out"]
    assert seqs == [0, 1, 2]
    finish(w)


def test_request_instruction_release():
    w = Wire([("pre", ["12345"], "run PlayPrompt; release 1")])
    logic = Recorder(results={"PlayPrompt": {}})
    d = w.link.requestInstruction(logic, correlation_id="12345", dnis="800555")
    w.pump()
    assert dialogue_ladder(w) == [("out", "REQUEST_INSTRUCTION"), ("in", "RUN_SCRIPT_REQ"),
                                  ("out", "RUN_SCRIPT_RESULT"), ("in", "RELEASE")]
    assert logic.names() == ["runScript", "release"]
    assert logic.calls[1][1].cause == 1
    assert d.state == ENDED and logic.ended_with == ("released", None)
    finish(w)


def test_cancel_queue_script_then_connect_with_hint():
    w = Wire("run-nowait QueueMusic; delay 2; cancel; connect 5002 TransferHint=1")
    logic = Recorder(connect_event=C.ANSWER)
    d = w.link.newCall(logic, "8005550000")
    w.pump()
    assert logic.names() == ["runScript"]
    w.advance(2)
    assert logic.names() == ["runScript", "cancelScript", "connect"]
    conf = [e.message for e in w.ladder if e.name == "DIALOGUE_FAILURE_CONF"][0]
    cancel = [e.message for e in w.ladder if e.name == "CANCEL"][0]
    assert conf["InvokeID"] == cancel["InvokeID"] and conf["ErrorCode"] == C.E_OPERATION_CANCELLED
    # a late result for the cancelled script is dropped, never sent
    d.scriptResult(logic.calls[0][1].invoke_id)
    assert "RUN_SCRIPT_RESULT" not in w.names()
    # TransferHint: the dialogue waits for another instruction after ANSWER, then times out
    assert logic.calls[2][1].transfer_hint is True
    w.advance(10)
    assert d.state == ENDED and logic.ended_with == ("timeout", C.E_TIMEOUT)
    finish(w)


def test_cancel_of_unknown_invoke():
    w = Wire("run-nowait A; delay 1; cancel")
    logic = Recorder()
    d = w.link.newCall(logic, "1")
    w.pump()
    d.scriptFailed(logic.calls[0][1].invoke_id, C.E_INVALID_SCRIPT)
    w.advance(1)
    codes = [e.message["ErrorCode"] for e in w.ladder if e.name == "DIALOGUE_FAILURE_CONF"]
    assert codes == [C.E_INVALID_SCRIPT, C.E_INVALID_INVOKEID]
    finish(w)


def test_cancel_during_connect_leaves_the_connect_in_progress():
    from ctic.icm.codec import sc
    from ctic.icm.dialogue import CONNECTING

    w = Wire("connect 5001")
    logic = Recorder()  # carries the CONNECT out slowly: no EVENT_REPORT yet
    d = w.link.newCall(logic, "1")
    w.pump()
    assert d.state == CONNECTING
    w.pg.send(sc(C.CANCEL, d.id, 1, InvokeID=900, RequestID=901))
    w.pump()
    conf = [e.message for e in w.ladder if e.name == "DIALOGUE_FAILURE_CONF"][-1]
    assert (conf["InvokeID"], conf["ErrorCode"]) == (900, C.E_INVALID_INVOKEID)
    w.advance(11)  # no instruction timer while call logic carries the CONNECT out
    assert d.state == CONNECTING and "DIALOGUE_FAILURE_EVENT" not in w.names()
    d.report(C.ANSWER)
    w.pump()
    assert d.state == ENDED and logic.ended_with == ("reported", None)
    finish(w)


def test_a_call_whose_fields_cannot_be_sent_leaves_no_dialogue_behind():
    from ctic.icm.codec import EncodeError

    w = Wire("silent")
    with pytest.raises(EncodeError):
        w.link.newCall(Recorder(), "1", dnis="5" * 33)  # DNIS is at most 32 characters
    assert w.link.dialogues == {}
    finish(w)


def test_script_failure_and_instruction_timeout():
    w = Wire("run Nope; silent")
    logic = Recorder()
    d = w.link.newCall(logic, "1")
    w.pump()
    d.scriptFailed(logic.calls[0][1].invoke_id, C.E_INVALID_SCRIPT)
    w.pump()
    w.advance(9.5)
    assert d.state != ENDED
    w.advance(1)
    assert d.state == ENDED and logic.ended_with == ("timeout", C.E_TIMEOUT)
    last = [e.message for e in w.ladder if e.dialogue_id is not None][-1]
    assert (last.name, last["ErrorCode"]) == ("DIALOGUE_FAILURE_EVENT", C.E_TIMEOUT)
    assert w.pg.finished[-1].outcome == "vru-failed:E_TIMEOUT"
    finish(w)


def test_icm_silent_after_new_call():
    w = Wire("silent")
    logic = Recorder()
    w.link.newCall(logic, "1")
    w.advance(11)
    assert logic.ended_with == ("timeout", C.E_TIMEOUT)
    finish(w)


def test_icm_fails_dialogue():
    w = Wire([("known", ["1"], "run X")])
    logic = Recorder()
    w.link.newCall(logic, "999")
    w.pump()
    assert logic.ended_with == ("failed", C.E_INVALID_DIALED_NUMBER)
    finish(w)


def test_connect_to_resource_temporary_connect_and_requery():
    w = Wire("connect 5001; connect-to-resource 6000; temporary-connect 7000; run Again; release")
    logic = Recorder(results={"Again": {}}, connect_event=C.BUSY)
    d = w.link.newCall(logic, "1")
    w.pump()
    assert logic.names() == ["connect", "connectToResource", "temporaryConnect", "runScript", "release"]
    assert [n for d_, n in dialogue_ladder(w) if d_ == "out"] == [
        "NEW_CALL", "EVENT_REPORT", "RESOURCE_CONNECTED", "RUN_SCRIPT_RESULT"]
    assert logic.calls[1][1].label == "6000"
    assert d.state == ENDED
    finish(w)


def test_caller_abandons_and_disconnects():
    w = Wire("run Long")
    logic = Recorder()
    d = w.link.newCall(logic, "1")
    w.pump()
    d.callerGone(cause_code=2)
    w.pump()
    report = [e.message for e in w.ladder if e.name == "EVENT_REPORT"][-1]
    assert report["EventID"] == C.ABANDON and report.get(C.TAG_CauseCode) == 2
    assert w.pg.finished[-1].outcome == "event:ABANDON"
    d.scriptResult(logic.calls[0][1].invoke_id)  # too late: dropped
    assert "RUN_SCRIPT_RESULT" not in w.names()
    w2 = Wire("connect 1 TransferHint=1")
    logic2 = Recorder(connect_event=C.ANSWER)
    d2 = w2.link.newCall(logic2, "1")
    w2.pump()
    d2.callerGone()
    w2.pump()
    assert [e.message for e in w2.ladder if e.name == "EVENT_REPORT"][-1]["EventID"] == C.DISCONNECT
    assert "DIALOGUE_FAILURE_EVENT" not in w2.names()
    finish(w)
    finish(w2)


def test_vru_fails_dialogue_and_unavailable_link():
    w = Wire("run Long")
    logic = Recorder()
    d = w.link.newCall(logic, "1")
    w.pump()
    d.fail()
    w.pump()
    assert w.pg.finished[-1].outcome == "vru-failed:E_UNSPECIFIED_FAILURE"
    assert logic.ended_with == ("local", C.E_UNSPECIFIED_FAILURE)
    w.link.close()
    w.pump()
    with pytest.raises(LinkUnavailable):
        w.link.newCall(logic, "1")
    finish(w)


def test_dialogue_ids_skip_active_and_limits():
    w = Wire("silent", settings=LinkSettings(max_dialogues=2))
    a = w.link.newCall(Recorder(), "1")
    b = w.link.newCall(Recorder(), "1")
    assert (a.id, b.id) == (1, 2)
    with pytest.raises(LinkUnavailable):
        w.link.newCall(Recorder(), "1")
    w.link._next_id = 0xFFFFFFFE - 1
    a.fail()
    c = w.link.newCall(Recorder(), "1")
    assert c.id == 0xFFFFFFFE
    b.fail()
    d = w.link.newCall(Recorder(), "1")
    assert d.id == 1  # wrapped, skipping NULL and 0
    finish(w)


def test_new_call_without_dialed_number_is_invalid_message():
    w = Wire("run X")
    logic = Recorder()
    w.link.newCall(logic, None, ani="1")
    w.pump()
    assert logic.ended_with == ("failed", C.E_INVALID_MESSAGE)
    finish(w)


def test_no_nul_strings_both_ways():
    from ctic.sim.vrupg.pg import PGSettings
    w = Wire("run GetDigits CallVariable1=abc", settings=LinkSettings(nul_terminate=False),
             pg_settings=PGSettings(idle_timeout=20, nul_terminate=False))
    logic = Recorder(results={"GetDigits": dict(call_variables={1: "r"})})
    w.link.newCall(logic, "8005551212")
    w.pump()
    frame = [data for _, _, data in w.bytes_log if data[8:12] == b"\0\0\0\x05"][0]
    assert frame.endswith(b"\x20\x0a8005551212") 
    from ctic.icm.codec import Codec
    assert Codec().decode(frame).floating[0][2] == 0  # received without a NUL, accepted
    assert logic.calls[0][1].call_variables == {1: "abc"}
    finish(w)
