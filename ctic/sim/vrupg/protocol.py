"""
Twisted shell for the simulator: each side of each PG is a C{ClientService}
(reconnecting, with an injected clock) whose protocol only moves bytes into
a L{PGSide}.
"""

from __future__ import annotations

from twisted.application import internet, service
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ctic.sim.vrupg.pg import PGSide, SimPG

log = Logger(namespace="ctic.sim.vrupg")


class PGSideProtocol(Protocol):
    side = None

    def __init__(self, pg, label, clock):
        self.pg = pg
        self.label = label
        self.clock = clock

    def connectionMade(self):
        self.side = PGSide(self.pg, self.label, self.transport.write, self.transport.loseConnection, self.clock)
        self.side.connectionMade()

    def dataReceived(self, data):
        self.side.dataReceived(data)

    def connectionLost(self, reason=None):
        if self.side is not None:
            self.side.connectionLost(reason)


class PGSideFactory(Factory):
    noisy = False

    def __init__(self, pg, label, clock):
        self.pg = pg
        self.label = label
        self.clock = clock

    def buildProtocol(self, addr):
        return PGSideProtocol(self.pg, self.label, self.clock)


def _retry(attempt):
    return min(0.2 * (2 ** attempt), 5.0)


class SimPGService(service.MultiService):
    """One simulated PG: a reconnecting client per side, and scheduled fault injection."""

    def __init__(self, settings, treatments, reactor, events=None):
        super().__init__()
        self.setName(settings.name)
        self.reactor = reactor
        self.pg = SimPG(settings, treatments, reactor, events)
        for label, (host, port) in sorted(settings.sides.items()):
            endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=5)
            client = internet.ClientService(endpoint, PGSideFactory(self.pg, label, reactor),
                                            retryPolicy=_retry, clock=reactor)
            client.setName(f"{settings.name}/{label}")
            client.setServiceParent(self)
        self._calls = []

    def startService(self):
        super().startService()
        for delay, kind in self.pg.settings.inject:
            self._calls.append(self.reactor.callLater(delay, self._inject, kind))

    def _inject(self, kind):
        side = self.pg.active or next(iter(self.pg.sides.values()), None)
        if side is not None:
            side.inject(kind)

    def stopService(self):
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls = []
        self.pg.stop()
        for side in list(self.pg.sides.values()):
            if side is self.pg.active:
                side.close()
        return super().stopService()
