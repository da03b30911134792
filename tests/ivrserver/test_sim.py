"""The simulator as a peer: the real client corpus, its rules, bad input on both sides."""

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from ctic import config
from ctic.ivrserver import gli
from ctic.ivrserver import messages as m
from ctic.ivrserver.errors import LinkLost
from ctic.ivrserver.userdata import kvlist
from ctic.ivrserver.xmlcodec import Decoder, encode
from ctic.sim.ivrserver import tap
from ctic.sim.ivrserver.server import Faults, IVRServerSim
from tests.ivrserver.harness import lab_model, setup
from tests.ivrserver.test_xmlcodec import corpus
from tests.support import ROOT, assert_no_pending_calls

PRIMARY = ("10.0.0.1", 3021)


class Peer:
    """A raw client connection to a simulator: bytes in, decoded replies out."""

    def __init__(self, sim=None, clock=None):
        self.clock = clock or (sim.clock if sim is not None else Clock())
        self.sim = sim or IVRServerSim(self.clock, lab_model())
        self.link = self.sim.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        self.transport = StringTransportWithDisconnection(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000))
        self.transport.protocol = self.link
        self.link.makeConnection(self.transport)
        self.decoder = gli.GLIDecoder()

    def send(self, payload: bytes):
        self.link.dataReceived(gli.encode_frame(gli.DATA, payload))

    def replies(self):
        frames = self.decoder.feed(self.transport.value())
        self.transport.clear()
        return [Decoder().decode(f.payload) if f.type == gli.DATA else f for f in frames]


def test_the_simulator_accepts_every_real_client_document():
    docs = corpus("to-ivr-server.txt")
    from ctic.sim.ivrserver.model import Port

    # the real site's Behind ports 1-3 [WIRE]
    ports = {p: Port(p, "behind", f"300{p}") for p in ("1", "2", "3")}
    peer = Peer(IVRServerSim(Clock(), lab_model(ports=ports)))
    for doc in docs:
        peer.send(doc)
        peer.clock.advance(1)
    replies = peer.replies()
    assert peer.sim.stats["bad"] == 0 and peer.link.connected
    kinds = [r.element for r in replies]
    assert kinds[:2] == ["LoginResp", "FlowControl"]
    # no message was refused as unreadable or unknown; refusals are the call-state rules only
    assert all(r.FailedReq != "Unknown" or r.TlibErrCode in ("BLOCKED_REQ", "INVALID_REQ")
               for r in replies if r.element == "CallError")
    assert peer.sim.stats["received"] == len(docs) == 20
    assert "UDataResp" in kinds and "CallStatus" in kinds


def test_login_variants_and_requests_before_login():
    peer = Peer(IVRServerSim(Clock(), lab_model(client_names=("IVR1",))))
    peer.send(encode(m.CallInfoReq(CallId="c1")))
    assert peer.replies() == [m.CallError(CallId="c1", FailedReq="Unknown")]
    peer.send(encode(m.LoginReq(CallId="s", Version="4.0", ClientName="Nobody", ReportStatus="true")))
    assert peer.replies()[0].Status == "NoSuchClient"
    peer.send(encode(m.LoginReq(CallId="s", Version="4.0", ClientName="IVR1", ReportStatus="true",
                                ServerMonitor="set")))
    kinds = [r.summary() for r in peer.replies()]
    assert kinds == ["LoginResp IServerVer=IVR Server:8.1.001.01 (ctic ivr-server-sim) Result=Success Status=OK",
                     "FlowControl Status=Off", "MonitorInfo"]


def test_sim_rules_for_calls():
    peer = Peer()
    peer.send(encode(m.LoginReq(CallId="s", Version="4.0", ClientName="IVR1")))
    peer.replies()
    peer.send(encode(m.EndCall(CallId="ghost", EndCause="Normal")))
    assert peer.replies() == [m.CallError(CallId="ghost", FailedReq="NoSuchCall")]
    peer.send(encode(m.NewCall(CallId="a", CallControlMode="Network", CalledNum="01")))
    peer.send(encode(m.NewCall(CallId="b", CallControlMode="Network", CalledNum="01")))
    assert peer.replies() == [m.EndCall(CallId="b", EndCause="InvalidStateTransition")]
    peer.send(encode(m.OneStepXfer(CallId="a", DestDN="5550800")))
    assert peer.replies() == [m.CallError(CallId="a", FailedReq="Unknown", TlibErrCode="BLOCKED_REQ")]
    peer.clock.advance(0.3)
    assert [r.Event for r in peer.replies()] == ["Ringing", "Established"]
    peer.send(encode(m.RouteRequest(CallId="a", RouteDN="7902")))  # URS never answers
    peer.clock.advance(4.0)
    assert peer.replies() == [m.RouteResponse(CallId="a", RouteType="Default")]
    peer.send(encode(m.EndCall(CallId="a", EndCause="Normal")))
    assert peer.replies() == [] and peer.sim.calls == {}
    assert_no_pending_calls(peer.clock)


def test_bad_input_at_the_simulator():
    peer = Peer()
    peer.link.dataReceived(b"\x00\x03\x00\x05\x01\x00abc")  # VersionNumber 1
    assert peer.replies() == [gli.Frame(gli.ERROR, b"")] and peer.link.connected
    peer.send(b"<GctiMsg><CallId>7</CallId><Frobnicate/></GctiMsg>")
    assert peer.replies() == [m.CallError(CallId="7", FailedReq="Unknown")]
    peer.send(b"<GctiMsg><CallId>7</CallId><NewCall")
    assert peer.replies() == [] and peer.link.connected and peer.sim.stats["bad"] == 2
    peer.link.dataReceived(b"GET / HTTP/1.1\r\n\r\n")  # framing lost
    assert not peer.link.connected


def test_a_reply_the_target_encoding_cannot_carry_is_logged_not_raised():
    from ctic.ivrserver.xmlcodec import Encoder

    utf8 = Encoder("UTF-8").encode
    peer = Peer()  # target-encoding ISO-8859-1
    peer.send(encode(m.LoginReq(CallId="s", Version="4.0", ClientName="IVR1")))
    peer.send(encode(m.NewCall(CallId="a", CallControlMode="Network", CalledNum="01")))
    peer.clock.advance(0.3)
    peer.replies()
    peer.send(utf8(m.UDataSet(CallId="a", Action="Replace", RequestId="1", UDataEx=kvlist({"Cur": "\u20ac"}))))
    assert peer.replies() == [m.UDataResp(CallId="a", Result="Success", RequestId="1")]
    peer.send(encode(m.UDataGet(CallId="a", Keys="Cur", RequestId="2")))  # the euro sign has no ISO-8859-1 byte
    assert peer.replies() == [] and peer.link.connected and peer.sim.stats["bad"] == 1
    peer.send(encode(m.UDataDel(CallId="a", Action="DeleteAll", RequestId="3")))
    assert peer.replies() == [m.UDataResp(CallId="a", Result="Success", RequestId="3")]


def test_fault_injection_split_writes_and_drop_after():
    clock = Clock()
    sim = IVRServerSim(clock, lab_model(), Faults(write_chunk=7, drop_link_after=3))
    peer = Peer(sim, clock)
    peer.send(encode(m.LoginReq(CallId="s", Version="4.0", ClientName="IVR1")))
    writes = peer.transport.value()
    assert [r.element for r in peer.replies()] == ["LoginResp", "FlowControl"] and len(writes) > 7
    peer.send(encode(m.LogMsg(CallId="s", MsgType="Standard", Msg="hello")))
    peer.send(encode(m.LogMsg(CallId="s", MsgType="Standard", Msg="bye")))
    assert not peer.link.connected


def test_client_bad_input_keeps_the_link_unless_framing_is_lost():
    net, client = setup()
    call = client.new_call("F1", mode="front", ani="1", dnis="2")
    net.flush()
    link = client.link
    link.dataReceived(gli.encode_frame(gli.DATA, b"<GctiMsg><CallId>x</CallId><Nope/></GctiMsg>"))
    link.dataReceived(gli.encode_frame(gli.DATA, b"<not xml"))
    link.dataReceived(gli.encode_frame(gli.DATA, encode(m.CallStatus(CallId="unknown", Event="Ringing"))))
    link.dataReceived(b"\x00\x03\x00\x05\x07\x00abc")
    assert client.link is link and client.ready and call.active
    net.servers[PRIMARY].faults.reply_delay = 1.0
    pending = call.call_info()
    link.dataReceived(b"\xff\xff\xff\xff\xff\xff")
    net.flush()
    assert isinstance(pending.result.value, Exception)
    pending.addErrback(lambda f: None)
    assert isinstance(call.ended.result, LinkLost) and "framing lost" in call.ended.result.reason
    net.run(2.5)
    assert client.ready
    client.stopService()
    net.flush()
    assert_no_pending_calls(net)


def test_shipped_configuration_loads():
    cfg = config.load(str(ROOT / "etc" / "ivr-server-sim.ini"), tap.SCHEMA)
    model, faults = tap.build(cfg)
    assert cfg["gli_server_group_1"]["gli-server-address"] == [("127.0.0.1", 3021)]
    assert {"01", "02", "03"} <= set(model.ports) and model.routes["7900"].dest == "5550800"
    assert model.router_timeout == 4.0 and faults == Faults()
