"""
In-memory wiring of our VRU side (L{PGLink}/L{VRUSession}) to the VRU-PG
simulator (L{SimPG}/L{PGSide}) on one task.Clock: bytes written by one end
are queued and delivered by L{Wire.pump}, like a TCP connection with no delay.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from ctic.icm.dialogue import CallLogic
from ctic.icm.events import MessageEvents
from ctic.icm.link import PGLink
from ctic.icm.session import VRUSession
from ctic.icm.settings import LinkSettings
from ctic.sim.vrupg.pg import PGSettings, PGSide, SimPG
from ctic.sim.vrupg.treatment import Treatment, parse_steps


class Connection:
    """One TCP connection: a PG side and a VRU session, with byte queues."""

    def __init__(self, wire, label, port):
        self.wire = wire
        self.to_vru: list[bytes] = []
        self.to_pg: list[bytes] = []
        self.open = True
        self.vru = VRUSession(wire.link, ("127.0.0.1", port), self.to_vru_pg, self.lose, wire.clock)
        self.pg = PGSide(wire.pg, label, self.to_vru.append, self.lose, wire.clock)
        self.raw_vru_out: list[bytes] = []
        self.raw_pg_out: list[bytes] = []

    def to_vru_pg(self, data):
        self.to_pg.append(data)

    def lose(self):
        if self.open:
            self.open = False
            self.wire.closing.append(self)


class Wire:
    def __init__(self, treatments="run Welcome; release", settings=None, pg_settings=None, sides=("A",)):
        self.clock = Clock()
        self.events = MessageEvents()
        self.ladder = []
        self.events.subscribe(self.ladder.append)
        self.link = PGLink("Tenant1/9001", settings or LinkSettings(), self.clock, self.events)
        plays = []
        if isinstance(treatments, str):
            plays = [Treatment("T", ["*"], parse_steps(treatments))]
        else:
            plays = [Treatment(name, dns, parse_steps(steps)) for name, dns, steps in treatments]
        self.pg = SimPG(pg_settings or PGSettings(idle_timeout=20), plays, self.clock)
        self.connections: dict[str, Connection] = {}
        self.closing: list[Connection] = []
        self.bytes_log: list[tuple[str, int, bytes]] = []  # (direction, port, data) in wire order
        self._port = 40000
        for label in sides:
            self.connect(label)

    def connect(self, label):
        self._port += 1
        conn = Connection(self, label, self._port)
        self.connections[label] = conn
        conn.vru.connectionMade()
        conn.pg.connectionMade()
        self.pump()
        return conn

    def pump(self):
        moved = True
        while moved:
            moved = False
            for conn in list(self.connections.values()):
                while conn.open and conn.to_vru:
                    data = conn.to_vru.pop(0)
                    self.bytes_log.append(("pg->vru", conn.vru.peer[1], data))
                    conn.vru.dataReceived(data)
                    moved = True
                while conn.open and conn.to_pg:
                    data = conn.to_pg.pop(0)
                    self.bytes_log.append(("vru->pg", conn.vru.peer[1], data))
                    conn.pg.dataReceived(data)
                    moved = True
            while self.closing:
                conn = self.closing.pop(0)
                # data already written is delivered before the FIN, as TCP would
                for data in conn.to_vru:
                    conn.vru.dataReceived(data)
                for data in conn.to_pg:
                    conn.pg.dataReceived(data)
                conn.to_vru.clear()
                conn.to_pg.clear()
                conn.vru.connectionLost()
                conn.pg.connectionLost()
                if self.connections.get(conn.pg.label) is conn:
                    del self.connections[conn.pg.label]
                moved = True

    def advance(self, seconds, step=0.5):
        remaining = seconds
        while remaining > 1e-9:
            d = min(step, remaining)
            self.clock.advance(d)
            remaining -= d
            self.pump()

    def names(self, direction=None):
        return [e.name for e in self.ladder if direction is None or e.direction == direction]


class Recorder(CallLogic):
    """Call logic for tests: records every callback; answers scripted results."""

    def __init__(self, results=None, connect_event=None):
        self.calls = []
        self.results = results or {}
        self.connect_event = connect_event
        self.ended_with = None

    def runScript(self, dialogue, instruction):
        self.calls.append(("runScript", instruction))
        if instruction.script_id in self.results:
            dialogue.scriptResult(instruction.invoke_id, **self.results[instruction.script_id])

    def cancelScript(self, dialogue, instruction):
        self.calls.append(("cancelScript", instruction))
        return True

    def connect(self, dialogue, instruction):
        self.calls.append(("connect", instruction))
        if self.connect_event is not None:
            dialogue.report(self.connect_event)

    def connectToResource(self, dialogue, instruction):
        self.calls.append(("connectToResource", instruction))
        dialogue.resourceConnected()

    def temporaryConnect(self, dialogue, instruction):
        self.calls.append(("temporaryConnect", instruction))

    def release(self, dialogue, instruction):
        self.calls.append(("release", instruction))

    def ended(self, dialogue, reason, error_code):
        self.ended_with = (reason, error_code)

    def names(self):
        return [name for name, _ in self.calls]
