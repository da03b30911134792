# -*- test-case-name: tests.ivrserver.test_sim -*-
"""
The simulated IVR Server: accepts several clients, keeps the server-wide
call registry (CallIds and ports are unique across clients), and offers
fault injection both from configuration and as methods for tests and
operators: drop every link, send GLI Error frames, delay replies, cut
writes into small pieces, and restart (forget everything, refuse clients
for a while).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from ctic.events import MessageEvents
from ctic.ivrserver import gli
from ctic.ivrserver.xmlcodec import Decoder, Encoder
from ctic.sim.ivrserver.model import SimModel
from ctic.sim.ivrserver.session import SimLink, SimSession

log = Logger(namespace="ctic.sim.ivrserver")


@dataclass
class Faults:
    """Fault injection (all ours)."""

    reply_delay: float = 0.0  # seconds before every reply
    drop_link_after: int = 0  # close a client's link after this many messages from it (0: never)
    error_frame_after: int = 0  # send a GLI Error frame after this many messages (0: never)
    write_chunk: int = 0  # write frames in pieces of this many bytes (0: whole frames)


class IVRServerSim(Factory):
    """
    @param clock: an C{IReactorTime}.
    @param client_list: C{gli-client-list} entries (host or host:port, C{*} any port); empty: anyone.
    """

    def __init__(self, clock, model: SimModel, faults: Faults | None = None, *, encoding: str = "ISO-8859-1",
                 dtd_file: str = "IServer.dtd", keepalive_interval: float = 0, keepalive_tries: int = 1,
                 max_payload: int = gli.MAX_PAYLOAD, client_list=(), events=None):
        self.clock = clock
        self.model = model
        self.faults = faults or Faults()
        # The real server writes single quotes, no whitespace
        # (docs/ivr-server-xml.rst §1.4).
        self.encoder = Encoder(encoding, "'", False, dtd_file)
        self.decoder = Decoder()
        self.keepalive_interval = keepalive_interval
        self.keepalive_tries = keepalive_tries
        self.max_payload = max_payload
        self.client_list = tuple(client_list)
        self.events = events if events is not None else MessageEvents()
        self.flow_control = model.flow_control
        self.sessions: list[SimSession] = []
        self.calls: dict = {}
        self.ports_busy: dict = {}
        self.agent_status: dict = {}
        self.stats = {"received": 0, "sent": 0, "bad": 0, "calls": 0}
        self._started_at = clock.seconds()
        self._down_until = 0.0

    # --- Factory --------------------------------------------------------------

    def buildProtocol(self, addr):
        if self.clock.seconds() < self._down_until:
            log.info("Refusing {host} while restarting", host=getattr(addr, "host", "?"))
            return None
        session = SimSession(self)
        interval = self.keepalive_interval
        link = SimLink(self.clock, session, encoder=self.encoder, decoder=self.decoder,
                       keepalive_interval=interval if interval > 0 else 0,
                       dead_after=interval * (self.keepalive_tries + 1) if interval > 0 else 0,
                       max_payload=self.max_payload, events=self.events)
        link.write_chunk = self.faults.write_chunk
        self.sessions.append(session)
        return link

    # --- registry ------------------------------------------------------------

    def client_allowed(self, host: str) -> bool:
        if not self.client_list:
            return True
        for entry in self.client_list:
            allowed = entry.rpartition(":")[0] if ":" in entry and not entry.startswith("[") else entry
            try:
                if ipaddress.ip_address(allowed) == ipaddress.ip_address(host):
                    return True
            except ValueError:
                if allowed == host:
                    return True
        return False

    def initialising(self) -> bool:
        return self.clock.seconds() - self._started_at < self.model.init_in_progress

    def call_id_in_use(self, call_id) -> bool:
        return call_id in self.calls

    def port_in_use(self, port) -> bool:
        return port in self.ports_busy

    def call_started(self, call):
        self.calls[call.CallId] = call
        if call.port is not None:
            self.ports_busy[call.called_num] = call
        self.stats["calls"] += 1

    def call_ended(self, call):
        self.calls.pop(call.CallId, None)
        if self.ports_busy.get(call.called_num) is call:
            del self.ports_busy[call.called_num]

    def session_lost(self, session):
        if session in self.sessions:
            self.sessions.remove(session)

    # --- fault injection -----------------------------------------------------

    def fault_after_message(self, session) -> bool:
        """Apply count-based faults after a message; True when the link was dropped."""
        f = self.faults
        if f.error_frame_after and session.received % f.error_frame_after == 0:
            log.info("Fault: GLI Error frame to {peer}", peer=session.link.peer)
            session.link.send_error()
        if f.drop_link_after and session.received % f.drop_link_after == 0:
            log.info("Fault: dropping the link to {peer}", peer=session.link.peer)
            session.link.abort("fault injection: drop link")
            return True
        return False

    def drop_links(self):
        for session in list(self.sessions):
            session.link.abort("fault injection: drop link")

    def send_error_frames(self):
        for session in list(self.sessions):
            session.link.send_error()

    def set_flow_control(self, on: bool):
        """FlowControl to every logged-in client (as when the server option flow-control changes)."""
        from ctic.ivrserver import messages as m

        self.flow_control = on
        for session in self.sessions:
            if session.logged_in:
                session.send(m.FlowControl(CallId=session.session_call_id, Status="On" if on else "Off"))

    def restart(self, downtime: float = 0.0):
        """Drop every client and call, refuse connections for C{downtime} s, then log in with InitInProgress."""
        log.info("Fault: restart ({downtime}s down)", downtime=downtime)
        self.drop_links()
        self._down_until = self.clock.seconds() + downtime
        self._started_at = self._down_until


class SimService(Service):
    """Listens with the simulator on its endpoint(s)."""

    def __init__(self, reactor, sim: IVRServerSim, addresses):
        self.reactor = reactor
        self.sim = sim
        self.addresses = addresses
        self.ports = []

    def startService(self):
        from ctic.service import listening

        super().startService()
        for host, port in self.addresses:
            with listening(f"[gli_server_group_1] gli-server-address = {host}:{port}"):
                self.ports.append(self.reactor.listenTCP(port, self.sim, interface=host))
            log.info("IVR Server simulator listening on {host}:{port}", host=host, port=port)

    def stopService(self):
        super().stopService()
        self.sim.drop_links()
        ports, self.ports = self.ports, []
        from twisted.internet import defer

        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports])
