"""
Call-flow tests of the RM routing rules: SIP in from gateway / CTIC / MCP,
SIP out on every leg, and the CDR at the end.  The proxy core and RM router
are the real ones, on a task.Clock.
"""

from __future__ import annotations

import pytest

from ctic.rm.headers import SessionID
from ctic.sip.message import Request, Response
from tests.rm.harness import BASE, CTIC1, CTIC2, GW, MCP1, MCP2, RM, UA, ctic_group, gateway_group
from tests.support import assert_no_pending_calls


def rm_with(use_cti, ctic_extra="", gw_extra="", rm_section="", extra=""):
    ini = BASE + gateway_group(use_cti, gw_extra) + extra + rm_section
    if use_cti or ctic_extra:
        ini += ctic_group(ctic_extra)
    return RM(ini)


def sid_of(msg) -> SessionID:
    return SessionID.parse(msg.headers.get("X-Genesys-GVP-Session-ID"))


def finish(rm):
    rm.clock.advance(40)  # transaction timers run out
    rm.take()


# --- use-cti = 0 ---------------------------------------------------------------


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_use_cti_0_maps_dnis_and_goes_to_mcp():
    rm = rm_with(0)
    gw = UA(rm, GW, "gw")
    gw.invite("sip:800@10.0.0.1:5060;user=phone", "c1")
    out = rm.take(keep_100=True)
    assert [m.status for p, m in out if isinstance(m, Response)] == [100]
    [(peer, inv)] = [(p, m) for p, m in out if isinstance(m, Request)]
    assert (peer.host, peer.port) == (MCP1.host, MCP1.port)
    assert inv.uri.user == "dialog"
    assert inv.uri.params["voicexml"] == "http://apps/sales.vxml"
    assert inv.uri.params["gvp.config.asr.load_once_per_call"] == "1"  # voicexml.* service parameter
    assert "defaultagent" not in inv.uri.params  # CTI parameters never go to the MCP
    sid = sid_of(inv)
    assert sid.params["gvp.rm.datanodes"] == "1"
    assert sid.params["gvp.rm.tenant-id"] == "1.101_sales"
    assert "gvp.rm.cti-call" not in sid.params
    assert inv.record_route[0].uri.params["gvp.rm.datanodes"] == "1"


def ladder(rm, caller, callee, ruri, call_id, headers=()):
    """INVITE in, INVITE out; returns the forwarded INVITE."""
    caller.invite(ruri, call_id, headers)
    return rm.one(to=callee.peer)


def hang_up(rm, caller, callee, inv, call_id, bye_headers=(), ok_headers=()):
    callee.respond(inv, 200)
    ok = rm.one(to=caller.peer)
    caller.ack(inv, ok)
    rm.one(to=callee.peer)
    caller.request("BYE", str(ok.contact[0].uri), call_id, cseq=2, to=str(inv.to.uri), to_tag=ok.to.tag,
                   route=[str(r) for r in ok.record_route], headers=bye_headers)
    bye = rm.one(to=callee.peer)
    callee.respond(bye, 200, headers=ok_headers)
    assert rm.one(to=caller.peer).status == 200
    return ok


def test_use_cti_0_full_call_writes_one_cdr_and_forgets_the_session():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    inv = ladder(rm, gw, mcp, "sip:5550042@10.0.0.1", "c2")
    assert inv.uri.params["voicexml"] == "http://apps/sales.vxml"  # range 5550000-5550099
    hang_up(rm, gw, mcp, inv, "c2")
    [cdr] = rm.cdrs
    assert (cdr.ivr_profile, cdr.tenant, cdr.cti, cdr.dnis, cdr.ani) == ("sales", "Environment", False, "5550042", "gw")
    assert cdr.end_reason == "bye" and cdr.final_status == 200
    assert cdr.gateway == "192.0.2.10:5060" and cdr.mcp == "10.0.0.31:5090" and cdr.ctic is None
    assert cdr.answer_time is not None and cdr.end_time >= cdr.start_time
    assert len(rm.sessions) == 0 and rm.sessions.by_call_id == {}
    finish(rm)
    assert_no_pending_calls(rm.clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_dnis_patterns_and_default_profile():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    inv = ladder(rm, gw, mcp, "sip:1866123@10.0.0.1", "p1")  # 1866xxx
    assert inv.uri.params["voicexml"] == "http://apps/sales.vxml"
    inv = ladder(rm, gw, mcp, "sip:999@10.0.0.1", "p2")  # tenant default
    assert inv.uri.params["voicexml"] == "http://apps/fallback.vxml"
    assert sid_of(inv).params["gvp.rm.tenant-id"] == "1.101_fallback"


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_failed_invite_ends_the_session_with_a_cdr():
    rm = rm_with(0)
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "f1")
    mcp.respond(inv, 486)
    msgs = rm.take()
    assert [m.status for p, m in msgs if isinstance(m, Response)] == [486]
    [cdr] = rm.cdrs
    assert cdr.end_reason == "rejected" and cdr.final_status == 486


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_unknown_source_is_refused():
    rm = rm_with(0)
    stranger = UA(rm, type(GW)("UDP", "203.0.113.9", 5060))
    stranger.invite("sip:800@10.0.0.1", "x1")
    assert rm.one(to=stranger.peer).status == 403


def test_request_uri_scheme_the_rm_cannot_route_is_416():
    # RFC 3261 §16.3 step 1; the router read URI parameters off it and failed (500).
    for use_cti in (0, 1):
        rm = rm_with(use_cti)
        gw = UA(rm, GW, "gw")
        gw.invite("urn:service:sos", f"u{use_cti}")
        assert rm.one(to=GW).status == 416
        assert rm.sessions.by_guid == {}
        finish(rm)
        assert_no_pending_calls(rm.clock)


# --- use-cti = 1 ---------------------------------------------------------------


def test_use_cti_1_goes_to_ctic_unmapped_then_ctic_invite_is_mapped():
    rm = rm_with(1, rm_section="[rm]\nsip-header-for-cti-dnis = X-CTI-DNIS\n")
    gw, ctic, mcp = UA(rm, GW, "gw"), UA(rm, CTIC1, "ctic"), UA(rm, MCP1, "mcp")
    a_out = ladder(rm, gw, ctic, "sip:chan17@10.0.0.1", "A")
    sid = sid_of(a_out)
    assert sid.params == {"gvp.rm.datanodes": "1", "gvp.rm.cti-call": "1"}  # no tenant-id with use-cti=1
    assert a_out.uri.user == "chan17" and "DefaultAgent" not in a_out.uri.params
    # The CTIC, a B2BUA, places leg B: DNIS in the configured header.
    b_out = ladder(rm, ctic, mcp, "sip:chan17@10.0.0.1", "B",
                   headers=[f"X-Genesys-GVP-Session-ID: {sid}", "X-CTI-DNIS: <sip:800@ivr>"])
    sid_b = sid_of(b_out)
    assert sid_b.guid == sid.guid
    assert sid_b.params["gvp.rm.tenant-id"] == "1.101_sales"  # added when mapping from the CTIC's INVITE
    assert sid_b.params["gvp.rm.cti-call"] == "1"
    assert b_out.uri.params["voicexml"] == "http://apps/sales.vxml"
    # 200 OK back to the CTIC carries the CTI service parameters: mapped at this point.
    mcp.respond(b_out, 200)
    ok_b = rm.one(to=ctic.peer)
    assert ok_b.headers.get("X-Genesys-GVP-CTI-Params") == "DefaultAgent=5000;TransferOnCTI=Yes"
    ctic.ack(b_out, ok_b)
    rm.one(to=mcp.peer)
    # Leg A answered by the CTIC: no CTI-Params there.
    ctic.respond(a_out, 200)
    ok_a = rm.one(to=gw.peer)
    assert ok_a.headers.get("X-Genesys-GVP-CTI-Params") is None
    gw.ack(a_out, ok_a)
    rm.one(to=ctic.peer)
    # Caller hangs up: BYE A to the CTIC; the CTIC's 200 carries X-Genesys-GVP-CDR.
    gw.request("BYE", str(ok_a.contact[0].uri), "A", cseq=2, to=str(a_out.to.uri), to_tag=ok_a.to.tag,
               route=[str(r) for r in ok_a.record_route])
    bye_a = rm.one(to=ctic.peer)
    ctic.respond(bye_a, 200, headers=["X-Genesys-GVP-CDR: call-disposition=abandoned;queue-wait-time=12"])
    rm.one(to=gw.peer)
    assert rm.cdrs == []  # leg B still up
    # CTIC ends leg B.
    ctic.request("BYE", str(ok_b.contact[0].uri), "B", cseq=2, to=str(b_out.to.uri), to_tag=ok_b.to.tag,
                 route=[str(r) for r in ok_b.record_route])
    bye_b = rm.one(to=mcp.peer)
    mcp.respond(bye_b, 200)
    rm.one(to=ctic.peer)
    [cdr] = rm.cdrs
    assert cdr.cti and cdr.use_cti == 1 and cdr.ivr_profile == "sales" and cdr.dnis == "800"
    assert cdr.call_disposition == "abandoned" and cdr.queue_wait_time == 12
    assert cdr.ctic == "10.0.0.21:5070" and cdr.call_id == "A"
    assert sorted(leg["kind"] for leg in cdr.legs) == ["ctic-mcp", "gateway"]
    assert all(m.usage == 0 for g in rm.router.groups for m in g.members)
    finish(rm)
    assert_no_pending_calls(rm.clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_dnis_defaults_to_request_uri_user_and_bye_from_ctic_carries_cdr():
    rm = rm_with(1)
    gw, ctic, mcp = UA(rm, GW, "gw"), UA(rm, CTIC1, "ctic"), UA(rm, MCP1, "mcp")
    a_out = ladder(rm, gw, ctic, "sip:chan1@10.0.0.1", "A")
    b_out = ladder(rm, ctic, mcp, "sip:5550001@10.0.0.1;CustomerID=42", "B",
                   headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a_out)}"])
    # attached data passes to the MCP, the parameter name exactly as the CTIC wrote it
    assert dict(b_out.uri.params)["CustomerID"] == "42" and ";CustomerID=42" in str(b_out.uri)
    assert b_out.uri.params["voicexml"] == "http://apps/sales.vxml"
    hang_up(rm, ctic, mcp, b_out, "B", bye_headers=["X-Genesys-GVP-CDR: call-disposition=transferred;x=1"])
    ctic.respond(a_out, 486)  # any error: the next CTIC, then fail-over-cti-handling (reject)
    second = [m for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"][0]
    UA(rm, CTIC2).respond(second, 486)
    assert [m.status for p, m in rm.take() if isinstance(m, Response)] == [486]
    [cdr] = rm.cdrs
    assert cdr.call_disposition == "transferred" and cdr.extra["x"] == "1"


# --- use-cti = 2 ---------------------------------------------------------------


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_use_cti_2_cti_allow_unset_sends_cti_parameters_and_tenant_to_ctic():
    rm = rm_with(2)
    gw, ctic = UA(rm, GW, "gw"), UA(rm, CTIC1, "ctic")
    out = ladder(rm, gw, ctic, "sip:800@10.0.0.1", "A")
    assert out.uri.params["defaultagent"] == "5000" and out.uri.params["transferoncti"] == "Yes"
    assert "voicexml" not in out.uri.params
    sid = sid_of(out)
    assert sid.params["gvp.rm.cti-call"] == "1" and sid.params["gvp.rm.tenant-id"] == "1.101_sales"


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_use_cti_2_cti_allow_true_and_false():
    policy = "\n[ivr-profile:sales/gvp.policy]\ncti-allow = {}\n"
    rm = rm_with(2, extra=policy.format("true"))
    UA(rm, GW, "gw").invite("sip:800@10.0.0.1", "A")
    assert rm.one(to=CTIC1).uri.params["defaultagent"] == "5000"
    rm = rm_with(2, extra=policy.format("false"))
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1)
    inv = ladder(rm, gw, mcp, "sip:800@10.0.0.1", "A")
    assert "gvp.rm.cti-call" not in sid_of(inv).params
    hang_up(rm, gw, mcp, inv, "A")
    assert rm.cdrs[0].cti is False and rm.cdrs[0].use_cti == 2


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_use_cti_2_ctic_invite_of_a_mapped_call_gets_no_cti_params():
    rm = rm_with(2)
    gw, ctic, mcp = UA(rm, GW, "gw"), UA(rm, CTIC1, "ctic"), UA(rm, MCP1, "mcp")
    a_out = ladder(rm, gw, ctic, "sip:800@10.0.0.1", "A")
    b_out = ladder(rm, ctic, mcp, "sip:800@10.0.0.1", "B", headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a_out)}"])
    mcp.respond(b_out, 200)
    assert rm.one(to=ctic.peer).headers.get("X-Genesys-GVP-CTI-Params") is None


# --- outbound ------------------------------------------------------------------


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_outbound_goes_to_the_gateway_the_call_came_from():
    rm = rm_with(1)
    gw, ctic = UA(rm, GW, "gw"), UA(rm, CTIC1, "ctic")
    a_out = ladder(rm, gw, ctic, "sip:chan1@10.0.0.1", "A")
    ctic.invite("sip:6001@10.0.0.1;gvp.ctic.outbound=1", "O1", headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a_out)}"])
    out = rm.one(to=GW)
    assert out.uri.user == "6001" and "gvp.ctic.outbound" not in out.uri.params
    # gvp.ctic.outbound=0 is inbound: to an MCP
    ctic.invite("sip:800@10.0.0.1;gvp.ctic.outbound=0", "I1", headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a_out)}"])
    rm.one(to=MCP1)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_mcp_outbound_and_refer_carry_cti_parameters():
    rm = rm_with(2)
    gw, ctic, mcp = UA(rm, GW, "gw"), UA(rm, CTIC1, "ctic"), UA(rm, MCP1, "mcp")
    a_out = ladder(rm, gw, ctic, "sip:800@10.0.0.1", "A")
    sid = sid_of(a_out)
    mcp.invite("sip:7000@10.0.0.1", "M1", headers=[f"X-Genesys-GVP-Session-ID: {sid}"])
    out = rm.one(to=ctic.peer)  # the CTIC of the session places it on the network
    assert (out.uri.user, out.uri.host, out.uri.port) == ("7000", CTIC1.host, CTIC1.port)
    assert out.uri.params["defaultagent"] == "5000"
    assert sid_of(out).guid == sid.guid
    # Not a CTI session: straight to the gateway the call came from.
    rm0 = rm_with(0)
    gw0, mcp0 = UA(rm0, GW, "gw"), UA(rm0, MCP1, "mcp")
    call = ladder(rm0, gw0, mcp0, "sip:800@10.0.0.1", "P")
    mcp0.invite("sip:7000@10.0.0.1", "M2", headers=[f"X-Genesys-GVP-Session-ID: {sid_of(call)}"])
    out = rm0.one(to=GW)
    assert "defaultagent" not in out.uri.params
    # REFER from the MCP inside leg B goes to the CTIC with the parameters.
    b_out = ladder(rm, ctic, mcp, "sip:800@10.0.0.1", "B", headers=[f"X-Genesys-GVP-Session-ID: {sid}"])
    mcp.respond(b_out, 200)
    ok = rm.one(to=ctic.peer)
    mcp.request("REFER", f"sip:ctic@{CTIC1.host}:{CTIC1.port}", "B", cseq=5, from_tag="uas", to_tag="ft",
                to=str(b_out.from_.uri), route=[str(r) for r in reversed(ok.record_route)],
                headers=["Refer-To: <sip:agent@example.com>"])
    refer = rm.one(to=ctic.peer)
    assert refer.method == "REFER"
    assert refer.uri.params["defaultagent"] == "5000" and refer.uri.params["transferoncti"] == "Yes"


# --- failures ------------------------------------------------------------------


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_error_retries_next_ctic():
    rm = rm_with(1)
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    out = ladder(rm, gw, c1, "sip:chan@10.0.0.1", "A")
    c1.respond(out, 500)
    msgs = rm.take()
    assert [(p.host, m.method if isinstance(m, Request) else m.status) for p, m in msgs] == [
        (CTIC1.host, "ACK"), (CTIC2.host, "INVITE")]


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_all_ctics_failed_applies_fail_over_cti_handling():
    rm = rm_with(1, ctic_extra="fail-over-cti-handling = answer")
    gw, c1, c2 = UA(rm, GW, "gw"), UA(rm, CTIC1), UA(rm, CTIC2)
    out = ladder(rm, gw, c1, "sip:800@10.0.0.1", "A")
    c1.respond(out, 500)
    out2 = [m for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"][0]
    c2.respond(out2, 503)
    inv = [m for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"][0]
    assert inv.uri.params["voicexml"] == "http://apps/sales.vxml"  # answered as non-CTI
    assert "gvp.rm.cti-call" not in sid_of(inv).params


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_fail_over_reject_default_uses_last_code():
    rm = rm_with(1)
    gw, c1, c2 = UA(rm, GW, "gw"), UA(rm, CTIC1), UA(rm, CTIC2)
    c1.respond(ladder(rm, gw, c1, "sip:800@10.0.0.1", "A"), 500)
    out2 = [m for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"][0]
    c2.respond(out2, 502)
    assert [m.status for p, m in rm.take() if isinstance(m, Response)] == [502]
    [cdr] = rm.cdrs
    assert cdr.final_status == 502 and "fail-over-cti-handling" in cdr.extra["rm.cti-failure"]


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_listed_code_applies_group_action_without_retry():
    rm = rm_with(1, ctic_extra="cti-unavailable-respcode = 503;480\ncti-unavailable-action = reject")
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    c1.respond(ladder(rm, gw, c1, "sip:800@10.0.0.1", "A"), 480)
    msgs = rm.take()
    assert [m.status for p, m in msgs if isinstance(m, Response)] == [480]
    assert not [m for p, m in msgs if isinstance(m, Request) and m.method == "INVITE"]


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_listed_code_falls_back_to_server_action_script():
    rm = rm_with(1, ctic_extra="cti-unavailable-respcode = 503",
                 rm_section="[rm]\ncti-unavailable-action = script;annc;http://apps/sorry.wav\n")
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    c1.respond(ladder(rm, gw, c1, "sip:800@10.0.0.1", "A"), 503)
    inv = [(p, m) for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"]
    [(peer, netann)] = inv
    assert peer.host == MCP1.host
    assert netann.uri.user == "annc" and netann.uri.params["play"] == "http://apps/sorry.wav"


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_server_respcode_applies_when_group_has_none_and_unset_action_retries():
    rm = rm_with(1, rm_section="[rm]\ncti-unavailable-respcode = 503\n")
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    c1.respond(ladder(rm, gw, c1, "sip:800@10.0.0.1", "A"), 503)
    assert [p.host for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"] == [CTIC2.host]


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_404_falls_back_to_voicexml_with_capability():
    extra = f"\n[mcp-group:asr]\nmembers = {MCP2.host}:{MCP2.port}\ncapabilities = asr\nmonitor-method = none\n"
    rm = rm_with(1, extra=extra)
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    c1.respond(ladder(rm, gw, c1, "sip:800@10.0.0.1;gvp.rm.resource-req=asr", "A"), 404)
    [(peer, inv)] = [(p, m) for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"]
    assert peer.host == MCP2.host  # the capability picked the group
    assert "gvp.rm.resource-req" not in inv.uri.params


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_404_fallback_ignores_capability_when_removed():
    extra = f"\n[mcp-group:asr]\nmembers = {MCP2.host}:{MCP2.port}\ncapabilities = asr\nmonitor-method = none\n"
    rm = rm_with(1, extra=extra, gw_extra="remove-ruri-capability-on-fallback = true")
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    c1.respond(ladder(rm, gw, c1, "sip:800@10.0.0.1;gvp.rm.resource-req=asr", "A"), 404)
    [(peer, inv)] = [(p, m) for p, m in rm.take() if isinstance(m, Request) and m.method == "INVITE"]
    assert peer.host == MCP1.host


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_group_at_capacity_applies_fail_over():
    rm = rm_with(1, ctic_extra="port-capacity = 1\nfail-over-cti-handling = script;voicexml;http://apps/busy.vxml")
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    ladder(rm, gw, c1, "sip:800@10.0.0.1", "A")
    gw.invite("sip:800@10.0.0.1", "A2")
    [(peer, inv)] = [(p, m) for p, m in rm.take() if isinstance(m, Request)]
    assert peer.host == MCP1.host and inv.uri.user == "dialog"
    assert inv.uri.params["voicexml"] == "http://apps/busy.vxml"


def test_cancel_from_gateway_reaches_ctic_and_ends_session():
    rm = rm_with(1)
    gw, c1 = UA(rm, GW, "gw"), UA(rm, CTIC1)
    inv_in = gw.invite("sip:800@10.0.0.1", "A")
    out = rm.one(to=c1.peer)
    c1.respond(out, 180)
    assert rm.one(to=gw.peer).status == 180
    gw.cancel(inv_in)
    msgs = rm.take()
    assert [(p.host, m.status if isinstance(m, Response) else m.method) for p, m in msgs] == [
        (GW.host, 200), (CTIC1.host, "CANCEL")]
    cancel = msgs[1][1]
    c1.respond(cancel, 200)
    c1.respond(out, 487)
    msgs = rm.take()
    assert (GW.host, 487) in [(p.host, m.status) for p, m in msgs if isinstance(m, Response)]
    [cdr] = rm.cdrs
    assert cdr.end_reason == "cancelled"
    assert rm.router.ctic_groups["Environment"].usage == 0
    finish(rm)
    assert_no_pending_calls(rm.clock)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_options_to_the_rm_is_answered():
    rm = rm_with(0)
    gw = UA(rm, GW, "gw")
    gw.request("OPTIONS", "sip:10.0.0.1:5060", "o1")
    ok = rm.one(to=GW)
    assert ok.status == 200 and "INVITE" in ok.headers.get("Allow")
