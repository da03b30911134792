"""One kind of message event for every protocol: what a ladder view subscribes to."""

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ctic.events import MessageEvents
from ctic.sip.parser import parse_datagram
from ctic.sip.transport import Peer, SIPStreamProtocol, TransportLayer


class ClockReactor(Clock):
    pass


def test_nothing_is_built_while_nobody_listens():
    events = MessageEvents()

    class Boom:
        def summary(self):
            raise AssertionError("a summary was built for nobody")

    events.emit("in", "SIP", "peer", None, 0.0, Boom())  # no observer: returns at once
    seen = []
    unsubscribe = events.subscribe(seen.append)
    events.emit("out", "GED-125", "pg", "Tenant1/9001", 1.5, Boom(), name="NEW_CALL", call_ref=7,
                summary="NEW_CALL DialogueID=7")
    unsubscribe()
    events.emit("out", "GED-125", "pg", None, 2.0, Boom())
    (event,) = seen
    assert (event.direction, event.protocol, event.name, event.call_ref, event.dialogue_id, event.timestamp) == (
        "out", "GED-125", "NEW_CALL", 7, 7, 1.5)


def test_a_failing_observer_does_not_break_the_link():
    events = MessageEvents()
    seen = []
    events.subscribe(lambda e: 1 / 0)
    events.subscribe(seen.append)
    events.emit("in", "GctiMsg", "h:1", None, 0.0, None, name="GLI KeepAliveRequest", summary="GLI KeepAliveRequest")
    assert [e.name for e in seen] == ["GLI KeepAliveRequest"]


def test_sip_transport_reports_messages_in_and_out():
    clock = ClockReactor()
    layer = TransportLayer(clock)
    seen = []
    layer.events.subscribe(seen.append)
    conn = SIPStreamProtocol(layer, "TCP", Peer("TCP", "192.0.2.1", 5070))
    conn.makeConnection(StringTransport())
    raw = (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5070;branch=z9hG4bKe1\r\n"
           b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: ev1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    conn.dataReceived(raw)
    from ctic.sip.message import make_response

    layer.send(make_response(parse_datagram(raw), 200, to_tag="t"), Peer("TCP", "192.0.2.1", 5070))
    assert [(e.direction, e.protocol, e.name, e.call_id, e.peer) for e in seen] == [
        ("in", "SIP", "OPTIONS", "ev1", "tcp:192.0.2.1:5070"), ("out", "SIP", "200", "ev1", "tcp:192.0.2.1:5070")]
    conn.connectionLost(None)
