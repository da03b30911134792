"""
Our VRU side and the VRU-PG simulator over real loopback TCP (one reactor):
a duplex PG holds a session, calls run, side B takes over mid-call, and the
whole conversation is decoded by tshark's ged125 dissector as an oracle.
"""

from __future__ import annotations

import os

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from ctic.icm import constants as C
from ctic.icm.events import MessageEvents
from ctic.icm.listener import TenantService, VRUProtocol
from ctic.icm.settings import LinkSettings
from ctic.sim.vrupg.pg import PGSettings
from ctic.sim.vrupg.protocol import SimPGService
from ctic.sim.vrupg.treatment import Treatment, parse_steps
from tests.icm.harness import Recorder
from tests.icm.pcap import PcapWriter
from tests.support import free_port, requires_tool


async def until(predicate, timeout=5.0):
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        await task.deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


class LoopbackTests(unittest.TestCase):
    timeout = 20

    def setUp(self):
        self.port = free_port()
        self.events = MessageEvents()
        self.ladder = []
        self.events.subscribe(self.ladder.append)
        self.wire = self.record_wire()
        self.settings = LinkSettings(ecc_names=["user.account"], instruction_timeout=5)
        self.vru = TenantService("Tenant1", [self.port], "127.0.0.1", self.settings, reactor, self.events)
        self.vru.startService()
        plays = [Treatment("T1", ["8005551212"], parse_steps(
                     "run GetDigits CallVariable1=abc ECC:user.account=42; connect 5001")),
                 Treatment("T2", ["8005550000"], parse_steps("run Long; delay 0.3; release"))]
        pg_settings = PGSettings(sides={"A": ("127.0.0.1", self.port), "B": ("127.0.0.1", self.port)},
                                 idle_timeout=4)
        self.sim = SimPGService(pg_settings, plays, reactor)
        self.sim.startService()
        self.link = self.vru.links[0]
        self.pg = self.sim.pg

    def record_wire(self):
        """
        (client address, "in"/"out", bytes) for every read and write of the
        CTIC's PG connections, in the order they happened: the bytes that
        really crossed the loopback sockets, for the tshark oracle.
        """
        wire = []
        made, received = VRUProtocol.connectionMade, VRUProtocol.dataReceived

        def connectionMade(proto):
            peer = proto.transport.getPeer()
            proto.wire_client = client = (peer.host, peer.port)
            write = proto.transport.write

            def recording_write(data):
                wire.append((client, "out", bytes(data)))
                write(data)

            proto.transport.write = recording_write  # before the session takes it
            made(proto)

        def dataReceived(proto, data):
            wire.append((proto.wire_client, "in", bytes(data)))
            received(proto, data)

        self.patch(VRUProtocol, "connectionMade", connectionMade)
        self.patch(VRUProtocol, "dataReceived", dataReceived)
        return wire

    async def _tearDown(self):
        await self.sim.stopService()
        await self.vru.stopService()
        await task.deferLater(reactor, 0.1, lambda: None)

    def tearDown(self):
        return defer.ensureDeferred(self._tearDown())

    @requires_tool("tshark")
    def test_session_calls_takeover_and_tshark(self):
        return defer.ensureDeferred(self._flow())

    async def _flow(self):
        await until(lambda: self.link.ready and len(self.link.connections) == 2)
        await until(lambda: self.pg.standby() is not None)
        # a heartbeat exchange (IdleTimeout 4 s → the PG sends one after 1 s of silence)
        await until(lambda: any(e.name == "HEARTBEAT_CONF" for e in self.ladder), 3)
        # call 1: NEW_CALL, RUN_SCRIPT_REQ/RESULT, CONNECT, EVENT_REPORT
        logic = Recorder(results={"GetDigits": dict(ced="1234", call_variables={2: "xyz"},
                                                    ecc={"user.account": "43"})},
                         connect_event=C.ANSWER)
        self.tenant = self.vru.tenant
        first = self.tenant.newCall(logic, "8005551212", ani="4085551234", dnis="5551212")
        await until(lambda: logic.ended_with is not None)
        self.assertEqual(logic.ended_with, ("reported", None))
        self.assertEqual(logic.calls[0][1].ecc, {"user.account": "42"})
        # call 2: side B takes over while the script runs; the dialogue continues
        logic2 = Recorder()
        second = self.tenant.newCall(logic2, "8005550000")
        await until(lambda: logic2.names() == ["runScript"])
        old = self.link.active
        self.assertTrue(self.pg.failover("supersede"))
        await until(lambda: self.link.ready and self.link.active is not old)
        second.scriptResult(logic2.calls[0][1].invoke_id)
        await until(lambda: logic2.ended_with is not None)
        self.assertEqual(logic2.ended_with, ("released", None))
        self.assertEqual(self.link.takeovers, 1)
        self.assertEqual([d.outcome for d in self.pg.finished], ["completed", "released"])
        self.assertNotEqual(first.id, second.id)
        # the old side A reconnects and stays quiescent
        await until(lambda: len(self.link.connections) == 2)
        self.link.close()
        await until(lambda: not self.link.connections)
        self.check_with_tshark()

    def check_with_tshark(self):
        import tempfile
        self.assertTrue(any(d == "in" for _, d, _ in self.wire) and any(d == "out" for _, d, _ in self.wire))
        pcap = PcapWriter()
        server = ("127.0.0.1", self.port)
        opened = set()
        for client, direction, data in self.wire:
            if client not in opened:
                pcap.open(client, server)
                opened.add(client)
            if direction == "in":
                pcap.data(client, server, data)
            else:
                pcap.data(server, client, data)
        for client in opened:
            pcap.close(client, server)
        path = tempfile.mktemp(suffix=".pcap", prefix="ged125-")
        pcap.write(path)
        pcap.write(path)
        self.addCleanup(os.unlink, path)
        from tests.icm.tshark_oracle import (
            assert_matches, expected_dissector_complaints, expert_problems, read_pdml)

        sent = [e.message for e in self.ladder]
        assert_matches(self, read_pdml(path, self.port), sent)
        # Wireshark's dissector is wrong about optional floating parts (see tshark_oracle):
        # exactly those messages are flagged, nothing else is malformed or warned about.
        complaints = expected_dissector_complaints(sent)
        self.assertEqual(expert_problems(path, self.port), complaints)
        self.assertIn((C.SERVICE_CONTROL, C.EVENT_REPORT), complaints)
        names = {e.name for e in self.ladder}
        for name in ["OPEN_REQ", "OPEN_CONF", "INIT_SERVICE_CTRL_REQ", "INIT_SERVICE_CTRL_END",
                     "REGISTER_VARIABLES", "HEARTBEAT_REQ", "HEARTBEAT_CONF", "NEW_CALL", "RUN_SCRIPT_REQ",
                     "RUN_SCRIPT_RESULT", "CONNECT", "EVENT_REPORT", "RELEASE", "CLOSE_REQ", "CLOSE_CONF"]:
            self.assertIn(name, names)
