"""
The shipped CTI-lab RM configuration, etc/rm-cti.ini, routed in memory: on
one host resources are told apart by port, an exact host:port gateway member
wins over the host:* wildcard, and a CTIC's or MCP's own INVITE is never
taken for a gateway call, also when it arrives over TCP from an ephemeral
port.  The commented use-cti = 2 / cti-allow examples are exercised too.
"""

from __future__ import annotations

import pytest

import re

from ctic.sip.transport import Peer
from tests.rm.harness import RM, UA
from tests.rm.test_rm_routing import ladder, sid_of
from tests.support import ROOT

SHIPPED = (ROOT / "etc" / "rm-cti.ini").read_text()
GENESYS_GW = Peer("UDP", "127.0.0.1", 5061)
ICM_GW = Peer("UDP", "127.0.0.1", 5062)
PLAIN_GW = Peer("UDP", "127.0.0.1", 5999)
CTIC_GENESYS = Peer("UDP", "127.0.0.1", 5070)
CTIC_ICM = Peer("UDP", "127.0.0.1", 5072)
MCP = Peer("UDP", "127.0.0.1", 5090)


def uncommented_examples(text: str) -> str:
    """The file with its commented example sections turned on."""
    head, _, examples = text.partition("; --- examples")
    return head + "\n".join(line[1:] for line in examples.splitlines() if re.match(r";[\[a-z]", line)) + "\n"


def lab(text=SHIPPED):
    return RM(text)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_each_gateway_port_reaches_its_tenants_ctic_and_others_go_straight_to_an_mcp():
    rm = lab()
    out = ladder(rm, UA(rm, GENESYS_GW, "gw"), UA(rm, CTIC_GENESYS), "sip:3001@127.0.0.1", "G")
    assert sid_of(out).params["gvp.rm.cti-call"] == "1" and out.uri.user == "3001"
    out = ladder(rm, UA(rm, ICM_GW, "gw"), UA(rm, CTIC_ICM), "sip:8005551212@127.0.0.1", "I")
    assert sid_of(out).params["gvp.rm.cti-call"] == "1"
    out = ladder(rm, UA(rm, PLAIN_GW, "gw"), UA(rm, MCP), "sip:8005550100@127.0.0.1", "P")
    assert "gvp.rm.cti-call" not in sid_of(out).params
    assert sid_of(out).params["gvp.rm.tenant-id"].endswith("_genesys-default")
    assert out.uri.params["voicexml"] == "file:///var/lib/ctic/default.vxml"


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_leg_b_is_mapped_for_its_tenant_not_taken_for_a_gateway_call():
    rm = lab()
    a = ladder(rm, UA(rm, GENESYS_GW, "gw"), UA(rm, CTIC_GENESYS), "sip:3001@127.0.0.1", "A")
    b = ladder(rm, UA(rm, CTIC_GENESYS, "ctic"), UA(rm, MCP), "sip:8005550100@127.0.0.1", "B",
               headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a)}"])
    assert sid_of(b).guid == sid_of(a).guid
    assert sid_of(b).params["gvp.rm.tenant-id"] == "1.101_genesys-default"
    # The ICM tenant's CTIC maps into the ICM tenant's profiles.
    a = ladder(rm, UA(rm, ICM_GW, "gw"), UA(rm, CTIC_ICM), "sip:1@127.0.0.1", "A2")
    b = ladder(rm, UA(rm, CTIC_ICM, "ctic"), UA(rm, MCP), "sip:8005551212@127.0.0.1", "B2",
               headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a)}"])
    assert sid_of(b).params["gvp.rm.tenant-id"] == "1.102_icm-default"


class EphemeralUA(UA):
    """A peer sending over TCP from an ephemeral port; its Via and Contact name its listening port."""

    def __init__(self, rm, peer, listening, user="ua"):
        super().__init__(rm, peer, user)
        self.listening = listening

    def _via(self):
        return f"SIP/2.0/TCP {self.peer.host}:{self.listening};branch=z9hG4bKeph{id(self)}{len(self.rm.wire.sent)}"

    def request(self, *args, headers=(), **kwargs):
        return super().request(*args, headers=list(headers), **kwargs)


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_ctic_over_tcp_from_an_ephemeral_port_is_known_by_its_via():
    rm = lab()
    a = ladder(rm, UA(rm, GENESYS_GW, "gw"), UA(rm, CTIC_GENESYS), "sip:3001@127.0.0.1", "A")
    ctic = EphemeralUA(rm, Peer("TCP", "127.0.0.1", 41234), 5070, "ctic")
    ctic.invite("sip:8005550100@127.0.0.1", "B", headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a)}"])
    b = rm.one(to=MCP)
    assert sid_of(b).guid == sid_of(a).guid  # leg B of the same session, not a new gateway call
    # A Via claiming another host's CTIC does not count: the wildcard gateway group takes it.
    spoof = EphemeralUA(rm, Peer("TCP", "127.0.0.2", 41235), 5070, "x")
    spoof.invite("sip:8005550100@127.0.0.1", "S")
    assert [m.status for _, m in rm.take()] == [403]  # 127.0.0.2 is no configured resource


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_mcp_invite_is_never_a_gateway_call():
    rm = lab()
    a = ladder(rm, UA(rm, GENESYS_GW, "gw"), UA(rm, CTIC_GENESYS), "sip:3001@127.0.0.1", "A")
    ladder(rm, UA(rm, CTIC_GENESYS, "ctic"), UA(rm, MCP), "sip:8005550100@127.0.0.1", "B",
           headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a)}"])
    out = ladder(rm, UA(rm, MCP, "mcp"), UA(rm, CTIC_GENESYS), "sip:5550800@127.0.0.1", "M",
                 headers=[f"X-Genesys-GVP-Session-ID: {sid_of(a)}"])
    assert out.uri.user == "5550800"  # to the session's CTIC, which places it with gvp.ctic.outbound=1
    # With no session, and a Request-URI naming no gateway, the MCP's INVITE goes nowhere
    # rather than being routed as a new call.
    UA(rm, MCP, "mcp").invite("sip:5550800@192.0.2.99", "M2")
    assert [m.status for _, m in rm.take()] == [404]


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_use_cti_2_examples_follow_cti_allow():
    rm = lab(uncommented_examples(SHIPPED))
    front = Peer("UDP", "127.0.0.1", 5063)
    out = ladder(rm, UA(rm, front, "gw"), UA(rm, CTIC_GENESYS), "sip:8005550100@127.0.0.1", "F1")
    assert sid_of(out).params["gvp.rm.tenant-id"] == "1.101_sales"  # mapped first, then to the CTIC
    assert out.uri.params["defaultagent"] == "5000" and out.uri.params["transferoncti"] == "Yes"
    out = ladder(rm, UA(rm, front, "gw"), UA(rm, MCP), "sip:8005550199@127.0.0.1", "F2")  # cti-allow = false
    assert "gvp.rm.cti-call" not in sid_of(out).params
    assert out.uri.params["voicexml"] == "http://apps.example.com/self-service.vxml"
    out = ladder(rm, UA(rm, front, "gw"), UA(rm, CTIC_GENESYS), "sip:1234@127.0.0.1", "F3")  # cti-allow unset
    assert sid_of(out).params["gvp.rm.tenant-id"] == "1.101_genesys-default"


def test_shipped_cti_config_passes_the_start_checks():
    from ctic.rm.tap import Options

    options = Options()
    options.parseOptions(["--config", str(ROOT / "etc" / "rm-cti.ini")])
    assert sorted(options.model.ctic_groups) == ["Genesys", "ICM"]
