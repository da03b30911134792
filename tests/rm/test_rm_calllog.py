"""
Operator call log: one C{ctic.rm.call} event per call milestone, with
fields the JSON observer carries, for a completed, a rejected and a
caller-cancelled call.
"""

from __future__ import annotations

import pytest

import io
import json

from twisted.logger import LogLevel, globalLogPublisher

from ctic.log import jsonObserver
from tests.rm.harness import CTIC1, GW, MCP1, UA
from tests.rm.test_rm_routing import finish, hang_up, ladder, rm_with


class CallLog:
    """The ctic.rm.call events published while it is open."""

    def __init__(self):
        self.events = []

    def __enter__(self):
        globalLogPublisher.addObserver(self._observe)
        return self

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self._observe)

    def _observe(self, event):
        if event.get("log_namespace") == "ctic.rm.call":
            self.events.append(event)

    def kinds(self):
        return [e["event"] for e in self.events]

    def one(self, kind):
        [e] = [e for e in self.events if e["event"] == kind]
        return e


def test_completed_call_logs_new_routed_answered_ended_cdr_once_each():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv_in = gw.invite("sip:800@10.0.0.1", "L1")
        inv = rm.one(to=MCP1)
        rm.deliver(inv_in, GW)  # the gateway retransmits its INVITE: absorbed, logs nothing
        rm.clock.advance(3)
        rm.take()  # our INVITE's retransmissions to the MCP
        # The callee hangs up: its BYE comes from the MCP side.
        mcp.respond(inv, 200)
        ok = rm.one(to=GW)
        gw.ack(inv, ok)
        rm.one(to=MCP1)
        rm.clock.advance(12)
        mcp.request("BYE", "sip:gw@192.0.2.10:5060", "L1", cseq=1, from_tag="uas", to="sip:gw@192.0.2.10",
                    to_tag="ft", route=[str(r) for r in inv.record_route])
        bye = rm.one(to=GW)
        gw.respond(bye, 200)
        rm.one(to=MCP1)
        finish(rm)
    assert log.kinds() == ["call.new", "call.routed", "call.answered", "call.ended", "cdr.written"]
    sid = log.one("call.new")["gvp_session_id"]
    assert all((e["call_id"], e["gvp_session_id"]) == ("L1", sid) for e in log.events)
    new = log.one("call.new")
    assert (new["ani"], new["dnis"], new["tenant"]) == ("gw", "800", "Environment")
    routed = log.one("call.routed")
    assert (routed["to"], routed["group"], routed["member"], routed["reason"], routed["profile"]) == (
        "MCP", "mcp", "10.0.0.31:5090", "IVR Profile", "sales")
    assert log.one("call.answered")["code"] == 200
    ended = log.one("call.ended")
    assert (ended["by"], ended["reason"], ended["code"], ended["duration"]) == ("callee", "bye", 200, 12)
    assert all(e["log_level"] == LogLevel.info for e in log.events)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_caller_bye_is_ended_by_caller():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "L2")
        hang_up(rm, gw, mcp, inv, "L2")
    assert log.one("call.ended")["by"] == "caller"


def test_rejected_call_logs_failed_with_code_and_phrase_at_warn():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "R1")
        mcp.respond(inv, 486)
        rm.take()
        mcp.respond(inv, 486)  # retransmitted final response: no second event
        finish(rm)
    assert log.kinds() == ["call.new", "call.routed", "call.failed", "cdr.written"]
    failed = log.one("call.failed")
    assert (failed["code"], failed["phrase"], failed["reason"], failed["by"]) == (486, "Reason", "rejected", "callee")
    assert failed["log_level"] == LogLevel.warn


def test_caller_cancelled_cti_call_logs_ended_by_caller():
    rm = rm_with(1)
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    with CallLog() as log:
        inv_in = gw.invite("sip:800@10.0.0.1", "X1")
        out = rm.one(to=CTIC1)
        c1.respond(out, 180)
        rm.take()
        gw.cancel(inv_in)
        cancel = rm.take()[1][1]
        c1.respond(cancel, 200)
        c1.respond(out, 487)
        rm.take()
        finish(rm)
    assert log.kinds() == ["call.new", "call.routed", "call.ended", "cdr.written"]
    routed = log.one("call.routed")
    assert (routed["to"], routed["group"], routed["member"], routed["reason"]) == (
        "CTIC", "ctic", "10.0.0.21:5070", "CTI call")
    ended = log.one("call.ended")
    assert (ended["by"], ended["reason"], ended["code"]) == ("caller", "cancelled", 487)
    assert ended["log_level"] == LogLevel.info


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_retry_logs_a_second_routing_decision_with_the_code():
    rm = rm_with(1)
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    with CallLog() as log:
        out = ladder(rm, gw, c1, "sip:800@10.0.0.1", "T1")
        c1.respond(out, 500)
        rm.take()
    [first, second] = [e for e in log.events if e["event"] == "call.routed"]
    assert (first["member"], first["code"]) == ("10.0.0.21:5070", None)
    assert (second["member"], second["reason"], second["code"]) == ("10.0.0.22:5070", "next CTIC", 500)


class FailingSink:
    def write(self, cdr):
        from twisted.internet import defer

        return defer.fail(OSError("disk full"))

    def close(self):
        pass


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_cdr_write_failure_logs_cdr_failed_at_warn():
    from tests.rm.harness import BASE, RM, gateway_group

    rm = RM(BASE + gateway_group(0), sink=FailingSink())
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "W1")
        mcp.respond(inv, 603)
        rm.take()
    failed = log.one("cdr.failed")
    assert (failed["call_id"], failed["reason"], failed["log_level"]) == ("W1", "disk full", LogLevel.warn)
    assert "cdr.written" not in log.kinds()


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_a_sink_that_raises_still_lets_the_session_go():
    from tests.rm.harness import BASE, RM, gateway_group

    class RaisingSink(FailingSink):
        def write(self, cdr):
            raise OSError("disk gone")

    rm = RM(BASE + gateway_group(0), sink=RaisingSink())
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "W2")
        mcp.respond(inv, 603)
        assert rm.take()[-1][1].status == 603  # after the ACK to the MCP
    assert log.one("cdr.failed")["reason"] == "disk gone"
    assert len(rm.sessions) == 0 and rm.sessions.by_call_id == {} and rm.sessions.writing == 0
    assert rm.router.mcp_groups[0].usage == 0


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_json_observer_carries_the_fields():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "J1")
        mcp.respond(inv, 486)
        rm.take()
    out = io.StringIO()
    observe = jsonObserver(out)
    observe(log.one("call.failed"))
    record = json.loads(out.getvalue())
    assert (record["event"], record["call_id"], record["code"], record["level"]) == ("call.failed", "J1", 486, "warn")
    assert record["msg"].startswith("Call J1 (") and "486 Reason" in record["msg"]


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_shutdown_ends_an_answered_call_by_the_rm():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    with CallLog() as log:
        inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "S1")
        mcp.respond(inv, 200)
        rm.take()
        rm.sessions.close()
    ended = log.one("call.ended")
    assert (ended["by"], ended["reason"]) == ("rm", "shutdown")
