"""
The SIP transport layer with fake transports and a clock: Via stamping,
response routing by Via, stream framing and keep-alives, idle close, the
connection bound, malformed input; and a real TLS loopback.
"""

from __future__ import annotations

import datetime

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import FakeDatagramTransport, MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent

from ctic.sip.message import make_response
from ctic.sip.parser import Limits, StreamParser, parse_datagram
from ctic.sip.transport import (
    Peer, SIPDatagramProtocol, SIPStreamFactory, SIPStreamProtocol, TransportConfig, TransportLayer,
)
from tests.support import assert_no_pending_calls


def options(via=b"SIP/2.0/UDP client.example.com:5070;branch=z9hG4bKa1", call_id=b"c1", extra=b""):
    return (
        b"OPTIONS sip:rm@127.0.0.1 SIP/2.0\r\nVia: " + via + b"\r\n"
        b"From: <sip:probe@example.com>;tag=f1\r\nTo: <sip:rm@127.0.0.1>\r\n"
        b"Call-ID: " + call_id + b"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n" + extra +
        b"Content-Length: 0\r\n\r\n"
    )


class Recorder:
    """A transport user that keeps what it is given."""

    def __init__(self):
        self.messages = []
        self.errors = []

    def messageReceived(self, msg):
        self.messages.append(msg)

    def transportError(self, peer, message, reason):
        self.errors.append((peer, message, reason))


@pytest.fixture
def reactor():
    return MemoryReactorClock()


@pytest.fixture
def user():
    return Recorder()


def udp_layer(reactor, user, config=None):
    layer = TransportLayer(reactor, user, config)
    proto = SIPDatagramProtocol(layer)
    proto.transport = FakeDatagramTransport()
    layer._udp = proto
    return layer, proto


_streams: list = []


@pytest.fixture(autouse=True)
def end_streams():
    """
    A StringTransport never reports the connection lost, so a test that ends
    with a connection up would leave its idle and deadline timers behind:
    end every connection C{stream()} made, as the reactor would.
    """
    yield
    for proto in _streams:
        if proto.idle.active or proto.deadline.active:
            proto.connectionLost(None)
    _streams.clear()


def stream(layer, host="192.0.2.50", port=40000, kind="TCP"):
    proto = SIPStreamFactory(layer, kind).buildProtocol(IPv4Address("TCP", host, port))
    if proto is None:
        return None, None
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    proto.makeConnection(transport)
    _streams.append(proto)
    return proto, transport


def close(proto, transport):
    assert transport.disconnecting
    proto.connectionLost(None)


# --- UDP: received/rport and responses by Via --------------------------------------

def test_received_added_when_sent_by_differs(reactor, user):
    layer, proto = udp_layer(reactor, user)
    proto.datagramReceived(options(), ("192.0.2.9", 5070))
    (msg,) = user.messages
    assert msg.source == Peer("UDP", "192.0.2.9", 5070)
    assert msg.top_via.received == "192.0.2.9" and "rport" not in msg.top_via.params
    layer.send_response(make_response(msg, 200), msg)
    (data, addr), = proto.transport.written
    assert addr == ("192.0.2.9", 5070)  # received + the Via port (§18.2.2)
    assert parse_datagram(data).top_via.received == "192.0.2.9"


def test_no_received_when_sent_by_is_the_source(reactor, user):
    layer, proto = udp_layer(reactor, user)
    proto.datagramReceived(options(b"SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa1"), ("192.0.2.9", 5090))
    (msg,) = user.messages
    assert msg.top_via.params == {"branch": "z9hG4bKa1"}
    layer.send_response(make_response(msg, 200), msg)
    assert proto.transport.written[0][1] == ("192.0.2.9", 5060)  # default port, not the source port


def test_rport_filled_and_used(reactor, user):
    layer, proto = udp_layer(reactor, user)
    proto.datagramReceived(options(b"SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa1"), ("198.51.100.7", 61000))
    (msg,) = user.messages
    assert msg.top_via.params["rport"] == "61000" and msg.top_via.received == "198.51.100.7"
    layer.send_response(make_response(msg, 200), msg)
    assert proto.transport.written[0][1] == ("198.51.100.7", 61000)  # RFC 3581 §4


def test_maddr_wins(reactor, user):
    layer, proto = udp_layer(reactor, user)
    proto.datagramReceived(options(b"SIP/2.0/UDP 10.0.0.1:5062;maddr=239.1.1.1;branch=z9hG4bKa1"), ("192.0.2.1", 5062))
    layer.send_response(make_response(user.messages[0], 200), user.messages[0])
    assert proto.transport.written[0][1] == ("239.1.1.1", 5062)


def test_only_the_top_via_is_stamped(reactor, user):
    _, proto = udp_layer(reactor, user)
    proto.datagramReceived(
        options(b"SIP/2.0/UDP a.example.com;rport;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b.example.com;rport;branch=z9hG4bK0"),
        ("192.0.2.2", 5060))
    first, second = user.messages[0].via
    assert first.received == "192.0.2.2" and second.params == {"rport": None, "branch": "z9hG4bK0"}


def test_udp_malformed_request_answered_400_with_warning(reactor, user):
    _, proto = udp_layer(reactor, user)
    proto.datagramReceived(options(extra=b"Max-Forwards: 70\r\n"), ("192.0.2.3", 5060))  # two Max-Forwards
    assert user.messages == []
    (data, addr), = proto.transport.written
    answer = parse_datagram(data)
    assert addr == ("192.0.2.3", 5060)
    assert answer.status == 400 and answer.call_id == "c1" and answer.to.tag
    assert answer.headers.get("warning").startswith('399 ctic "more than one Max-Forwards')


def test_udp_oversized_request_is_513(reactor, user):
    _, proto = udp_layer(reactor, user, TransportConfig(limits=Limits(max_message_size=200)))
    proto.datagramReceived(options(), ("192.0.2.3", 5060))
    (data, _), = proto.transport.written
    assert parse_datagram(data).status == 513 and user.messages == []


def test_udp_malformed_response_and_ack_dropped(reactor, user):
    _, proto = udp_layer(reactor, user)
    bad_resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: x\r\n\r\n"
    proto.datagramReceived(bad_resp, ("192.0.2.3", 5060))
    bad_ack = options().replace(b"OPTIONS", b"ACK").replace(b"Max-Forwards: 70", b"Max-Forwards: 700")
    proto.datagramReceived(bad_ack, ("192.0.2.3", 5060))
    proto.datagramReceived(b"\r\n\r\n", ("192.0.2.3", 5060))  # keep-alive
    assert proto.transport.written == [] and user.messages == []


def test_udp_response_delivered_unstamped(reactor, user):
    _, proto = udp_layer(reactor, user)
    resp = b"SIP/2.0 200 OK\r\n" + options().split(b"\r\n", 1)[1]
    proto.datagramReceived(resp, ("192.0.2.3", 5060))
    (msg,) = user.messages
    assert msg.status == 200 and msg.top_via.received is None


def test_handler_failure_is_contained(reactor):
    """A handler that raises is logged with its traceback; the transport goes on serving."""
    class Broken:
        seen = []

        def messageReceived(self, msg):
            self.seen.append(msg.call_id)
            if len(self.seen) == 1:
                raise RuntimeError("boom")

    handler = Broken()
    _, proto = udp_layer(reactor, handler)
    with capturedLogs() as events:
        proto.datagramReceived(options(call_id=b"first"), ("192.0.2.3", 5060))  # must not raise
    [failure] = [e["log_failure"] for e in events if "log_failure" in e]
    assert failure.check(RuntimeError) and str(failure.value) == "boom"
    proto.datagramReceived(options(call_id=b"second"), ("192.0.2.3", 5060))
    assert handler.seen == ["first", "second"] and proto.transport.written == []


def test_observers_see_in_and_out(reactor, user):
    layer, proto = udp_layer(reactor, user)
    seen = []
    layer.events.subscribe(lambda e: seen.append((e.direction, e.summary)))
    proto.datagramReceived(options(), ("192.0.2.3", 5060))
    layer.send_response(make_response(user.messages[0], 200), user.messages[0])
    assert seen == [("in", "OPTIONS sip:rm@127.0.0.1 SIP/2.0"), ("out", "SIP/2.0 200 OK")]


# --- streams -------------------------------------------------------------------------

def test_tcp_partial_and_coalesced_reads(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    data = options(b"SIP/2.0/TCP client;branch=z9hG4bK1", b"a") + options(b"SIP/2.0/TCP client;branch=z9hG4bK2", b"b")
    for i in range(0, 100):
        proto.dataReceived(data[i:i + 1])
    proto.dataReceived(data[100:])
    assert [m.call_id for m in user.messages] == ["a", "b"]
    assert user.messages[0].source == Peer("TCP", "192.0.2.50", 40000)
    assert user.messages[0].top_via.received == "192.0.2.50"
    proto.dataReceived(data + data[:50])
    assert [m.call_id for m in user.messages] == ["a", "b", "a", "b"]


def test_tcp_keepalive_ping_gets_pong(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    proto.dataReceived(b"\r\n\r\n")
    assert transport.value() == b"\r\n"
    proto.dataReceived(b"\r\n")  # a pong from the peer: nothing back
    assert transport.value() == b"\r\n"


def test_tcp_response_on_same_connection_while_open(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    proto.dataReceived(options(b"SIP/2.0/TCP client.example.com:5070;branch=z9hG4bK1"))
    (req,) = user.messages
    layer.send_response(make_response(req, 200), req)
    (resp,) = StreamParser().feed(transport.value())
    assert resp.status == 200 and reactor.tcpClients == []
    # Once it is closed, the response goes to received:port of the Via on a new connection.
    proto.connectionLost(None)
    layer.send_response(make_response(req, 200), req)
    ((host, port, factory, timeout, _),) = reactor.tcpClients
    assert (host, port) == ("192.0.2.50", 5070)
    # The queued response is written when the new connection comes up.
    out = factory.buildProtocol(None)
    t2 = StringTransport()
    out.makeConnection(t2)
    _streams.append(out)
    assert StreamParser().feed(t2.value())[0].status == 200
    assert layer.connection_count == 1


def test_send_reuses_connection_by_peer(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer, "192.0.2.60", 5060)
    req = parse_datagram(options())
    layer.send(req, Peer("TCP", "192.0.2.60", 5060))
    assert reactor.tcpClients == [] and StreamParser().feed(transport.value())[0].method == "OPTIONS"


def test_failed_connect_reports_transport_error(reactor, user):
    layer = TransportLayer(reactor, user)
    req = parse_datagram(options())
    peer = Peer("TCP", "192.0.2.61", 5060)
    layer.send(req, peer)
    layer.send(req, peer)  # queued behind the same attempt
    (client,) = reactor.tcpClients
    from twisted.python.failure import Failure
    from twisted.internet.error import ConnectionRefusedError
    client[2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert [(p, m.method) for p, m, _ in user.errors] == [(peer, "OPTIONS"), (peer, "OPTIONS")]


class BrokenTransport(StringTransport):
    """A stream whose writes raise, as a TLS connection in a bad state can."""

    def write(self, data):
        raise OSError("write on a broken connection")


def test_failed_write_on_a_connection_is_a_transport_error_not_a_raise(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer, "192.0.2.60", 5060)
    proto.transport = broken = BrokenTransport()
    peer = Peer("TCP", "192.0.2.60", 5060)
    req = parse_datagram(options())
    with capturedLogs() as events:
        layer.send(req, peer)  # must not raise
    [(p, msg, reason)] = user.errors
    assert (p, msg.method) == (peer, "OPTIONS") and "write on a broken connection" in reason
    assert layer.write_failures == 1 and layer.connection_count == 0 and broken.disconnecting
    [event] = [e for e in events if e["log_level"] == LogLevel.error]
    assert "log_failure" not in event and "\n" not in formatEvent(event)  # one line, no traceback
    proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_failed_write_to_a_new_connection_reports_every_queued_message(reactor, user):
    layer = TransportLayer(reactor, user)
    peer = Peer("TCP", "192.0.2.61", 5060)
    for call_id in (b"q1", b"q2"):
        layer.send(parse_datagram(options(call_id=call_id)), peer)
    ((_, _, factory, _, _),) = reactor.tcpClients
    proto = factory.buildProtocol(None)
    proto.makeConnection(BrokenTransport())  # must not raise
    assert [m.call_id for _, m, _ in user.errors] == ["q1", "q2"]
    assert layer.write_failures == 1 and layer.connection_count == 0
    proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_failed_keepalive_pong_does_not_raise(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    proto.transport = BrokenTransport()
    proto.dataReceived(b"\r\n\r\n")
    assert layer.write_failures == 1 and user.errors == [] and layer.connection_count == 0
    proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_failed_write_ends_a_waiting_transaction_with_503(reactor):
    from ctic.sip.transaction import TransactionLayer

    layer = TransportLayer(reactor)
    txns = TransactionLayer(reactor, layer)
    layer.user = txns
    proto, transport = stream(layer, "192.0.2.60", 5060)
    proto.transport = BrokenTransport()
    req = parse_datagram(options(via=b"SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKw1"))
    txn = txns.send_request(req, Peer("TCP", "192.0.2.60", 5060), push_via=False)
    got = []
    txn.on_response = got.append
    reactor.advance(0)
    assert [r.status for r in got] == [503] and txns.client == {}
    proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_tcp_malformed_request_answered_and_connection_kept(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    bad = options(extra=b"CSeq: 2 OPTIONS\r\n")
    proto.dataReceived(bad + options())
    (answer,) = StreamParser().feed(transport.value())
    assert answer.status == 400 and answer.headers.get("warning")
    assert not transport.disconnecting and len(user.messages) == 1


def test_tcp_fatal_framing_answers_then_closes(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    good = options(call_id=b"good")
    proto.dataReceived(good + options().replace(b"Content-Length: 0", b"Content-Length: -1"))
    assert [m.call_id for m in user.messages] == ["good"]  # framed before the fault
    (answer,) = StreamParser().feed(transport.value())
    assert answer.status == 400 and answer.call_id == "c1"
    close(proto, transport)
    assert layer.connection_count == 0
    assert_no_pending_calls(reactor)


def test_tcp_malformed_response_dropped(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    proto.dataReceived(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n")
    assert transport.value() == b"" and user.messages == [] and not transport.disconnecting


def test_idle_close_and_no_timer_left(reactor, user):
    layer = TransportLayer(reactor, user, TransportConfig(tcp_idle_timeout=30))
    proto, transport = stream(layer)
    reactor.advance(29)
    proto.dataReceived(b"\r\n\r\n")  # activity restarts the timer
    reactor.advance(29)
    assert not transport.disconnecting
    reactor.advance(1.5)
    assert transport.disconnecting
    close(proto, transport)
    assert layer.connection_count == 0
    assert_no_pending_calls(reactor)


def test_connection_bound_closes_the_idle_longest(reactor, user):
    layer = TransportLayer(reactor, user, TransportConfig(max_connections=2))
    first = stream(layer, port=1)
    reactor.advance(1)
    second = stream(layer, port=2)
    reactor.advance(1)
    first[0].dataReceived(options(b"SIP/2.0/TCP h;branch=z9hG4bKb1"))  # first is now the fresher
    third = stream(layer, port=3)
    assert third[0] is not None and second[1].disconnecting and not first[1].disconnecting
    assert layer.connection_count == 2 and layer.evicted == 1
    for proto, transport in (first, second, third):
        proto.connectionLost(None)
    assert layer.connection_count == 0
    assert_no_pending_calls(reactor)


def test_connection_bound_closes_a_slow_sender_first(reactor, user):
    """Slowloris: a peer in the middle of a message goes before an idle one."""
    layer = TransportLayer(reactor, user, TransportConfig(max_connections=2))
    idle = stream(layer, port=1)
    reactor.advance(1)
    slow = stream(layer, port=2)
    slow[0].dataReceived(b"OPTIONS sip:x SIP/2.0\r\nVia: ")
    new = stream(layer, port=3)
    assert new[0] is not None and slow[1].disconnecting and not idle[1].disconnecting
    for proto, transport in (idle, slow, new):
        proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_per_source_bound_closes_that_sources_slowest(reactor, user):
    layer = TransportLayer(reactor, user, TransportConfig(max_connections_per_source=2))
    other = stream(layer, host="192.0.2.9", port=1)
    reactor.advance(1)
    a = stream(layer, port=2)
    reactor.advance(1)
    b = stream(layer, port=3)
    c = stream(layer, port=4)  # third from 192.0.2.50: its idle-longest goes
    assert c[0] is not None and a[1].disconnecting and not b[1].disconnecting and not other[1].disconnecting
    assert layer._per_source == {"192.0.2.9": 1, "192.0.2.50": 2}
    for proto, transport in (other, a, b, c):
        proto.connectionLost(None)
    assert layer._per_source == {} and layer.connection_count == 0
    assert_no_pending_calls(reactor)


def test_outbound_connections_are_never_closed_to_make_room(reactor, user):
    layer = TransportLayer(reactor, user, TransportConfig(max_connections=1))
    out = SIPStreamProtocol(layer, "TCP", Peer("TCP", "192.0.2.7", 5060))
    out_transport = StringTransport()
    out.makeConnection(out_transport)
    assert stream(layer, port=2) == (None, None)
    assert not out_transport.disconnecting
    out.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_message_deadline_closes_a_trickling_peer(reactor, user):
    layer = TransportLayer(reactor, user, TransportConfig(tcp_message_deadline=5))
    proto, transport = stream(layer)
    for byte in b"OPTIONS sip:rm@127.0.0.1 SIP/2.0\r\n":  # 34 bytes, 0.3 s apart
        proto.dataReceived(bytes([byte]))
        reactor.advance(0.3)
        if transport.disconnecting:
            break
    assert transport.disconnecting and user.messages == []
    proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_message_deadline_restarts_per_message_and_ignores_keepalives(reactor, user):
    layer = TransportLayer(reactor, user, TransportConfig(tcp_message_deadline=5))
    proto, transport = stream(layer)
    proto.dataReceived(b"\r\n")  # half a keep-alive: no message has begun
    reactor.advance(10)
    assert not transport.disconnecting
    proto.dataReceived(b"\r\n")
    msg = options(b"SIP/2.0/TCP h;branch=z9hG4bKd1")
    half = len(msg) // 2
    proto.dataReceived(msg[:half])
    for _ in range(3):
        # Each read finishes one message and starts the next: 4 s on each, 12 s in all.
        reactor.advance(4)
        proto.dataReceived(msg[half:] + msg[:half])
    assert not transport.disconnecting and len(user.messages) == 3
    reactor.advance(5)
    assert transport.disconnecting
    proto.connectionLost(None)
    assert_no_pending_calls(reactor)


def test_stop_drops_connections(reactor, user):
    layer = TransportLayer(reactor, user)
    proto, transport = stream(layer)
    layer.stop()
    assert transport.disconnecting
    close(proto, transport)
    assert layer.connection_count == 0 and not proto.idle.active


# --- TLS over real loopback ------------------------------------------------------------

def _self_signed(tmp_path, cn="localhost"):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    tmp_path.mkdir(exist_ok=True)
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("mutual", [False, True])
def test_tls_loopback_options_gets_200(tmp_path, mutual):
    pytest.importorskip("OpenSSL")
    from twisted.internet import defer, protocol, reactor as real_reactor, ssl

    from ctic.config import Schema, loads
    from ctic.sip.responder import StatelessResponder
    from ctic.sip.service import sip_section, tls_contexts

    SCHEMA = Schema("test", (sip_section(),))

    cert, key = _self_signed(tmp_path)
    text = f"[sip]\ntls-certificate = {cert}\ntls-private-key = {key}\n"
    if mutual:
        # tls-ca: peers must present a certificate signed by one of these; a
        # bundle holds several (ours is second, after an unrelated one).
        other, _ = _self_signed(tmp_path / "other", "other-ca.example")
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(open(other, "rb").read() + open(cert, "rb").read())
        text += f"tls-ca = {bundle}\n"
    config = loads(text, SCHEMA)
    server_ctx, client_ctx = tls_contexts(config["sip"])
    assert client_ctx is not None
    responder = StatelessResponder()
    layer = TransportLayer(real_reactor, responder)
    responder.transport = layer
    port = layer.listen_tls(0, server_ctx, "127.0.0.1")

    class Client(protocol.Protocol):
        def connectionMade(self):
            self.parser = StreamParser()
            self.transport.write(options(b"SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKtls"))

        def dataReceived(self, data):
            for event in self.parser.feed(data):
                self.factory.done.callback(event)
                self.transport.loseConnection()

    factory = protocol.ClientFactory.forProtocol(Client)
    factory.done = defer.Deferred()
    client_cert = None
    if mutual:
        client_cert = ssl.PrivateCertificate.loadPEM(open(cert, "rb").read() + open(key, "rb").read())
    verify = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(open(cert, "rb").read()),
                                     clientCertificate=client_cert)
    real_reactor.connectSSL("127.0.0.1", port, factory, verify)
    result = []
    factory.done.addBoth(result.append)
    deadline = real_reactor.seconds() + 10
    while not result and real_reactor.seconds() < deadline:
        real_reactor.iterate(0.01)
    stopped = layer.stop()
    for _ in range(50):
        real_reactor.iterate(0.01)
    assert stopped.called
    (resp,) = result
    assert resp.status == 200 and resp.headers.get("allow")
    assert resp.top_via.transport == "TLS" and resp.top_via.branch == "z9hG4bKtls"



def test_udp_socket_buffers_are_sized_for_bursts():
    """The listener's socket gets the configured buffers (the kernel may cap them at rmem_max)."""
    import socket as _socket

    from ctic.sip.transport import _size_buffers

    class Port:
        def __init__(self):
            self.socket = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)

    small, big = Port(), Port()
    try:
        _size_buffers(small, 0)  # 0: leave the system default
        _size_buffers(big, 1024 * 1024)
        get = lambda port: port.socket.getsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF)
        assert get(big) > get(small)
    finally:
        small.socket.close()
        big.socket.close()


class SizedDatagramTransport(FakeDatagramTransport):
    """Raises like Twisted's udp.Port.write when a datagram cannot be sent."""

    def write(self, packet, addr=None):
        from twisted.internet.error import MessageLengthError
        if len(packet) > 65507:
            raise MessageLengthError("message too long")
        super().write(packet, addr)


def big_malformed_request(size=65450):
    pad = (size - 400) // 2
    via = b"SIP/2.0/UDP client.example.com:5070;branch=z9hG4bKa1;x=" + b"v" * pad
    data = options(via=via, extra=b"Max-Forwards: 70\r\n")  # two Max-Forwards: a 400
    return data.replace(b"tag=f1", b"tag=f1;y=" + b"f" * (size - len(data) - 9), 1)


def test_udp_400_too_big_for_a_datagram_is_trimmed_or_dropped(reactor, user):
    layer, proto = udp_layer(reactor, user)
    proto.transport = SizedDatagramTransport()
    data = big_malformed_request()
    assert 65400 < len(data) < 65507
    proto.datagramReceived(data, ("192.0.2.3", 5060))  # must not raise
    assert user.messages == []
    (out, addr), = proto.transport.written
    assert len(out) <= 65507
    assert parse_datagram(out).status == 400 and addr == ("192.0.2.3", 5060)


def compact_malformed_request(vias, size=65507):
    """
    A request of C{size} bytes whose 400 outgrows it: compact headers with
    no space after the colon (C{v:} is echoed as C{Via: }), a bad byte in
    the From URI (a 400 that costs no extra header), and a To without a tag.
    """
    head = b"OPTIONS sip:a@b SIP/2.0\r\n" + b"".join(b"v:" + v + b"\r\n" for v in vias)
    tail = b"t:<sip:a@b>\r\ni:c\r\nCSeq:1 OPTIONS\r\nMax-Forwards:70\r\nl:0\r\n\r\n"
    from_ = b"f:<sip:a@b\xff>;tag=1;x="
    return head + from_ + b"p" * (size - len(head) - len(tail) - len(from_) - 2) + b"\r\n" + tail


def answer_sizes(data):
    """(full, trimmed) sizes of the 400 to C{data}, as the transport builds them."""
    from ctic.sip.errors import SIPParseError
    from ctic.sip.transport import error_response_bytes

    with pytest.raises(SIPParseError) as err:
        parse_datagram(data)
    return len(error_response_bytes(err.value)), len(error_response_bytes(err.value, mandatory_only=True))


def test_udp_400_over_a_datagram_is_trimmed_to_the_top_via(reactor, user):
    vias = [b"SIP/2.0/UDP h%d.example.com:5060;branch=z9hG4bK%d;x=" % (i, i) + b"v" * 400 for i in range(120)]
    data = compact_malformed_request(vias, 65400)
    full, trimmed = answer_sizes(data)
    assert full > 65507 > trimmed  # the trim branch, not the plain answer
    layer, proto = udp_layer(reactor, user)
    proto.transport = SizedDatagramTransport()
    proto.datagramReceived(data, ("192.0.2.3", 5060))
    (out, addr), = proto.transport.written
    assert (len(out), addr) == (trimmed, ("192.0.2.3", 5060)) and out.startswith(b"SIP/2.0 400 ")
    # Read as lines: the echoed From still holds the bad byte, so it does not parse.
    lines = out.split(b"\r\n")
    assert [line.split(b";")[0] for line in lines if line.startswith(b"Via: ")] == [
        b"Via: SIP/2.0/UDP h0.example.com:5060"]
    assert not [line for line in lines if line.startswith(b"Warning")]
    assert b"Call-ID: c" in lines and [line for line in lines if line.startswith(b"To: <sip:a@b>;tag=")]
    assert layer.dropped_error_responses == 0


def test_udp_400_that_cannot_fit_even_trimmed_is_dropped_and_counted(reactor, user):
    data = compact_malformed_request([b"SIP/2.0/UDP h:1;branch=z9hG4bK1;x=" + b"v" * 40000])
    full, trimmed = answer_sizes(data)
    assert len(data) == 65507 and trimmed > 65507
    layer, proto = udp_layer(reactor, user)
    proto.transport = SizedDatagramTransport()
    with capturedLogs() as events:
        proto.datagramReceived(data, ("192.0.2.3", 5060))
    assert proto.transport.written == [] and layer.dropped_error_responses == 1
    assert any("do not fit a datagram" in formatEvent(e) for e in events)


def test_udp_answer_that_cannot_be_written_is_dropped_and_counted(reactor, user):
    layer, proto = udp_layer(reactor, user)

    class Refusing(FakeDatagramTransport):
        def write(self, packet, addr=None):
            raise OSError("unreachable")

    proto.transport = Refusing()
    proto.datagramReceived(options(extra=b"Max-Forwards: 70\r\n"), ("192.0.2.3", 5060))
    assert layer.dropped_error_responses == 1
