# -*- test-case-name: tests.icm.test_session -*-
"""
One PG connection, VRU side (docs/ged125.rst §5): Sans-IO.

The Twisted protocol hands us bytes (L{VRUSession.dataReceived}) and gives us
two callables, C{write(bytes)} and C{lose()}; timers run on an injected
C{IReactorTime}.  Base messages are dispatched by name to C{ged_<NAME>};
SERVICE_CONTROL sub-types to C{sc_<NAME>}; dialogue sub-types go to the
L{ctic.icm.link.PGLink} that owns this connection.

States: CONNECTED (TCP only; a duplex side may stay here, quiescent) →
OPEN (OPEN_CONF sent) → READY (INIT_SERVICE_CTRL_END and REGISTER_VARIABLES
sent) → CLOSING → CLOSED.
"""

from __future__ import annotations

import ipaddress

from twisted.logger import Logger

from ctic.framing import FramingError
from ctic.icm.events import dialogue_ref
from ctic.icm import constants as C
from ctic.icm.codec import DecodeError, FieldError, Message, base, sc
from ctic.timers import Timer

log = Logger(namespace="ctic.icm.session")

CONNECTED, OPEN, READY, CLOSING, CLOSED = "CONNECTED", "OPEN", "READY", "CLOSING", "CLOSED"

# Requests for interfaces a pure Service Control VRU does not offer (§2, §7.5),
# answered with FAILURE_CONF and the matching status unless the Use* flag is on.
_UNSUPPORTED = {
    C.INIT_DATA_REQ: ("use_event_feed", C.E_EVENTS_NOT_SUPPORTED),
    C.TIME_SYNCH_REQ: ("use_time_synch", C.E_TIME_SYNCH_NOT_SUPPORTED),
}


def idle_timeout_seconds(value: int, units: str) -> float:
    """§5.3 decision [I]: seconds, unless > 3600 (then milliseconds); overridable."""
    if units == "seconds":
        return float(value)
    if units == "milliseconds":
        return value / 1000.0
    return value / 1000.0 if value > 3600 else float(value)


class VRUSession:
    """
    The VRU end of one TCP connection from a VRU-PG side.

    @param link: the L{PGLink} (listener port) this connection arrived on.
    @param peer: C{(host, port)} of the PG side.
    """

    def __init__(self, link, peer, write, lose, clock):
        self.link = link
        self.settings = link.settings
        self.codec = link.codec
        self.peer = peer
        self.peer_text = f"{peer[0]}:{peer[1]}"
        self._write = write
        self._lose = lose
        self.clock = clock
        self.state = CONNECTED
        self.version = None
        self.idle_timeout = None
        self.frames = self.codec.frame_buffer()
        self._idle = Timer(clock, self._idleExpired)
        self._heartbeat = Timer(clock, self._sendHeartbeat)
        self._close_wait = Timer(clock, self._closeTimedOut)
        self._invoke = 0
        self.opened_at = None
        self.last_received = clock.seconds()

    def __repr__(self):
        return f"<VRUSession {self.link.name} {self.peer_text} {self.state}>"

    # --- bytes in ------------------------------------------------------------------------

    def connectionMade(self):
        log.info("PG connection from {peer} on {link}", peer=self.peer_text, link=self.link.name)
        self.link.connectionMade(self)

    def dataReceived(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        fatal = None
        try:
            frames = self.frames.feed(data)
        except FramingError as e:
            frames, fatal = e.frames, e  # handle what came before the fault, then reset
        for frame in frames:
            if self.state == CLOSED:
                return
            try:
                msg = self.codec.decode(frame)
            except FieldError as e:
                # One bad field: skip this message, keep the session (docs/ged125.rst §7.7 decision).
                log.warn("Skipped a message from {peer} on {link}: {reason}", peer=self.peer_text,
                         link=self.link.name, reason=str(e), message_name=e.message, tag=e.tag)
                continue
            except DecodeError as e:
                self._protocolFailure(str(e))
                return
            self.messageReceived(msg)
        if fatal is not None and self.state != CLOSED:
            self._protocolFailure(f"framing lost: {fatal.reason}", length=fatal.length)

    def messageReceived(self, msg: Message) -> None:
        self.last_received = self.clock.seconds()
        if self.idle_timeout:
            self._idle.start(self.idle_timeout)  # §5.3: any message is a sign of life
        events = self.link.events
        if events.active:
            events.emit("in", "GED-125", self.peer_text, self.link.name, self.clock.seconds(), msg,
                        call_ref=dialogue_ref(msg))
        if not msg.known:
            log.warn("Skipped unknown {name} from {peer} on {link}", name=msg.name, peer=self.peer_text,
                     link=self.link.name)
            return
        if msg.type == C.SERVICE_CONTROL:
            handler = getattr(self, "sc_" + msg.name, None)
            if handler is None:
                if self.state != READY and self.state != OPEN:
                    self._notActive(msg)
                    return
                self.link.dialogueMessage(self, msg)
                return
        else:
            handler = getattr(self, "ged_" + msg.name, None)
            if handler is None:
                log.warn("Skipped {name} from {peer}: not a PG-to-VRU message we handle",
                         name=msg.name, peer=self.peer_text)
                return
        handler(msg)

    def connectionLost(self, reason=None) -> None:
        was = self.state
        self.state = CLOSED
        self._stopTimers()
        self.frames.clear()
        log.info("PG connection from {peer} on {link} closed in state {state}", peer=self.peer_text,
                 link=self.link.name, state=was)
        self.link.connectionLost(self)

    # --- bytes out -----------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        if self.state == CLOSED:
            return
        data = self.codec.encode(msg)
        events = self.link.events
        if events.active:
            events.emit("out", "GED-125", self.peer_text, self.link.name, self.clock.seconds(), msg,
                        call_ref=dialogue_ref(msg))
        self._write(data)
        if self.settings.vru_heartbeat and self.idle_timeout and self.state in (OPEN, READY):
            self._heartbeat.start(self.idle_timeout / 4)

    def nextInvokeID(self) -> int:
        self._invoke = self._invoke % 0xFFFFFFFE + 1  # never 0, never NULL
        return self._invoke

    # --- session messages (§5.2–§5.4) ------------------------------------------------------

    def ged_OPEN_REQ(self, msg):
        s = self.settings
        invoke = msg["InvokeID"]
        version = msg["VersionNumber"]
        if s.allowed_peers and not _allowed(self.peer[0], s.allowed_peers):
            log.warn("Refused OPEN_REQ from {peer} on {link}: address not allowed for the tenant",
                     peer=self.peer_text, link=self.link.name)
            self.send(base(C.FAILURE_CONF, InvokeID=invoke, Status=C.E_REQUEST_REFUSED))
            self.drop()
            return
        if not s.min_version <= version <= s.max_version:
            log.warn("Refused OPEN_REQ from {peer}: VersionNumber {version} outside {low}..{high}",
                     peer=self.peer_text, version=version, low=s.min_version, high=s.max_version)
            self.send(base(C.FAILURE_CONF, InvokeID=invoke, Status=C.E_INVALID_VERSION))
            return
        if not self.link.sessionOpening(self):
            self.send(base(C.FAILURE_CONF, InvokeID=invoke, Status=C.E_SESSION_ALREADY_ACTIVE))
            return
        self.version = version
        self.idle_timeout = idle_timeout_seconds(msg["IdleTimeout"], s.idle_timeout_units)
        self.state = OPEN
        self.opened_at = self.clock.seconds()
        self.send(base(C.OPEN_CONF, InvokeID=invoke, UseEventFeed=int(s.use_event_feed),
                       UsePolledFeed=int(s.use_polled_feed), UseCallRouting=int(s.use_call_routing),
                       UseTimeSynch=int(s.use_time_synch), UseServiceControl=int(s.use_service_control)))
        if self.idle_timeout:  # IdleTimeout 0: no idle supervision (ours [I])
            self._idle.start(self.idle_timeout)
        log.info("GED-125 session open with {peer} on {link}: version {version}, IdleTimeout {idle}s",
                 peer=self.peer_text, link=self.link.name, version=version, idle=self.idle_timeout)
        self.link.sessionOpened(self)

    def ged_HEARTBEAT_REQ(self, msg):
        if self.state not in (OPEN, READY):
            self._notActive(msg)
            return
        self.send(base(C.HEARTBEAT_CONF, InvokeID=msg["InvokeID"]))

    def ged_HEARTBEAT_CONF(self, msg):
        pass  # liveness is already noted

    def ged_CLOSE_REQ(self, msg):
        log.info("PG {peer} on {link} closes the session: status {status}", peer=self.peer_text,
                 link=self.link.name, status=C.STATUS_NAMES.get(msg["Status"], msg["Status"]),
                 text=msg.get(C.TAG_Text))
        self.send(base(C.CLOSE_CONF, InvokeID=msg["InvokeID"]))
        self.drop()  # S2's VRU closes right after CLOSE_CONF (§5.4)

    def ged_CLOSE_CONF(self, msg):
        if self.state == CLOSING:
            self.drop()

    def ged_FAILURE_CONF(self, msg):
        log.warn("FAILURE_CONF from {peer}: InvokeID {invoke_id} status {status}", peer=self.peer_text,
                 invoke_id=msg["InvokeID"], status=C.STATUS_NAMES.get(msg["Status"], msg["Status"]))

    def ged_FAILURE_EVENT(self, msg):
        log.warn("FAILURE_EVENT from {peer} on {link}: status {status}", peer=self.peer_text,
                 link=self.link.name, status=C.STATUS_NAMES.get(msg["Status"], msg["Status"]))

    def ged_INIT_DATA_REQ(self, msg):
        self._unsupported(msg)

    def ged_TIME_SYNCH_REQ(self, msg):
        self._unsupported(msg)

    def _unsupported(self, msg):
        flag, status = _UNSUPPORTED[msg.type]
        log.info("Refused {name} from {peer}: not offered in OPEN_CONF", name=msg.name, peer=self.peer_text)
        self.send(base(C.FAILURE_CONF, InvokeID=msg["InvokeID"], Status=status))

    def sc_INIT_SERVICE_CTRL_REQ(self, msg):
        s = self.settings
        invoke = msg["InvokeID"]
        if self.state not in (OPEN, READY):
            self._notActive(msg)
            return
        if not s.use_service_control:
            self.send(base(C.FAILURE_CONF, InvokeID=invoke, Status=C.E_SERVICE_CTRL_NOT_SUPPORTED))
            return
        # §5.2: S2's PG sends non-NULL DialogueID/SendSeqNo here; we ignore them.
        self.send(sc(C.INIT_SERVICE_CTRL_CONF, InvokeID=invoke))
        self.send(sc(C.INIT_SERVICE_CTRL_DATA, InvokeID=invoke, ServiceFeatures=s.service_features))
        for group in s.trunk_groups:
            self.send(sc(C.INIT_SERVICE_CTRL_TRKGRP, InvokeID=invoke, TrunkGroupID=group, TrunkCount=0,
                         Trunks=[]))
        available = int(self.link.available)
        for service in s.services:
            self.send(sc(C.INIT_SERVICE_CTRL_SERVICE, InvokeID=invoke, ServiceID=service,
                         AvailableNow=available, CallsInNow=self.link.callsFor(service), CallsOutNow=0))
        self.send(sc(C.INIT_SERVICE_CTRL_VRU, InvokeID=invoke, CurrentTime=int(self.clock.seconds()),
                     TimeZoneDelta=s.time_zone_delta, OperationalStatus=self.link.operational_status,
                     StatusVariable=[]))
        self.send(sc(C.INIT_SERVICE_CTRL_END, InvokeID=invoke))
        self.sendRegisterVariables()
        self.state = READY
        log.info("Service Control ready with {peer} on {link}", peer=self.peer_text, link=self.link.name)
        self.link.sessionReady(self)

    def sendRegisterVariables(self):
        s = self.settings
        floating = [(C.TAG_ECC_VAR_NAME, (tag, name), None) for name, tag in s.ecc_tags().items()]
        self.send(base(C.REGISTER_VARIABLES, floating=floating, CallVarsMask=s.call_vars_mask))

    def sendStatus(self, available: bool, operational_status: int) -> None:
        """SERVICE_STATUS per configured service and VRU_STATUS (§7.8) when availability changes."""
        if self.state != READY:
            return
        for service in self.settings.services:
            self.send(sc(C.SERVICE_STATUS, ServiceID=service, ServiceAvailable=int(available)))
        self.send(sc(C.VRU_STATUS, CurrentTime=int(self.clock.seconds()),
                     TimeZoneDelta=self.settings.time_zone_delta, OperationalStatus=operational_status,
                     StatusVariable=[]))

    # --- ending ----------------------------------------------------------------------------

    def close(self, status=C.E_NO_ERROR, text=None) -> None:
        """VRU-initiated CLOSE_REQ [I]; the connection drops on CLOSE_CONF or after close_timeout."""
        if self.state in (OPEN, READY):
            floating = [(C.TAG_Text, text, None)] if text else []
            self.send(base(C.CLOSE_REQ, floating=floating, InvokeID=self.nextInvokeID(), Status=status))
            self.state = CLOSING
            self._close_wait.start(self.settings.close_timeout)
        else:
            self.drop()

    def drop(self) -> None:
        """Close the TCP connection now; L{connectionLost} follows from the transport."""
        if self.state == CLOSED:
            return
        self._stopTimers()
        if self.state != CLOSING:
            self.state = CLOSING
        self._lose()

    def _stopTimers(self):
        self._idle.cancel()
        self._heartbeat.cancel()
        self._close_wait.cancel()

    def _idleExpired(self):
        log.warn("No message from {peer} on {link} for IdleTimeout {idle}s: session reset",
                 peer=self.peer_text, link=self.link.name, idle=self.idle_timeout)
        self.drop()

    def _sendHeartbeat(self):
        if self.state in (OPEN, READY):
            self.send(base(C.HEARTBEAT_REQ, InvokeID=self.nextInvokeID()))

    def _closeTimedOut(self):
        log.info("No CLOSE_CONF from {peer} in {timeout}s", peer=self.peer_text,
                 timeout=self.settings.close_timeout)
        self.drop()

    def _protocolFailure(self, reason, **fields):
        log.error("Bad frame from {peer} on {link}: {reason}; FAILURE_EVENT and session reset",
                  peer=self.peer_text, link=self.link.name, reason=reason, **fields)
        self.send(base(C.FAILURE_EVENT, Status=C.E_INVALID_MESSAGE))
        self.drop()

    def _notActive(self, msg):
        log.warn("{name} from {peer} before the session is open", name=msg.name, peer=self.peer_text)
        invoke = msg.fixed.get("InvokeID")
        if invoke is not None:
            self.send(base(C.FAILURE_CONF, InvokeID=invoke, Status=C.E_SESSION_NOT_ACTIVE))


def _allowed(host, networks) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)
