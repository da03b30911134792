"""
The client against the simulator over real loopback sockets: in-process in
all three deployment modes, and against `twistd ivr-server-sim` run as a
real process with the shipped configuration.
"""

import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from ctic.ivrserver.client import ClientConfig, IVRServerClient
from ctic.sim.ivrserver.server import IVRServerSim
from tests.ivrserver.harness import lab_model
from tests.support import ROOT, free_port, twistd


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class LoopbackTests(unittest.TestCase):
    timeout = 20

    def setUp(self):
        self.sim = IVRServerSim(reactor, lab_model())
        self.port = reactor.listenTCP(0, self.sim, interface="127.0.0.1")
        address = ("127.0.0.1", self.port.getHost().port)
        self.client = IVRServerClient(reactor, ClientConfig("IVR1", (address,), keepalive_interval=1.0,
                                                            reconnect_delay=0.2, request_timeout=3.0))
        self.client.startService()
        return self.client.when_ready()

    @defer.inlineCallbacks
    def tearDown(self):
        self.client.stopService()
        yield sleep(0.05)
        self.sim.drop_links()
        yield self.port.stopListening()
        yield sleep(0.05)

    @defer.inlineCallbacks
    def test_behind(self):
        call = self.client.new_call("01")
        yield call.started
        info = yield call.call_info()
        self.assertEqual((info.ANI, info.DNIS, info.CalledNum), ("4155550101", "8005550100", "01"))
        self.assertTrue(info.ConnId and info.UUID)
        yield call.set_data({"Lang": "EN", "Tries": 2})
        data = yield call.get_data("Lang", "Tries", "Language")
        self.assertEqual(data, {"Lang": "EN", "Tries": 2, "Language": "EN"})
        yield call.delete_data("Lang")
        route = yield call.route_request("7900")
        self.assertEqual(route.Dest, "5550800")
        yield call.init_transfer(route.Dest)
        done = yield call.complete_transfer()
        self.assertEqual(done.Event, "XferComplete")
        call.end(active_release=False)
        yield sleep(0.1)
        self.assertEqual(self.sim.calls, {})

    @defer.inlineCallbacks
    def test_front(self):
        call = self.client.new_call("F1", mode="front", ani="4155550123", dnis="8005551212")
        yield call.started
        info = yield call.call_info()
        self.assertEqual((info.ANI, info.DNIS), ("4155550123", "8005551212"))
        self.assertEqual((yield call.route_request("7901")).RouteType, "Default")
        self.assertEqual((yield call.access_number("5550900", "SiteB")), "2200")
        call.end()

    @defer.inlineCallbacks
    def test_network(self):
        call = self.client.new_call("8800", mode="network", ani="4155550123", dnis="8005551212",
                                    udata={"Segment": "Gold"})
        route = yield call.route_request(ced="1234")
        self.assertEqual((route.RouteType, route.Dest), ("Normal", "5550801"))
        self.assertEqual((yield call.get_data("Segment")), {"Segment": "Gold"})
        call.connected()
        call.end()
        yield sleep(0.1)
        self.assertEqual(self.sim.calls, {})


class RealProcessTests(unittest.TestCase):
    """`twistd -n ivr-server-sim` as a real process, with the shipped configuration on a free port."""

    timeout = 30

    @defer.inlineCallbacks
    def test_client_completes_a_session_and_a_call(self):
        port = free_port()
        shipped = (ROOT / "etc" / "ivr-server-sim.ini").read_text()
        assert "gli-server-address = 127.0.0.1:3021" in shipped
        tmp = Path(tempfile.mkdtemp(prefix="ivr-server-sim-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        path = tmp / "ivr-server-sim.ini"
        path.write_text(shipped.replace("127.0.0.1:3021", f"127.0.0.1:{port}"))
        with twistd("ivr-server-sim", "--config", str(path), ready_port=port) as proc:
            client = IVRServerClient(reactor, ClientConfig("IVR1", (("127.0.0.1", port),), request_timeout=5.0))
            client.startService()
            try:
                yield client.when_ready()
                self.assertIn("ctic ivr-server-sim", client.server_version)
                call = client.new_call("01")
                yield call.started
                info = yield call.call_info()
                self.assertEqual((info.ANI, info.DNIS, info.PortDN), ("4155550101", "8005550100", "3001"))
                self.assertEqual((yield call.get_data("Segment")), {"Segment": "Gold"})
                self.assertEqual((yield call.route_request("7900")).Dest, "5550800")
                self.assertEqual((yield call.one_step_transfer("5550800")).Event, "XferComplete")
                self.assertEqual((yield call.peek_statistic("ExpectedWaitTime")), "42")
                call.end(active_release=False)
                yield sleep(0.1)
            finally:
                client.stopService()
                yield sleep(0.1)
        log = proc.log_path.read_text()
        self.assertIn("ended by the client", log)
