# -*- test-case-name: tests.ivrserver.test_sim -*-
"""
One GLI connection, for either side: frames in and out, GctiMsg documents
through the codec, GLI keep-alives, and message events.

The protocol only moves bytes and runs two timers; what a message I{means}
is the handler's business (the client, or the simulator's session).  A
handler provides::

    gli_connected(link)                 the TCP connection is up
    gli_message(link, message)          a decoded message arrived
    gli_bad_message(link, error)        a Data frame was not a readable message
    gli_bad_frame(link, bad_frame)      a frame had wrong version/application bytes
    gli_lost(link, reason)              the connection is gone (reason: text)

Keep-alives follow Genesys I-Library (docs/ivr-server-xml.rst §1.3): each C{interval}
seconds with nothing received, send a KeepAliveRequest; after
C{dead_after} seconds with nothing received at all, declare the link dead
and close it.  A KeepAliveRequest from the peer is always answered.  An
Error frame from the peer closes the link (the client then reconnects).

Message events: every message in or out goes to C{events} (a
L{ctic.events.MessageEvents}, shared with whoever wants a ladder view) as a
L{ctic.events.MessageEvent}.  When nobody listens nothing is built.
"""

from __future__ import annotations


from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from ctic.events import IN, OUT, MessageEvents
from ctic.framing import FramingError
from ctic.ivrserver import gli
from ctic.ivrserver.fields import Message
from ctic.ivrserver.xmlcodec import Decoder, EncodeError, Encoder, GctiMsgError
from ctic.timers import Timer

log = Logger(namespace="ctic.ivrserver.link")

PROTOCOL = "GctiMsg"


class GLIProtocol(Protocol):
    """
    @param clock: an C{IReactorTime}.
    @param handler: see the module docstring.
    @param keepalive_interval: seconds; 0 or less disables sending keep-alives.
    @param dead_after: seconds with nothing received before the link is
        closed; 0 or less disables it.
    @param events: the L{MessageEvents} this link reports to (default: its own).
    """

    def __init__(self, clock, handler, *, encoder: Encoder | None = None, decoder: Decoder | None = None,
                 keepalive_interval: float = 0, dead_after: float = 0, max_payload: int = gli.MAX_PAYLOAD,
                 events: MessageEvents | None = None):
        self.clock = clock
        self.handler = handler
        self.encoder = encoder or Encoder()
        self.decoder = decoder or Decoder()
        self.max_payload = max_payload
        self.keepalive_interval = keepalive_interval
        self.dead_after = dead_after
        self.events = events if events is not None else MessageEvents()
        self._frames = gli.GLIDecoder(max_payload)
        self._idle = Timer(clock, self._idle_fired)
        self._dead = Timer(clock, self._dead_fired)
        self.peer = "?"
        self.connected = False
        self._lost_reason = None

    # --- Twisted ------------------------------------------------------------

    def connectionMade(self):
        self.connected = True
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self._arm()
        self.handler.gli_connected(self)

    def dataReceived(self, data: bytes):
        self._arm()
        fatal = None
        try:
            frames = self._frames.feed(data)
        except FramingError as e:
            frames, fatal = e.frames, e  # handle what came before the fault, then close
        self._handle_frames(frames)
        if fatal is not None:
            log.warn("GLI framing lost with {peer}: {reason}; closing the link", peer=self.peer, reason=fatal.reason)
            self._frames.clear()
            self.abort(f"framing lost: {fatal.reason}")

    def _handle_frames(self, frames) -> None:
        for frame in frames:
            if not self.connected:
                return
            if isinstance(frame, gli.BadFrame):
                log.warn("Skipped a GLI frame from {peer}: {reason}", peer=self.peer, reason=frame.reason)
                self.handler.gli_bad_frame(self, frame)
            elif frame.type == gli.DATA:
                self._data(frame.payload)
            elif frame.type == gli.KEEP_ALIVE_REQUEST:
                self._control(IN, "KeepAliveRequest")
                self._write(gli.KEEP_ALIVE_RESPONSE_FRAME)
                self._control(OUT, "KeepAliveResponse")
            elif frame.type == gli.KEEP_ALIVE_RESPONSE:
                self._control(IN, "KeepAliveResponse")
            elif frame.type == gli.ERROR:
                self._control(IN, "Error")
                log.warn("GLI Error frame from {peer} (code {code}); closing the link",
                         peer=self.peer, code=frame.payload.hex() or "none")
                self.abort("GLI Error frame received")
                return

    def connectionLost(self, reason=None):
        self.connected = False
        self._idle.cancel()
        self._dead.cancel()
        why = self._lost_reason or (reason.getErrorMessage() if reason is not None else "closed")
        self.handler.gli_lost(self, why)

    # --- sending ------------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Encode and write one message; raises L{EncodeError} for a message the DTD forbids."""
        payload = self.encoder.encode(msg)
        if len(payload) > self.max_payload:
            raise EncodeError(f"{msg.element} is {len(payload)} bytes, over the limit of {self.max_payload}")
        self._write(gli.encode_frame(gli.DATA, payload, self.max_payload))
        if self.events.active:
            self.events.emit(OUT, PROTOCOL, self.peer, None, self.clock.seconds(), msg, name=msg.element,
                             call_ref=msg.CallId)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (fault injection, tests)."""
        self._write(data)

    def send_error(self, code: bytes = b"") -> None:
        """Send a GLI Error frame (the code's layout is unknown,
        docs/ivr-server-xml.rst §1.3; ours is empty)."""
        self._write(gli.encode_frame(gli.ERROR, code))
        self._control(OUT, "Error")

    def abort(self, reason: str) -> None:
        """Close the connection at once; C{gli_lost} gets C{reason}."""
        if self._lost_reason is None:
            self._lost_reason = reason
        if self.transport is not None:
            self.transport.abortConnection()

    # --- internals ----------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.connected:
            self.transport.write(data)

    def _data(self, payload: bytes) -> None:
        try:
            msg = self.decoder.decode(payload)
        except GctiMsgError as e:
            log.warn("Unreadable GctiMsg from {peer}: {reason}", peer=self.peer, reason=e.reason,
                     call_id=e.call_id, element=e.element)
            self.handler.gli_bad_message(self, e)
            return
        if self.events.active:
            self.events.emit(IN, PROTOCOL, self.peer, None, self.clock.seconds(), msg, name=msg.element,
                             call_ref=msg.CallId)
        self.handler.gli_message(self, msg)

    def _control(self, direction: str, name: str) -> None:
        if self.events.active:
            self.events.emit(direction, PROTOCOL, self.peer, None, self.clock.seconds(), None,
                             name=f"GLI {name}", summary=f"GLI {name}")

    def _arm(self) -> None:
        if self.keepalive_interval > 0:
            self._idle.start(self.keepalive_interval)
        if self.dead_after > 0:
            self._dead.start(self.dead_after)

    def _idle_fired(self) -> None:
        if self.connected:
            self._write(gli.KEEP_ALIVE_REQUEST_FRAME)
            self._control(OUT, "KeepAliveRequest")
            self._idle.start(self.keepalive_interval)

    def _dead_fired(self) -> None:
        log.warn("Nothing received from {peer} for {seconds}s; the link is dead", peer=self.peer,
                 seconds=self.dead_after)
        self.abort(f"nothing received for {self.dead_after}s (keep-alive timeout)")
