# -*- test-case-name: tests.icm.test_loopback -*-
"""
Twisted shell for the VRU side: a protocol that only moves bytes into a
L{VRUSession}, and per-tenant listener services (the GVP CTI Connector
documentation, docs/gvp-rm-ctic.rst §3.4: C{[Tenant1] Ports=9001,9002}, one
listener per port, each port one VRU-PG).
"""

from __future__ import annotations

from twisted.application import internet, service
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ctic.icm.link import LinkUnavailable, PGLink
from ctic.icm.session import VRUSession

log = Logger(namespace="ctic.icm.listener")


class VRUProtocol(Protocol):
    """Bytes in and out for one PG connection; everything else is the session's."""

    session = None

    def __init__(self, link: PGLink, clock):
        self.link = link
        self.clock = clock

    def connectionMade(self):
        peer = self.transport.getPeer()
        self.session = VRUSession(self.link, (peer.host, peer.port), self.transport.write,
                                  self.transport.loseConnection, self.clock)
        self.session.connectionMade()

    def dataReceived(self, data):
        self.session.dataReceived(data)

    def connectionLost(self, reason=None):
        if self.session is not None:
            self.session.connectionLost(reason)


class LinkFactory(Factory):
    noisy = False

    def __init__(self, link: PGLink, clock):
        self.link = link
        self.clock = clock

    def buildProtocol(self, addr):
        return VRUProtocol(self.link, self.clock)


class ICMTenant:
    """A tenant's VRU-PG links; call logic asks it for a dialogue."""

    def __init__(self, name, links):
        self.name = name
        self.links = list(links)
        self._next = 0

    def readyLink(self) -> PGLink:
        """A link with a READY session, round robin; L{LinkUnavailable} if none."""
        count = len(self.links)
        for i in range(count):
            link = self.links[(self._next + i) % count]
            if link.ready:
                self._next = (self._next + i + 1) % count
                return link
        raise LinkUnavailable(f"tenant {self.name}: no VRU-PG session is ready")

    def newCall(self, logic, dialed_number, **fields):
        return self.readyLink().newCall(logic, dialed_number, **fields)

    def requestInstruction(self, logic, **fields):
        return self.readyLink().requestInstruction(logic, **fields)


class _TenantListener(internet.TCPServer):
    """A tenant port's listener: one that cannot be opened ends the process with one line."""

    def __init__(self, what, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.what = what

    def privilegedStartService(self):
        from ctic.service import listening

        with listening(self.what):
            super().privilegedStartService()

    def startService(self):
        from ctic.service import listening

        with listening(self.what):
            super().startService()


class TenantService(service.MultiService):
    """
    One tenant: a named TCP listener child per port.  Stopping it closes the
    PG sessions (CLOSE_REQ) and ends their dialogues.
    """

    def __init__(self, name, ports, address, settings, clock, events, reactor=None):
        super().__init__()
        self.setName(name)
        self.links = []
        for port in ports:
            link = PGLink(f"{name}/{port}", settings, clock, events)
            self.links.append(link)
            kwargs = {"interface": address}
            if reactor is not None:
                kwargs["reactor"] = reactor
            server = _TenantListener(f"[{name}] Ports = {port} (TCP {address}:{port})", port,
                                     LinkFactory(link, clock), **kwargs)
            server.setName(f"{name}/{port}")
            server.setServiceParent(self)
        self.tenant = ICMTenant(name, self.links)

    def startService(self):
        super().startService()
        log.info("Tenant {tenant} listening for VRU-PGs on {ports}", tenant=self.name,
                 ports=[link.name for link in self.links])

    def stopService(self):
        for link in self.links:
            link.close()
        return super().stopService()
