# -*- test-case-name: tests.sip.test_transport -*-
"""
SIP transports on Twisted: UDP, TCP and TLS feeding one Sans-IO codec.

L{TransportLayer} owns the listeners and the stream connections, stamps
C{received}/C{rport} on requests (RFC 3261 §18.2.1, RFC 3581), answers
malformed requests with 400 (505, 513) itself, routes responses by the top
Via (§18.2.2), reuses stream connections keyed by peer, closes idle ones,
bounds their number, and hands every good message to its user::

    user.messageReceived(message)          # message.source is a Peer
    user.transportError(peer, message, reason)   # a send that could not happen

No send or write raises into its caller or the reactor: a write that fails
is logged (one line, error level), counted in C{write_failures}, and
reported with C{transportError} for the message that was being sent, so a
transaction waiting on it ends with a 503.

The reactor is passed in; nothing here imports the global one.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass, field

from twisted.internet import protocol
from twisted.logger import Logger, LogLevel

from ctic.events import MessageEvents
from ctic.sip.errors import SIPParseError
from ctic.sip.message import REASONS, Message, Request, Response
from ctic.sip.parser import PING, DEFAULT_LIMITS, Limits, StreamParser, parse_datagram
from ctic.sip.uri import SIPURI
from ctic.timers import Timer

log = Logger(namespace="ctic.sip.transport")

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
RELIABLE = frozenset(("TCP", "TLS"))
_RAW_KEYS = ("via", "from", "call-id", "cseq")


@dataclass(frozen=True)
class Peer:
    """The far end of a message: transport (C{UDP}, C{TCP}, C{TLS}), host, port."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"


@dataclass
class TransportConfig:
    """Transport limits and timers (ours; see README)."""

    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    tcp_idle_timeout: float = 300.0
    max_connections: int = 1024
    max_connections_per_source: int = 128
    tcp_message_deadline: float = 5.0
    udp_max_datagram: int = 65535
    tcp_connect_timeout: float = 10.0
    udp_buffer: int = 4 * 1024 * 1024


def stamp_via(request: Request, host: str, port: int) -> None:
    """RFC 3261 §18.2.1 and RFC 3581 §4: add C{received} and fill C{rport}."""
    via = request.top_via
    if via is None:
        return
    params = via.params
    if "rport" in params:
        params["rport"] = str(port)
        params["received"] = host
    elif via.host != host:
        params["received"] = host


def response_peer(via, transport: str) -> Peer:
    """Where a response goes when it cannot follow its request's connection (§18.2.2)."""
    params = via.params
    host = params.get("maddr") or params.get("received") or via.host
    rport = params.get("rport")
    if rport and rport.isdigit():
        port = int(rport)
    else:
        port = via.port or DEFAULT_PORTS.get(via.transport, 5060)
    return Peer(via.transport if via.transport in DEFAULT_PORTS else transport, host, port)


def uri_peer(uri, default_transport: str = "UDP") -> Peer | None:
    """The next hop a SIP URI names (RFC 3263 without DNS: host, port, transport)."""
    if not isinstance(uri, SIPURI):
        return None
    host = uri.params.get("maddr") or uri.host
    transport = uri.transport or ("TLS" if uri.secure else default_transport)
    if uri.secure and transport == "TCP":
        transport = "TLS"
    port = uri.port or DEFAULT_PORTS.get(transport, 5060)
    return Peer(transport, host, port)


# The largest UDP payload over IPv4 (65,535 - 20 - 8): a datagram larger than
# this cannot be sent at all (Twisted raises MessageLengthError).
MAX_DATAGRAM = 65507


def error_response_bytes(err: SIPParseError, mandatory_only: bool = False) -> bytes:
    """
    A minimal response to a request that failed to parse, from its raw headers.

    With C{mandatory_only}, only the top Via is echoed and no Warning is added
    (RFC 3261 §18.2.2: the response goes back to the top Via's sent-by).
    """
    raw = err.raw_headers
    status = err.status
    lines = [f"SIP/2.0 {status} {REASONS.get(status, 'Bad Request')}"]
    vias = raw.get("via", ())
    for v in (vias[:1] if mandatory_only else vias):
        lines.append(f"Via: {v}")
    for name, key in (("From", "from"), ("To", "to"), ("Call-ID", "call-id"), ("CSeq", "cseq")):
        values = raw.get(key)
        if values:
            value = values[0]
            if key == "to" and "tag=" not in value:
                # §8.2.6.2: a To-tag, the same for every retransmission.
                seed = "|".join(str(raw.get(k)) for k in _RAW_KEYS)
                value += ";tag=" + hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()
            lines.append(f"{name}: {value}")
    if not mandatory_only:
        reason = err.reason.replace("\\", "\\\\").replace('"', "'")[:200]
        lines.append(f'Warning: 399 ctic "{reason}"')
    lines.append("Content-Length: 0\r\n\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


class TransportLayer:
    """
    The listeners, connections and routing rules of one SIP node.

    @ivar addresses: transport name to the (host, port) we advertise for it
        in Via, Contact and Record-Route.
    """

    def __init__(self, reactor, user=None, config: TransportConfig | None = None,
                 advertised_host: str | None = None, tls_client_context=None):
        self.reactor = reactor
        self.tls_client_context = tls_client_context
        self.user = user
        self.config = config or TransportConfig()
        self.advertised_host = advertised_host
        self.addresses: dict[str, tuple[str, int]] = {}
        self._udp = None
        self._ports = []
        self._connections: dict[Peer, SIPStreamProtocol] = {}
        self._per_source: dict[str, int] = {}  # inbound connections by source address
        self.evicted = 0  # connections closed to make room (for metrics)
        self._pending: dict[Peer, list[bytes]] = {}
        self.events = MessageEvents()  # ladder views subscribe here
        self._ip_hosts: set = set()  # hosts Twisted's UDP write accepted (IP literals)
        # Answers to malformed requests that could not be sent (too large for a
        # datagram, or the write failed); read by metrics.
        self.dropped_error_responses = 0
        # Stream writes that raised (each logged, the connection closed); read by metrics.
        self.write_failures = 0

    # --- listening ---------------------------------------------------------

    def listen_udp(self, port: int, interface: str = "") -> int:
        proto = SIPDatagramProtocol(self)
        p = self.reactor.listenUDP(port, proto, interface=interface, maxPacketSize=self.config.udp_max_datagram)
        self._ports.append(p)
        _size_buffers(p, self.config.udp_buffer)
        if self._udp is None:
            self._udp = proto
        return self._advertise("UDP", p, interface)

    def listen_tcp(self, port: int, interface: str = "") -> int:
        p = self.reactor.listenTCP(port, SIPStreamFactory(self, "TCP"), interface=interface)
        self._ports.append(p)
        return self._advertise("TCP", p, interface)

    def listen_tls(self, port: int, context_factory, interface: str = "") -> int:
        p = self.reactor.listenSSL(port, SIPStreamFactory(self, "TLS"), context_factory, interface=interface)
        self._ports.append(p)
        return self._advertise("TLS", p, interface)

    def _advertise(self, transport, listening_port, interface) -> int:
        actual = listening_port.getHost().port
        host = self.advertised_host or interface or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        self.addresses.setdefault(transport, (host, actual))
        log.info("SIP listening on {transport} {interface}:{port}", transport=transport, interface=interface or "*", port=actual)
        return actual

    def stop(self):
        """Stop listening and drop every connection; returns a Deferred."""
        from twisted.internet import defer

        for conn in list(self._connections.values()):
            conn.transport.loseConnection()
        ports, self._ports = self._ports, []
        self._udp = None
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports], consumeErrors=True)

    def _event(self, direction: str, peer: Peer, msg: Message) -> None:
        """A message event for ladder views (only called while someone listens)."""
        self.events.emit(direction, "SIP", str(peer), None, self.reactor.seconds(), msg,
                         name=msg.method if type(msg) is Request else str(msg.status),
                         call_ref=msg.call_id, summary=msg.summary())

    # --- receiving ---------------------------------------------------------

    def _received(self, msg: Message, peer: Peer) -> None:
        msg.source = peer
        if type(msg) is Request:
            stamp_via(msg, peer.host, peer.port)
        if self.events.active:
            self._event("in", peer, msg)
        user = self.user
        if user is not None:
            try:
                user.messageReceived(msg)
            except Exception:
                log.failure("SIP message handler failed for {summary} from {peer}", summary=msg.summary(), peer=str(peer))

    def _bad(self, err: SIPParseError, peer: Peer, reply) -> None:
        """A message that failed to parse: log it, answer a request, drop a response."""
        if err.can_answer():
            log.warn(
                "Rejected malformed {method} from {peer} with {status}: {reason}",
                method=err.method, peer=str(peer), status=err.status, reason=err.reason,
            )
            out = error_response_bytes(err)
            if peer.transport == "UDP" and len(out) > MAX_DATAGRAM:
                # RFC 3261 §18.2.2: trim the echo to what is mandatory.
                out = error_response_bytes(err, mandatory_only=True)
                if len(out) > MAX_DATAGRAM:
                    self._drop_error_response(peer, err, f"{len(out)} bytes do not fit a datagram")
                    return
            try:
                reply(out)
            except Exception as e:  # a write must never raise into the reactor
                self._drop_error_response(peer, err, f"write failed: {e!r}", LogLevel.error)
        else:
            log.warn(
                "Dropped malformed {kind} from {peer}: {reason}",
                kind="response" if err.is_request is False else "message", peer=str(peer), reason=err.reason,
            )

    def _drop_error_response(self, peer: Peer, err: SIPParseError, why: str, level=LogLevel.warn) -> None:
        self.dropped_error_responses += 1
        log.emit(
            level, "Dropped the {status} answer to a malformed {method} from {peer}: {why}",
            status=err.status, method=err.method, peer=str(peer), why=why,
        )

    # --- sending -----------------------------------------------------------

    def send(self, msg: Message, peer: Peer) -> None:
        """Send a message to a peer, opening a stream connection if needed."""
        try:
            data = bytes(msg)
        except Exception as e:  # a message we built that cannot be written out
            log.error("Could not serialize {summary} for {peer}: {error}", summary=msg.summary(), peer=str(peer),
                      error=repr(e))
            self._report(peer, msg, f"unserializable message: {e!r}")
            return
        if self.events.active:
            self._event("out", peer, msg)
        if peer.transport == "UDP":
            if self._udp is None or self._udp.transport is None:
                self._fail(peer, msg, "no UDP listener")
                return
            port = self._udp.transport
            addr = (peer.host, peer.port)
            try:
                sock = getattr(port, "socket", None)
                if sock is not None and peer.host in self._ip_hosts:
                    # Twisted's Port.write checks the address on every call; this
                    # host is known to be an IP literal, so go straight to the socket.
                    try:
                        sock.sendto(data, addr)
                        return
                    except OSError:
                        pass  # let Twisted's write handle and classify the error
                port.write(data, addr)
                if len(self._ip_hosts) < 4096:
                    self._ip_hosts.add(peer.host)
            except Exception as e:  # e.g. EMSGSIZE, unreachable, a host name
                self._fail(peer, msg, f"UDP send failed: {e}")
            return
        conn = self._connections.get(peer)
        if conn is not None:
            conn.write(data, msg)
            return
        queue = self._pending.get(peer)
        if queue is not None:
            queue.append((data, msg))
            return
        self._pending[peer] = [(data, msg)]
        self._connect(peer)

    def send_response(self, response: Response, request: Message | None = None) -> None:
        """
        Send a response: on the request's own connection when it is still
        open, otherwise by the top Via (§18.2.2, RFC 3581).
        """
        source = request.source if request is not None else None
        if source is not None and source.reliable and source in self._connections:
            self.send(response, source)
            return
        via = response.top_via
        if via is None:
            log.warn("Cannot route a {status} response without Via", status=response.status)
            return
        if source is not None and source.transport == "UDP":
            peer = response_peer(via, "UDP")
            if peer.transport != "UDP":
                peer = Peer("UDP", peer.host, peer.port)
        else:
            peer = response_peer(via, source.transport if source else "UDP")
        self.send(response, peer)

    def _connect(self, peer: Peer) -> None:
        factory = SIPClientFactory(self, peer)
        timeout = self.config.tcp_connect_timeout
        if peer.transport == "TLS":
            ctx = self.tls_client_context
            if ctx is None:
                self._connect_failed(peer, "no TLS client context configured")
                return
            self.reactor.connectSSL(peer.host, peer.port, factory, ctx, timeout=timeout)
        else:
            self.reactor.connectTCP(peer.host, peer.port, factory, timeout=timeout)

    def _connect_failed(self, peer: Peer, reason: str) -> None:
        for data, msg in self._pending.pop(peer, []):
            self._fail(peer, msg, reason)

    def _fail(self, peer: Peer, msg: Message, reason: str) -> None:
        log.warn("SIP send to {peer} failed: {reason}", peer=str(peer), reason=reason)
        self._report(peer, msg, reason)

    def _report(self, peer: Peer, msg: Message, reason: str) -> None:
        user = self.user
        if user is not None and hasattr(user, "transportError"):
            user.transportError(peer, msg, reason)

    def _write_failed(self, conn: "SIPStreamProtocol", data: bytes, msg: Message | None, error: Exception) -> None:
        """
        A write on a stream connection raised: log it (one line), count it,
        close the connection (the next send opens a new one) and report a
        transport error for C{msg}.
        """
        reason = f"write failed: {error!r}"
        self.write_failures += 1
        log.error("SIP {what} to {peer} not sent, closing the connection: {reason}",
                  what=msg.summary() if msg is not None else f"write of {len(data)} bytes", peer=str(conn.peer),
                  reason=reason)
        self._unregister(conn)
        try:
            conn.transport.abortConnection()
        except Exception as e:
            log.error("Could not close {peer} after a failed write: {error}", peer=str(conn.peer), error=repr(e))
        if msg is not None:
            self._report(conn.peer, msg, reason)

    # --- connection table --------------------------------------------------

    def _register(self, conn: "SIPStreamProtocol") -> None:
        self._connections[conn.peer] = conn
        if conn.inbound:
            self._per_source[conn.peer.host] = self._per_source.get(conn.peer.host, 0) + 1
        queue = self._pending.pop(conn.peer, [])
        for i, (data, msg) in enumerate(queue):
            if not conn.write(data, msg):
                for _, unsent in queue[i + 1:]:
                    self._report(conn.peer, unsent, "an earlier write on its connection failed")
                return

    def _unregister(self, conn: "SIPStreamProtocol") -> None:
        if self._connections.get(conn.peer) is conn:
            del self._connections[conn.peer]
            if conn.inbound:
                left = self._per_source[conn.peer.host] - 1
                if left:
                    self._per_source[conn.peer.host] = left
                else:
                    del self._per_source[conn.peer.host]

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def make_room(self, host: str) -> bool:
        """
        Before accepting a connection from C{host}: when a cap is reached,
        close the slowest inbound connection in its scope (that source's for
        the per-source cap, any for the global one) and return C{True}; return
        C{False} when no inbound connection can be closed.  The slowest is the
        one furthest into a message it has not finished (a slowloris peer),
        else the one idle longest, so peers that finish their messages keep
        being served (ours; see README, "Limits").
        """
        config = self.config
        if self._per_source.get(host, 0) >= config.max_connections_per_source:
            if not self._evict([c for c in self._connections.values() if c.inbound and c.peer.host == host]):
                return False
        if len(self._connections) >= config.max_connections:
            return self._evict([c for c in self._connections.values() if c.inbound])
        return True

    def _evict(self, candidates: list) -> bool:
        if not candidates:
            return False
        victim = min(candidates, key=SIPStreamProtocol.eviction_key)
        log.warn("Closing {peer} to make room: {why}", peer=str(victim.peer),
                 why="slow message" if victim.message_started is not None else "idle longest")
        self.evicted += 1
        self._unregister(victim)
        victim.transport.abortConnection()
        return True


def _size_buffers(port, size: int) -> None:
    """
    Give a UDP socket room for bursts.  With the usual 208 KiB default a
    pause of a few tens of milliseconds at several hundred calls per second
    overflows the receive queue, and the kernel drops requests that SIPp then
    retransmits 500 ms later.  The kernel caps the size at net.core.rmem_max.
    """
    sock = getattr(port, "socket", None)
    if sock is None or size <= 0:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
        except OSError as e:
            log.warn("Could not size the UDP socket buffer to {size}: {error}", size=size, error=str(e))


class SIPDatagramProtocol(protocol.DatagramProtocol):
    """UDP: one message per datagram; trailing octets ignored."""

    noisy = False

    def __init__(self, layer: TransportLayer):
        self.layer = layer

    def datagramReceived(self, data, addr):
        if not data.strip(b"\r\n"):
            return  # keep-alive
        layer = self.layer
        try:
            msg = parse_datagram(data, layer.config.limits)
        except SIPParseError as err:
            peer = Peer("UDP", addr[0], addr[1])
            layer._bad(err, peer, lambda out: self.transport.write(out, addr))
            return
        layer._received(msg, Peer("UDP", addr[0], addr[1]))


class SIPStreamProtocol(protocol.Protocol):
    """TCP or TLS: Content-Length framing, keep-alives, idle close, message deadline."""

    def __init__(self, layer: TransportLayer, transport_name: str, peer: Peer | None = None):
        self.layer = layer
        self.transport_name = transport_name
        self.peer = peer
        self.inbound = peer is None  # accepted by a listener, not connected by us
        self.parser = StreamParser(layer.config.limits)
        self.idle = Timer(layer.reactor, self._idle)
        self.deadline = Timer(layer.reactor, self._too_slow)
        self.message_started: float | None = None  # when the unfinished message's first byte came
        self.last_activity = layer.reactor.seconds()

    def eviction_key(self):
        """Sorts the connection to close first first (see L{TransportLayer.make_room})."""
        if self.message_started is not None:
            return (0, self.message_started)
        return (1, self.last_activity)

    def connectionMade(self):
        if self.peer is None:
            addr = self.transport.getPeer()
            self.peer = Peer(self.transport_name, addr.host, addr.port)
        self.layer._register(self)
        self.idle.start(self.layer.config.tcp_idle_timeout)

    def write(self, data: bytes, msg: Message | None = None) -> bool:
        """Write C{data} (C{msg}, if it is one); never raises (L{TransportLayer._write_failed})."""
        try:
            self.transport.write(data)
        except Exception as e:
            self.layer._write_failed(self, data, msg, e)
            return False
        self.idle.start(self.layer.config.tcp_idle_timeout)
        return True

    def dataReceived(self, data):
        self.idle.start(self.layer.config.tcp_idle_timeout)
        try:
            events = self.parser.feed(data)
        except SIPParseError as err:
            # What was framed before the fault is handled as if read alone.
            self._handle(err.framed)
            self.layer._bad(err, self.peer, self.transport.write)
            log.warn("Closing {peer}: stream framing lost", peer=str(self.peer))
            self._stop_deadline()
            self.transport.loseConnection()
            return
        if events:
            self.last_activity = self.layer.reactor.seconds()
        # A message has a deadline from its first byte; one that finished
        # in this read and left the start of the next restarts it.
        if self.parser.in_message:
            if events or self.message_started is None:
                self.message_started = self.layer.reactor.seconds()
                self.deadline.start(self.layer.config.tcp_message_deadline)
        elif self.message_started is not None:
            self._stop_deadline()
        self._handle(events)

    def _stop_deadline(self):
        self.message_started = None
        self.deadline.cancel()

    def _handle(self, events) -> None:
        for event in events:
            if event is PING:
                self.write(b"\r\n")  # RFC 5626 §4.4.1: the pong
            elif isinstance(event, SIPParseError):
                self.layer._bad(event, self.peer, self.transport.write)
            else:
                self.layer._received(event, self.peer)

    def _too_slow(self):
        log.warn("Closing {peer}: no whole message {deadline} s after its first byte ({buffered} bytes buffered)",
                 peer=str(self.peer), deadline=self.layer.config.tcp_message_deadline,
                 buffered=self.parser.buffered)
        self.message_started = None
        self.transport.abortConnection()

    def _idle(self):
        log.info("Closing idle {peer}", peer=str(self.peer))
        self.transport.loseConnection()

    def connectionLost(self, reason=None):
        self.idle.cancel()
        self.deadline.cancel()
        self.layer._unregister(self)


class SIPStreamFactory(protocol.Factory):
    """Accepts TCP/TLS connections, making room past the caps (L{TransportLayer.make_room})."""

    noisy = False

    def __init__(self, layer: TransportLayer, transport_name: str):
        self.layer = layer
        self.transport_name = transport_name

    def buildProtocol(self, addr):
        if not self.layer.make_room(addr.host):
            log.warn(
                "Refused {transport} connection from {host}: {limit} connections open",
                transport=self.transport_name, host=addr.host, limit=self.layer.config.max_connections,
            )
            return None
        return SIPStreamProtocol(self.layer, self.transport_name)


class SIPClientFactory(protocol.ClientFactory):
    """An outbound stream connection to one peer."""

    noisy = False

    def __init__(self, layer: TransportLayer, peer: Peer):
        self.layer = layer
        self.peer = peer

    def buildProtocol(self, addr):
        return SIPStreamProtocol(self.layer, self.peer.transport, self.peer)

    def clientConnectionFailed(self, connector, reason):
        self.layer._connect_failed(self.peer, reason.getErrorMessage())
