# -*- test-case-name: tests.sim.test_vrupg -*-
"""
The simulated VRU-PG, Sans-IO: L{PGSide} is one side's TCP connection (A or
B) and its GED-125 session, PG end; L{SimPG} is the PG itself, shared by its
sides, owning the dialogues so a failover from A to B carries them along, as
a duplexed PG's synchronised sides do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.logger import Logger

from ctic.framing import FramingError
from ctic.icm import constants as C
from ctic.icm.codec import Codec, DecodeError, base, sc
from ctic.icm.events import MessageEvents, dialogue_ref
from ctic.sim.vrupg.treatment import pick
from ctic.timers import Timer

log = Logger(namespace="ctic.sim.vrupg")

CONNECTED, OPENING, OPEN, READY, CLOSED = "CONNECTED", "OPENING", "OPEN", "READY", "CLOSED"


@dataclass
class PGSettings:
    name: str = "PG1"
    sides: dict = field(default_factory=lambda: {"A": ("127.0.0.1", 9001)})
    version: int = 16  # S2's PG simulator default (docs/ged125.rst §5.2)
    idle_timeout: int = 120  # seconds (docs/ged125.rst §5.3 decision)
    nul_terminate: bool = True
    failover_every: float = 0.0  # seconds; 0 = only on loss
    failover_mode: str = "supersede"  # supersede | drop
    inject: list = field(default_factory=list)  # [(seconds, kind)]
    release_cause: int = 0  # §4.5: S1 and S3 disagree; the simulator sends 0 by default


MALFORMED = ("truncated", "oversize", "unknown-type", "unknown-subtype", "unknown-dialogue",
             "bad-field", "garbage")


class PGSide:
    """One side (A or B) of the PG: the client end of one TCP connection."""

    def __init__(self, pg, label, write, lose, clock):
        self.pg = pg
        self.label = label
        self._write = write
        self._lose = lose
        self.clock = clock
        self.state = CONNECTED
        self.frames = pg.codec.frame_buffer()
        self._heartbeat = Timer(clock, self._sendHeartbeat)
        self.features = None
        self.failures = []  # statuses of FAILURE_CONF/FAILURE_EVENT received

    def __repr__(self):
        return f"<PGSide {self.pg.settings.name}/{self.label} {self.state}>"

    # --- bytes --------------------------------------------------------------------------------

    def connectionMade(self):
        self.pg.sideConnected(self)

    def connectionLost(self, reason=None):
        self.state = CLOSED
        self._heartbeat.cancel()
        self.frames.clear()
        self.pg.sideLost(self)

    def dataReceived(self, data):
        try:
            frames = self.frames.feed(data)
        except FramingError as e:
            log.error("Framing lost from the VRU on side {side}: {reason}", side=self.label, reason=e.reason)
            self.drop()
            return
        for frame in frames:
            try:
                msg = self.pg.codec.decode(frame)
            except DecodeError as e:
                log.error("Bad message from the VRU on side {side}: {reason}", side=self.label, reason=str(e))
                continue
            self.messageReceived(msg)

    def messageReceived(self, msg):
        self.pg.emit("in", self, msg)
        name = msg.name
        handler = getattr(self, "ged_" + name, None)
        if handler is not None:
            handler(msg)
        elif msg.type == C.SERVICE_CONTROL and msg.known:
            if self.state == READY:
                self.pg.dialogueMessage(self, msg)
        else:
            log.info("Simulator ignored {name} from the VRU", name=name)

    def send(self, msg):
        if self.state == CLOSED:
            return
        self.pg.emit("out", self, msg)
        self._write(self.pg.codec.encode(msg))
        if self.state in (OPEN, READY):
            self._heartbeat.start(self.pg.settings.idle_timeout / 4)  # §12.8: every IdleTimeout/4

    def drop(self):
        self._heartbeat.cancel()
        self._lose()

    # --- session ------------------------------------------------------------------------------

    def open(self):
        s = self.pg.settings
        self.state = OPENING
        self.send(base(C.OPEN_REQ, InvokeID=self.pg.nextInvokeID(), VersionNumber=s.version,
                       IdleTimeout=s.idle_timeout))

    def close(self, status=C.E_NO_ERROR):
        self.send(base(C.CLOSE_REQ, InvokeID=self.pg.nextInvokeID(), Status=status))

    def ged_OPEN_CONF(self, msg):
        self.state = OPEN
        self._heartbeat.start(self.pg.settings.idle_timeout / 4)
        if msg["UseServiceControl"]:
            self.send(sc(C.INIT_SERVICE_CTRL_REQ, InvokeID=self.pg.nextInvokeID()))

    def ged_FAILURE_CONF(self, msg):
        self.failures.append(msg["Status"])
        log.warn("VRU answered FAILURE_CONF {status} on side {side}", side=self.label,
                 status=C.STATUS_NAMES.get(msg["Status"], msg["Status"]))
        if self.state == OPENING:
            self.state = CONNECTED
            self.pg.openRefused(self, msg["Status"])

    def ged_FAILURE_EVENT(self, msg):
        self.failures.append(msg["Status"])
        log.warn("VRU sent FAILURE_EVENT {status} on side {side}", side=self.label,
                 status=C.STATUS_NAMES.get(msg["Status"], msg["Status"]))

    def ged_HEARTBEAT_REQ(self, msg):
        self.send(base(C.HEARTBEAT_CONF, InvokeID=msg["InvokeID"]))

    def ged_HEARTBEAT_CONF(self, msg):
        pass

    def ged_CLOSE_REQ(self, msg):
        self.send(base(C.CLOSE_CONF, InvokeID=msg["InvokeID"]))
        self.drop()

    def ged_CLOSE_CONF(self, msg):
        self.drop()

    def ged_REGISTER_VARIABLES(self, msg):
        self.pg.registered(msg["CallVarsMask"], dict(msg.getall(C.TAG_ECC_VAR_NAME)))

    def ged_INIT_SERVICE_CTRL_CONF(self, msg):
        pass

    def ged_INIT_SERVICE_CTRL_DATA(self, msg):
        self.features = msg["ServiceFeatures"]

    def ged_INIT_SERVICE_CTRL_TRKGRP(self, msg):
        pass

    def ged_INIT_SERVICE_CTRL_SERVICE(self, msg):
        pass

    def ged_INIT_SERVICE_CTRL_VRU(self, msg):
        self.pg.vru_status = msg["OperationalStatus"]

    def ged_INIT_SERVICE_CTRL_END(self, msg):
        self.state = READY
        self.pg.sideReady(self)

    def ged_SERVICE_STATUS(self, msg):
        self.pg.service_status[msg["ServiceID"]] = bool(msg["ServiceAvailable"])

    def ged_VRU_STATUS(self, msg):
        self.pg.vru_status = msg["OperationalStatus"]

    def _sendHeartbeat(self):
        if self.state in (OPEN, READY):
            self.send(base(C.HEARTBEAT_REQ, InvokeID=self.pg.nextInvokeID()))

    # --- fault injection ------------------------------------------------------------------------

    def inject(self, kind):
        """Write a malformed or unexpected frame (for tests and labs); see L{MALFORMED}."""
        codec = self.pg.codec
        if kind == "truncated":  # HEARTBEAT_REQ whose body is shorter than its fixed part
            data = b"\x00\x00\x00\x02\x00\x00\x00\x05\x00\x01"
        elif kind == "oversize":
            data = (0x7FFFFFF0).to_bytes(4, "big") + (5).to_bytes(4, "big")
        elif kind == "unknown-type":
            data = b"\x00\x00\x00\x04\x00\x00\x00\x63\x00\x00\x00\x01"
        elif kind == "unknown-subtype":
            data = codec.encode(sc(C.HEARTBEAT_REQ + 90))
        elif kind == "unknown-dialogue":
            data = codec.encode(sc(C.RELEASE, 0x7777, 0, Cause=0))
        elif kind == "bad-field":  # a CallVariable1 longer than any limit
            msg = sc(C.RUN_SCRIPT_REQ, 0x7778, 0, InvokeID=self.pg.nextInvokeID())
            data = codec.encode(msg)
            field_ = bytes([22, 250]) + b"x" * 250
            body = data[8:] + field_
            data = len(body).to_bytes(4, "big") + data[4:8] + body
        elif kind == "garbage":
            data = b"\xde\xad\xbe\xef" * 4
        else:
            raise ValueError(f"unknown malformed-frame kind {kind!r}; expected one of {', '.join(MALFORMED)}")
        log.info("Injecting a {kind} frame on side {side}", kind=kind, side=self.label)
        self._write(data)


class SimDialogue:
    """One dialogue as the simulated ICM plays it: the treatment's steps in order."""

    def __init__(self, pg, dialogue_id, start_msg):
        self.pg = pg
        self.id = dialogue_id
        self.start_msg = start_msg
        self.dialed_number = start_msg.get(C.TAG_DialedNumber)
        self.steps = []
        self.waiting = None  # set of sub-type names we wait for
        self.last_run = None
        self.seq = 0
        self.done = False
        self.outcome = None
        self.received = []  # (name, message) from the VRU on this dialogue
        self._timer = Timer(pg.clock, self._next)

    def send(self, subtype, floating=None, **fixed):
        self.pg.send(sc(subtype, self.id, self.seq, floating, **fixed))
        self.seq += 1

    def begin(self):
        if self.start_msg.subtype == C.NEW_CALL and self.dialed_number is None:
            self._fail("E_INVALID_MESSAGE")  # §2.1: DialedNumber is required
            return
        keys = [self.start_msg.get(tag) for tag in (C.TAG_DialedNumber, C.TAG_CorrelationID, C.TAG_DNIS,
                                                     C.TAG_CalledNumber)]
        treatment = pick(self.pg.treatments, [k for k in keys if k is not None])
        if treatment is None:
            self._fail("E_INVALID_DIALED_NUMBER")
            return
        self.steps = list(treatment.steps)
        self._next()

    def receive(self, msg):
        self.received.append((msg.name, msg))
        if msg.subtype == C.DIALOGUE_FAILURE_EVENT:
            self._finish(f"vru-failed:{C.STATUS_NAMES.get(msg['ErrorCode'], msg['ErrorCode'])}")
            return
        if msg.subtype == C.EVENT_REPORT and msg["EventID"] in (C.ABANDON, C.DISCONNECT):
            self._finish(f"event:{C.EVENT_NAMES[msg['EventID']]}")
            return
        if self.waiting and msg.name in self.waiting:
            self.waiting = None
            self._next()

    def _fields(self, step):
        floating = []
        for key, value in step.fields.items():
            if key.startswith("CallVariable"):
                floating.append((C.call_variable_tag(int(key[12:])), value, None))
            elif key.startswith("ECC:"):
                tag = self.pg.ecc.get(key[4:])
                if tag is None:
                    log.warn("ECC variable {name} was not registered by the VRU; not sent", name=key[4:])
                    continue
                floating.append((C.TAG_ECC_VAR_VALUE, (tag, value), None))
            elif key == "ScriptConfiguration":
                floating.append((C.TAG_ScriptConfiguration, value, None))
            elif key == "CED":
                floating.append((C.TAG_CED, value, None))
            elif key == "ANI":
                floating.append((C.TAG_ANI, value, None))
        return floating

    def _next(self):
        while not self.done and self.waiting is None and self.steps:
            step = self.steps.pop(0)
            verb = step.verb
            if verb in ("run", "run-nowait"):
                invoke = self.pg.nextInvokeID()
                self.last_run = invoke
                floating = [(C.TAG_ScriptID, step.args[0], None)] + self._fields(step)
                self.send(C.RUN_SCRIPT_REQ, floating, InvokeID=invoke)
                if verb == "run":
                    self.waiting = {"RUN_SCRIPT_RESULT", "DIALOGUE_FAILURE_CONF"}
            elif verb == "cancel":
                self.send(C.CANCEL, InvokeID=self.pg.nextInvokeID(), RequestID=self.last_run or 0)
                self.waiting = {"DIALOGUE_FAILURE_CONF"}
            elif verb == "delay":
                self._timer.start(float(step.args[0]))
                return
            elif verb == "connect":
                floating = [(C.TAG_Label, step.args[0], None)]
                if "TransferHint" in step.fields:
                    floating.append((C.TAG_TransferHint, int(step.fields["TransferHint"]), None))
                floating += self._fields(step)
                self.send(C.CONNECT, floating, LabelType=int(step.fields.get("LabelType", C.LABEL_NORMAL)))
                self.waiting = {"EVENT_REPORT"}
            elif verb == "connect-to-resource":
                self.send(C.CONNECT_TO_RESOURCE, [(C.TAG_Label, step.args[0], None)] + self._fields(step))
                self.waiting = {"RESOURCE_CONNECTED"}
            elif verb == "temporary-connect":
                self.send(C.TEMPORARY_CONNECT, [(C.TAG_Label, step.args[0], None)] + self._fields(step))
            elif verb == "release":
                cause = int(step.args[0]) if step.args else self.pg.settings.release_cause
                self.send(C.RELEASE, Cause=cause)
                self._finish("released")
            elif verb == "fail":
                self._fail(step.args[0])
            elif verb == "silent":
                self.steps = []
                return
        if not self.done and self.waiting is None and not self.steps and not self._timer.active:
            self._finish("completed")

    def _fail(self, name):
        self.send(C.DIALOGUE_FAILURE_EVENT, ErrorCode=C.STATUS_BY_NAME[name])
        self._finish(f"failed:{name}")

    def _finish(self, outcome):
        if self.done:
            return
        self.done = True
        self.outcome = outcome
        self._timer.cancel()
        self.pg.dialogueDone(self)

    def stop(self):
        self._timer.cancel()


class SimPG:
    """A simulated VRU-PG with one or two sides."""

    def __init__(self, settings: PGSettings, treatments, clock, events: MessageEvents | None = None):
        self.settings = settings
        self.treatments = list(treatments)
        self.clock = clock
        self.events = events if events is not None else MessageEvents()
        self.codec = Codec(nul_terminate=settings.nul_terminate)
        self.sides: dict[str, PGSide] = {}
        self.active = None
        self.dialogues: dict[int, SimDialogue] = {}
        self.finished: list[SimDialogue] = []
        self.ecc: dict[str, int] = {}
        self.call_vars_mask = None
        self.service_status = {}
        self.vru_status = None
        self.failovers = 0
        self._invoke = 0
        self._held = []
        self._failover = Timer(clock, self._scheduledFailover)
        self._observers = []
        self.stopping = False
        self._recent = {}

    def __repr__(self):
        return f"<SimPG {self.settings.name} active={self.active!r}>"

    def onChange(self, observer):
        """C{observer(pg)} after a side becomes ready or a dialogue finishes (for tests and tools)."""
        self._observers.append(observer)

    def _changed(self):
        for observer in list(self._observers):
            observer(self)

    def nextInvokeID(self):
        self._invoke = self._invoke % 0xFFFFFFFE + 1
        return self._invoke

    def emit(self, direction, side, msg):
        if self.events.active:
            self.events.emit(direction, "GED-125", f"{self.settings.name}/{side.label}", self.settings.name,
                             self.clock.seconds(), msg, call_ref=dialogue_ref(msg))

    # --- sides ------------------------------------------------------------------------------------

    def _opening(self):
        return any(s.state in (OPENING, OPEN) for s in self.sides.values())

    def sideConnected(self, side):
        self.sides[side.label] = side
        if self.active is None and not self._opening():
            side.open()
        else:
            log.info("{pg} side {side} connected and quiescent", pg=self.settings.name, side=side.label)

    def sideReady(self, side):
        self.active = side
        log.info("{pg} session active on side {side}", pg=self.settings.name, side=side.label)
        held, self._held = self._held, []
        for msg in held:
            side.send(msg)
        if self.settings.failover_every > 0:
            self._failover.start(self.settings.failover_every)
        self._changed()

    def openRefused(self, side, status):
        pass

    def sideLost(self, side):
        if self.sides.get(side.label) is side:
            del self.sides[side.label]
        if side is self.active:
            self.active = None
            for other in (() if self.stopping else list(self.sides.values())):
                if other.state == CONNECTED and not self._opening():
                    log.info("{pg} fails over to side {side}", pg=self.settings.name, side=other.label)
                    self.failovers += 1
                    other.open()
                    break
        self._changed()

    def standby(self):
        for side in self.sides.values():
            if side is not self.active and side.state == CONNECTED:
                return side
        return None

    def failover(self, mode=None):
        """Scripted failover: the standby side takes over (supersede) or the active side drops."""
        mode = mode or self.settings.failover_mode
        standby = self.standby()
        if standby is None or self.active is None:
            log.info("{pg}: no failover, standby side not connected", pg=self.settings.name)
            return False
        log.info("{pg}: scripted failover ({mode}) from side {old} to side {new}", pg=self.settings.name,
                 mode=mode, old=self.active.label, new=standby.label)
        if mode == "drop":
            self.active.drop()
        else:
            self.failovers += 1
            self.active = None
            standby.open()
        return True

    def _scheduledFailover(self):
        self.failover()

    # --- dialogues ---------------------------------------------------------------------------------

    def registered(self, mask, names):
        self.call_vars_mask = mask
        self.ecc = {name: tag for tag, name in names.items()}

    def send(self, msg):
        if self.active is not None and self.active.state == READY:
            self.active.send(msg)
        else:
            self._held.append(msg)

    def dialogueMessage(self, side, msg):
        if side is not self.active:
            log.warn("{name} on the standby side {side}", name=msg.name, side=side.label)
        if msg.subtype in (C.NEW_CALL, C.REQUEST_INSTRUCTION):
            if msg.dialogue_id in self.dialogues:
                side.send(sc(C.DIALOGUE_FAILURE_EVENT, msg.dialogue_id, 0, ErrorCode=C.E_DUPLICATE_DIALOGUEID))
                return
            dialogue = SimDialogue(self, msg.dialogue_id, msg)
            self.dialogues[msg.dialogue_id] = dialogue
            dialogue.received.append((msg.name, msg))
            dialogue.begin()
            return
        dialogue = self.dialogues.get(msg.dialogue_id)
        if dialogue is None:
            if msg.dialogue_id in self._recent:
                return  # a late report for a dialogue this PG already finished
            if msg.subtype != C.DIALOGUE_FAILURE_EVENT:
                side.send(sc(C.DIALOGUE_FAILURE_EVENT, msg.dialogue_id, 0, ErrorCode=C.E_INVALID_DIALOGUEID))
            return
        dialogue.receive(msg)

    def dialogueDone(self, dialogue):
        self.dialogues.pop(dialogue.id, None)
        self.finished.append(dialogue)
        del self.finished[:-1000]
        self._recent[dialogue.id] = None
        while len(self._recent) > 1000:
            del self._recent[next(iter(self._recent))]
        log.info("{pg} dialogue {dialogue_id} ({dialed}) ended: {outcome}", pg=self.settings.name,
                 dialogue_id=dialogue.id, dialed=dialogue.dialed_number, outcome=dialogue.outcome)
        self._changed()

    def stop(self):
        self.stopping = True
        self._failover.cancel()
        for dialogue in self.dialogues.values():
            dialogue.stop()
