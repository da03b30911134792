# -*- test-case-name: tests.icm.test_duplex -*-
"""
One VRU-PG as the VRU sees it: a listener port (the GVP CTI Connector
documentation, docs/gvp-rm-ctic.rst §3.4: "separate listener ports must be
specified ... for each VRU-PG", e.g. C{[Tenant1] Ports=9001,9002}),
the TCP connections its sides make to it, the one active session, and the
dialogues of its calls.

Duplex (GVP's CTI Connector documentation, "Duplex Mode"; docs/ged125.rst §5.5): both sides of a PG pair connect
to the port; one session is active and the other connection stays quiescent.
An OPEN_REQ while the PG already has an established session terminates the
existing session (its connection is closed) and the new one takes over; with
C{supersede_on_new_open=false} it is refused with E_SESSION_ALREADY_ACTIVE
instead, unless the old one has been silent for longer than its IdleTimeout.

What happens at the switch (project behaviour, not documented by Cisco):

- Dialogues belong to the link, not to a connection: every dialogue in
  progress continues on the new active session with the same DialogueID and
  its SendSeqNo counters.
- RUN_SCRIPT_REQs (and CANCELs) received on the old session and not yet
  answered stay outstanding; their RUN_SCRIPT_RESULT or DIALOGUE_FAILURE_CONF,
  with the original InvokeID, goes out on the new session.
- Anything we send while no session is READY (between the old connection's
  end and the new side's INIT_SERVICE_CTRL_END) is held, in order, up to
  C{max_held_messages}, and flushed when the new session is ready.  If none is
  ready within C{failover_hold} seconds, held messages are discarded and
  every dialogue ends with reason C{link-lost} (local failure handling).
- Messages already written to the old connection are not repeated: GED-125
  has no acknowledgement to tell what the old side processed.  A NEW_CALL or
  REQUEST_INSTRUCTION the new side never saw is covered by the instruction
  timer (DIALOGUE_FAILURE_EVENT E_TIMEOUT).
- Instruction timers keep running through the switch.
- A new OPEN_REQ on the connection that already holds the session is a
  restart of that side; dialogues are kept the same way.
"""

from __future__ import annotations

from twisted.logger import Logger

from ctic.icm import constants as C
from ctic.icm.codec import EncodeError, sc
from ctic.icm.dialogue import Dialogue
from ctic.icm.events import MessageEvents
from ctic.icm.session import OPEN, READY
from ctic.timers import Timer

log = Logger(namespace="ctic.icm.link")


class LinkUnavailable(Exception):
    """No READY session on this link (or it is full): the call needs local handling."""


class PGLink:
    """
    @param name: for logs and ladders, e.g. C{"Tenant1/9001"}.
    @param settings: L{ctic.icm.settings.LinkSettings}.
    @param clock: C{IReactorTime}.
    """

    def __init__(self, name, settings, clock, events: MessageEvents | None = None):
        self.name = name
        self.settings = settings
        self.clock = clock
        self.events = events if events is not None else MessageEvents()
        self.codec = settings.codec()
        self.connections: set = set()
        self.active = None
        self.dialogues: dict[int, Dialogue] = {}
        self.available = True
        self.operational_status = 0
        self._next_id = 0
        self._held: list = []
        self._hold = Timer(clock, self._holdExpired)
        self.takeovers = 0
        self._state_observers: list = []

    def __repr__(self):
        return f"<PGLink {self.name} active={self.active!r} dialogues={len(self.dialogues)}>"

    @property
    def ready(self) -> bool:
        return self.active is not None and self.active.state == READY

    def observeState(self, observer):
        """Call C{observer(link)} whenever the link becomes ready or stops being ready."""
        self._state_observers.append(observer)

    def _stateChanged(self):
        for observer in list(self._state_observers):
            observer(self)

    # --- connections and sessions (called by VRUSession) ------------------------------------

    def connectionMade(self, session):
        self.connections.add(session)

    def sessionOpening(self, session) -> bool:
        """An OPEN_REQ arrived on C{session}: may it become the active session?"""
        old = self.active
        if old is None or old is session:
            return True
        silent = self.clock.seconds() - old.last_received
        stale = bool(old.idle_timeout) and silent > old.idle_timeout
        if not (self.settings.supersede_on_new_open or stale):
            log.warn("Refused OPEN_REQ from {peer} on {link}: {active} holds the session",
                     peer=session.peer_text, link=self.name, active=old.peer_text)
            return False
        log.info("Duplex takeover on {link}: {peer} supersedes {old}; {count} dialogues continue",
                 link=self.name, peer=session.peer_text, old=old.peer_text, count=len(self.dialogues))
        self.takeovers += 1
        self.active = None
        if self.dialogues:  # as when the active session is lost: the new one has failover_hold
            self._hold.start(self.settings.failover_hold)
        old.drop()
        return True

    def sessionOpened(self, session):
        self.active = session

    def sessionReady(self, session):
        if session is not self.active:
            return
        self._hold.cancel()
        held, self._held = self._held, []
        for msg in held:
            session.send(msg)
        if held:
            log.info("Sent {count} held messages on {link} after the switch", count=len(held), link=self.name)
        if not self.available or self.operational_status:
            session.sendStatus(self.available, self.operational_status)
        self._stateChanged()

    def connectionLost(self, session):
        self.connections.discard(session)
        if session is self.active:
            self.active = None
            log.warn("Active PG session on {link} lost; holding {count} dialogues for {hold}s",
                     link=self.name, count=len(self.dialogues), hold=self.settings.failover_hold)
            if self.dialogues:
                self._hold.start(self.settings.failover_hold)
            self._stateChanged()

    def _holdExpired(self):
        if self.ready:
            return
        log.error("No PG session on {link} within {hold}s: {count} dialogues fail locally",
                  link=self.name, hold=self.settings.failover_hold, count=len(self.dialogues))
        self._held.clear()
        for dialogue in list(self.dialogues.values()):
            dialogue.linkLost()

    # --- sending ----------------------------------------------------------------------------

    def send(self, msg) -> None:
        if self.ready:
            self.active.send(msg)
        elif len(self._held) < self.settings.max_held_messages:
            # Encode now so a message the protocol cannot carry fails here, for the caller,
            # as it would on a ready link, not later while the new session is being set up.
            self.codec.encode(msg)
            self._held.append(msg)
        else:
            log.error("Held-message limit {limit} reached on {link}: {name} dropped",
                      limit=self.settings.max_held_messages, link=self.name, name=msg.name)

    # --- dialogues --------------------------------------------------------------------------

    def _allocate(self) -> int:
        if len(self.dialogues) >= self.settings.max_dialogues:
            raise LinkUnavailable(f"{self.name}: {len(self.dialogues)} dialogues, the limit")
        while True:
            # §6: a 32-bit counter that skips 0 and 0xFFFFFFFF and IDs still active
            self._next_id = self._next_id % 0xFFFFFFFE + 1
            if self._next_id not in self.dialogues:
                return self._next_id

    def _start(self, subtype, logic, trunk_group_id, trunk_number, service_id, fields):
        if not self.ready:
            raise LinkUnavailable(f"{self.name}: no PG session ready")
        dialogue = Dialogue(self, self._allocate(), logic, C.SUBTYPE_NAMES[subtype])
        self.dialogues[dialogue.id] = dialogue
        floating = []
        for tag, value in fields:
            if value is not None:
                floating.append((tag, value, None))
        try:
            dialogue.start(subtype, trunk_group_id, trunk_number, service_id, floating)
        except EncodeError:  # e.g. a DNIS longer than GED-125 carries: no dialogue was started
            del self.dialogues[dialogue.id]
            raise
        log.info("{kind} dialogue {dialogue_id} on {link}", kind=dialogue.kind, dialogue_id=dialogue.id,
                 link=self.name)
        return dialogue

    def newCall(self, logic, dialed_number, ani=None, dnis=None, called_number=None, uui=None,
                call_variables=None, ecc=None, trunk_group_id=0, trunk_number=0, service_id=0,
                extra=()):
        """
        NEW_CALL for a call not under ICM script control (§2.1); DialedNumber is required.
        C{extra} is a list of C{(tag, value)} for other floating fields (CallGUID, ...).
        """
        fields = [(C.TAG_DialedNumber, dialed_number), (C.TAG_ANI, ani), (C.TAG_DNIS, dnis),
                  (C.TAG_CalledNumber, called_number), (C.TAG_UUI, uui)]
        fields += self._varFields(call_variables, ecc) + list(extra)
        return self._start(C.NEW_CALL, logic, trunk_group_id, trunk_number, service_id, fields)

    def requestInstruction(self, logic, correlation_id=None, dnis=None, dialed_number=None, ani=None,
                           called_number=None, uui=None, trunk_group_id=0, trunk_number=0,
                           service_id=0, extra=()):
        """REQUEST_INSTRUCTION for a pre-routed call (§2.1, §7.2–7.4)."""
        fields = [(C.TAG_CorrelationID, correlation_id), (C.TAG_DialedNumber, dialed_number),
                  (C.TAG_ANI, ani), (C.TAG_DNIS, dnis), (C.TAG_CalledNumber, called_number),
                  (C.TAG_UUI, uui)] + list(extra)
        return self._start(C.REQUEST_INSTRUCTION, logic, trunk_group_id, trunk_number, service_id, fields)

    def _varFields(self, call_variables, ecc):
        out = [(C.call_variable_tag(n), v) for n, v in sorted((call_variables or {}).items())]
        tags = self.settings.ecc_tags()
        for name, value in (ecc or {}).items():
            out.append((C.TAG_ECC_VAR_VALUE, (tags.get(name, name), value)))
        return out

    def dialogueMessage(self, session, msg):
        if session is not self.active:
            log.warn("Ignored {name} from {peer} on {link}: not the active session", name=msg.name,
                     peer=session.peer_text, link=self.name)
            return
        if msg.dialogue_id == C.NULL:
            # §2.1: a NULL DialogueID marks a non-dialogue message; the only one a PG sends is
            # INIT_SERVICE_CTRL_REQ, so this is a VRU-to-PG message coming back: nothing to answer.
            log.warn("Skipped {name} from {peer} on {link}: not a PG-to-VRU message", name=msg.name,
                     peer=session.peer_text, link=self.name)
            return
        dialogue = self.dialogues.get(msg.dialogue_id)
        if dialogue is None:
            if msg.subtype == C.DIALOGUE_FAILURE_EVENT:
                log.info("DIALOGUE_FAILURE_EVENT for unknown DialogueID {dialogue_id} ignored",
                         dialogue_id=msg.dialogue_id)
                return
            log.warn("{name} for unknown DialogueID {dialogue_id} from {peer}: E_INVALID_DIALOGUEID",
                     name=msg.name, dialogue_id=msg.dialogue_id, peer=session.peer_text)
            session.send(sc(C.DIALOGUE_FAILURE_EVENT, msg.dialogue_id, 0, ErrorCode=C.E_INVALID_DIALOGUEID))
            return
        dialogue.receive(msg)

    def dialogueEnded(self, dialogue):
        self.dialogues.pop(dialogue.id, None)
        if not self.dialogues:
            self._hold.cancel()

    def callsFor(self, service_id) -> int:
        return len(self.dialogues)

    # --- status and shutdown ------------------------------------------------------------------

    def setAvailable(self, available: bool, operational_status: int | None = None):
        """Our availability changed: SERVICE_STATUS/VRU_STATUS on the active session (§7.8)."""
        if operational_status is None:
            operational_status = 0 if available else 64
        if (available, operational_status) == (self.available, self.operational_status):
            return
        self.available = available
        self.operational_status = operational_status
        if self.ready:
            self.active.sendStatus(available, operational_status)

    def close(self):
        """Stop: close every connection (CLOSE_REQ on the active session) and end dialogues."""
        self._hold.cancel()
        for dialogue in list(self.dialogues.values()):
            dialogue.linkLost()
        for session in list(self.connections):
            if session.state in (OPEN, READY):
                session.close(C.E_NO_ERROR, "VRU shutting down")
            else:
                session.drop()
