"""
A fake network on a task.Clock: the client's connectTCP reaches in-process
simulators through twisted.test.iosim pumps, so reconnects, keep-alives and
switchover run in simulated time with no sockets.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.test import iosim

from ctic.ivrserver.client import ClientConfig, IVRServerClient
from ctic.sim.ivrserver.model import Agent, Port, Route, SimModel
from ctic.sim.ivrserver.server import IVRServerSim


class _Connector:
    def __init__(self, net, pending):
        self.net = net
        self.pending = pending

    def stopConnecting(self):
        if self.pending.active():
            self.pending.cancel()


class FakeNetwork(Clock):
    """IReactorTime + the connectTCP the client uses."""

    def __init__(self):
        super().__init__()
        self.servers: dict = {}
        self.pumps: list = []
        self.attempts: list = []

    def connectTCP(self, host, port, factory, timeout=30, bindAddress=None):
        self.attempts.append((host, port))
        pending = self.callLater(0, self._complete, host, port, factory)
        return _Connector(self, pending)

    def _complete(self, host, port, factory):
        sim = self.servers.get((host, port))
        if sim is None:
            factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
            return
        client_addr = IPv4Address("TCP", "127.0.0.1", 40000 + len(self.pumps))
        server_addr = IPv4Address("TCP", host, port)
        server_proto = sim.buildProtocol(client_addr)
        if server_proto is None:
            factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
            return
        client_proto = factory.buildProtocol(server_addr)
        server_io = iosim.FakeTransport(server_proto, True, server_addr, client_addr)
        client_io = iosim.FakeTransport(client_proto, False, client_addr, server_addr)
        pump = iosim.connect(server_proto, server_io, client_proto, client_io, greet=False, clock=self)
        self.pumps.append(pump)

    def flush(self):
        for _ in range(200):
            super().advance(0)
            moved = False
            for pump in list(self.pumps):
                if pump.pump(advanceClock=False):
                    moved = True
            self.pumps = [p for p in self.pumps
                          if not (p.clientIO.disconnected and p.serverIO.disconnected)]
            if not moved and not [c for c in self.getDelayedCalls() if c.getTime() <= self.seconds()]:
                return

    def advance(self, amount):
        self.flush()
        super().advance(amount)
        self.flush()

    def run(self, seconds, step=0.05):
        """Advance simulated time in small steps, pumping in between."""
        t = 0.0
        while t < seconds:
            self.advance(step)
            t += step


def lab_model(**kw) -> SimModel:
    ports = {
        "01": Port("01", "behind", "3001", ani="4155550101", dnis="8005550100", other_dn="3081",
                   user_data=__import__("ctic.ivrserver.userdata", fromlist=["kvlist"]).kvlist({"Language": "EN"})),
        "02": Port("02", "behind", "3002", ring=False),
        "F1": Port("F1", "front"),
    }
    routes = {
        "7900": Route("7900", dest="5550800"),
        "7901": Route("7901", "default"),
        "7902": Route("7902", "timeout"),
        "8800": Route("8800", dest="5550801", network=True),
    }
    agents = {"5550800": Agent("5550800"), "5550801": Agent("5550801", "busy"),
              "5550802": Agent("5550802", "error", "1183")}
    defaults = dict(ports=ports, routes=routes, agents=agents, ring_delay=0.1, answer_delay=0.1,
                    statistics={"ExpectedWaitTime": "42"}, access_numbers={"SiteB": "2200"})
    defaults.update(kw)
    return SimModel(**defaults)


def setup(servers=(("10.0.0.1", 3021),), sims=None, **config):
    """A FakeNetwork with a simulator on each address in C{sims}, and a started client."""
    net = FakeNetwork()
    for addr in (sims if sims is not None else servers[:1]):
        net.servers[addr] = IVRServerSim(net, lab_model())
    cfg = dict(client_name="IVR1", servers=tuple(servers), keepalive_interval=5.0, reconnect_delay=1.0,
               request_timeout=3.0)
    cfg.update(config)
    client = IVRServerClient(net, ClientConfig(**cfg))
    client.startService()
    net.flush()
    return net, client
