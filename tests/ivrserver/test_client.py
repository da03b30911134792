"""The IVR-side client against the simulator, in simulated time (task.Clock + iosim pumps)."""

import pytest
from twisted.internet.protocol import Factory, Protocol

from ctic.ivrserver import messages as m
from ctic.ivrserver.client import LOGGED_IN, CallIds
from ctic.ivrserver.errors import LinkLost, NotReady, PortBusy, RequestFailed, RequestTimeout
from tests.ivrserver.harness import lab_model, setup
from tests.support import assert_no_pending_calls

PRIMARY, BACKUP = ("10.0.0.1", 3021), ("10.0.0.2", 3021)


def result(d):
    out = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


def failure_of(d, kind):
    r = result(d)
    assert hasattr(r, "check") and r.check(kind), r
    return r.value


def finish(net, client):
    client.stopService()
    net.flush()
    assert_no_pending_calls(net)


def test_behind_call_flow():
    net, client = setup()
    assert client.state == LOGGED_IN and client.ready and client.server_version.startswith("IVR Server:8.1")
    call = client.new_call("01")
    events = []
    call.listeners.append(lambda msg: events.append(msg.summary()))
    assert not call.started.called
    net.run(0.3)
    assert result(call.started) is call and call.state == "Established"
    assert events == ["CallStatus Event=Ringing", "CallStatus Event=Established"]
    d = call.call_info()
    net.flush()
    info = result(d)
    assert (info.ANI, info.DNIS, info.ConnId is not None, info.UUID is not None, info.OtherDN) == \
        ("4155550101", "8005550100", True, True, "3081")
    assert result(_flushed(net, call.get_data("Language", "Missing"))) == {"Language": "EN"}
    assert result(_flushed(net, call.set_data({"Score": 3, "Lang": "FR"}))) is None
    assert result(_flushed(net, call.get_all_data())) == {"Language": "EN", "Score": 3, "Lang": "FR"}
    assert result(_flushed(net, call.delete_data("Score"))) is None
    assert result(_flushed(net, call.get_data("Score"))) == {}
    resp = result(_flushed(net, call.route_request("7900", ced="1234")))
    assert (resp.RouteType, resp.Dest) == ("Normal", "5550800")
    assert result(_flushed(net, call.one_step_transfer("5550800"))).Event == "XferComplete"
    assert result(_flushed(net, call.peek_statistic("ExpectedWaitTime"))) == "42"
    assert result(_flushed(net, call.access_number("5550900", "SiteB"))) == "2200"
    call.end(active_release=False)
    net.flush()
    assert call.ended.called and client.calls == {}
    sim = net.servers[PRIMARY]
    assert sim.calls == {} and sim.ports_busy == {}
    finish(net, client)


def _flushed(net, d):
    net.flush()
    return d


def test_front_mode_carries_ani_and_dnis_from_the_ivr():
    net, client = setup()
    call = client.new_call("F1", mode="front", ani="4155550123", dnis="8005551212")
    net.flush()
    assert call.started.called
    info = result(_flushed(net, call.call_info()))
    assert (info.ANI, info.DNIS, info.CalledNum) == ("4155550123", "8005551212", "F1")
    failure_of(_flushed(net, call.one_step_transfer("5550800")), RequestFailed)  # behind only
    call.end()
    finish(net, client)


def test_network_mode_routes_once_then_connected():
    net, client = setup()
    call = client.new_call("8800", mode="network", ani="4155550123", dnis="8005551212")
    assert call.started.called  # IVR Server sends no CallStatus in Network mode
    resp = result(_flushed(net, call.route_request()))
    assert (resp.RouteType, resp.Dest) == ("Normal", "5550801")
    failure_of(_flushed(net, call.route_request()), RequestFailed)  # one RouteRequest per call
    failure_of(_flushed(net, call.delete_data()), RequestFailed)  # UDataDel not in Network mode
    call.connected()
    call.end()
    finish(net, client)


def test_requests_before_established_and_port_rules():
    net, client = setup()
    net.servers[PRIMARY].model.__dict__  # noqa: B018 (model is frozen; the lab model rings after 0.1 s)
    call = client.new_call("01")
    with pytest.raises(PortBusy):
        client.new_call("01")
    err = failure_of(_flushed(net, call.route_request("7900")), RequestFailed)
    assert err.message.TlibErrCode == "INVALID_REQ"  # as the real server answered [WIRE]
    failure_of(_flushed(net, call.set_data({"a": "b"})), RequestFailed)  # MiscError
    assert result(_flushed(net, call.get_data("Language"))) == {}  # NoMatch
    net.run(0.3)
    assert call.started.called
    call.end()
    finish(net, client)


def test_port_that_never_rings_ends_with_timeout_after_wait_for_ringing():
    net, client = setup()
    call = client.new_call("02")
    net.run(59.5, step=0.5)
    assert not call.started.called
    net.run(1.0, step=0.5)
    err = failure_of(call.started, RequestFailed)
    assert err.message == m.EndCall(CallId=call.CallId, EndCause="Timeout")
    finish(net, client)


def test_unknown_port_is_feature_not_supported():
    net, client = setup()
    call = client.new_call("99")
    net.flush()
    assert failure_of(call.started, RequestFailed).message.EndCause == "FeatureNotSupported"
    finish(net, client)


def test_consultation_transfers_and_conference():
    net, client = setup()
    call = client.new_call("01")
    net.run(0.3)
    failure_of(_flushed(net, call.init_transfer("5550801")), RequestFailed)  # busy agent
    assert result(_flushed(net, call.retrieve())).Event == "Retrieved"
    assert result(_flushed(net, call.init_transfer("5550800"))).Event == "Established"
    assert result(_flushed(net, call.complete_transfer())).Event == "XferComplete"
    err = failure_of(_flushed(net, call.one_step_transfer("5550802")), RequestFailed)
    assert (err.message.FailedReq, err.message.TlibErrCode) == ("OneStepXfer", "1183")
    assert result(_flushed(net, call.init_conference("5550800"))).Event == "Established"
    assert result(_flushed(net, call.complete_conference())).Event == "ConfPartyAdd"
    assert result(_flushed(net, call.one_step_conference("5550800"))).Event == "ConfPartyAdd"
    call.end()
    finish(net, client)


def test_request_timeout_and_late_answer_is_not_misattributed():
    net, client = setup()
    call = client.new_call("F1", mode="front", ani="1", dnis="2")
    net.flush()
    sim = net.servers[PRIMARY]
    sim.faults.reply_delay = 3.5
    first = call.call_info()
    net.advance(3.0)
    failure_of(first, RequestTimeout)
    sim.faults.reply_delay = 0.5
    sim.calls[call.CallId].ani = "changed"
    second = call.call_info()
    net.advance(0.3)  # first's late answer (ANI '1') arrives and is dropped
    assert not second.called
    net.advance(0.3)
    assert result(second).ANI == "changed"
    call.end()
    finish(net, client)


def test_keepalive_when_idle_and_dead_link_after_three_intervals():
    net, client = setup(sims=[], login_timeout=60.0)
    net.servers[PRIMARY] = Factory.forProtocol(Protocol)  # accepts and never says anything
    client.stopService()
    client.startService()
    net.flush()
    sent = []
    client.events.subscribe(lambda e: sent.append(e.summary))
    net.advance(5.0)
    assert sent == ["GLI KeepAliveRequest"]
    net.advance(5.0)
    net.advance(4.9)
    assert client.link is not None
    net.advance(0.2)
    assert client.link is None and client.state != LOGGED_IN
    finish(net, client)


def test_keepalives_are_answered_so_a_quiet_link_stays_up():
    net, client = setup()
    net.run(60, step=1.0)
    assert client.ready
    finish(net, client)


def test_reconnect_with_backoff_then_primary_backup_switchover():
    net, client = setup(servers=(PRIMARY, BACKUP), sims=[])
    net.run(20, step=0.25)
    times = len(net.attempts)
    assert net.attempts[:4] == [PRIMARY, BACKUP, PRIMARY, BACKUP]
    assert 5 <= times <= 12  # 1, 1, 2, 2, 4, 4, 8 ... seconds apart
    from ctic.sim.ivrserver.server import IVRServerSim

    net.servers[PRIMARY] = IVRServerSim(net, lab_model())
    net.servers[BACKUP] = IVRServerSim(net, lab_model())
    net.run(40, step=0.25)
    assert client.ready
    on = client.server
    other = BACKUP if on == PRIMARY else PRIMARY
    call = client.new_call("01")
    net.run(0.3)
    net.servers[on].drop_links()
    net.flush()
    assert isinstance(result(call.ended), LinkLost)
    net.run(1.5)
    assert client.ready and client.server == other
    finish(net, client)


def test_gli_error_frame_makes_the_client_reconnect():
    net, client = setup()
    net.servers[PRIMARY].send_error_frames()
    net.flush()
    assert not client.ready
    net.run(1.5)
    assert client.ready
    finish(net, client)


def test_flow_control_and_init_in_progress():
    net, client = setup(sims=[], login_retry=1.0)
    from ctic.sim.ivrserver.server import IVRServerSim

    sim = net.servers[PRIMARY] = IVRServerSim(net, lab_model(init_in_progress=2.5))
    client.stopService()
    client.startService()
    net.flush()
    assert client.state != LOGGED_IN
    waiter = client.when_ready()
    net.run(3.0)
    assert client.ready and result(waiter) is client
    sim.set_flow_control(True)
    net.flush()
    with pytest.raises(NotReady):
        client.new_call("01")
    sim.set_flow_control(False)
    net.flush()
    assert client.ready
    finish(net, client)


def test_call_ids_are_unique_across_restarts_and_message_events():
    a, b = CallIds("IVR1", now_ms=1000, nonce=1), CallIds("IVR1", now_ms=1000, nonce=2)
    assert a() != b() and CallIds("IVR1")() != CallIds("IVR1")()
    net, client = setup()
    seen = []
    client.events.subscribe(seen.append)
    call = client.new_call("F1", mode="front", ani="1", dnis="2")
    net.flush()
    assert [(e.direction, e.summary) for e in seen][:3] == [
        ("out", "NewCall CallControlMode=Network Version=4.0 CalledNum=F1 DNIS=2 ANI=1"),
        ("in", "CallStatus Event=Ringing"), ("in", "CallStatus Event=Established")]
    assert all(e.call_id == call.CallId and e.peer == "10.0.0.1:3021" for e in seen)
    call.end()
    finish(net, client)


def test_two_clients_share_one_server_and_survive_its_restart():
    from ctic.ivrserver.client import ClientConfig, IVRServerClient

    net, first = setup()
    second = IVRServerClient(net, ClientConfig("IVR2", (PRIMARY,), keepalive_interval=5.0, reconnect_delay=1.0))
    second.startService()
    net.flush()
    sim = net.servers[PRIMARY]
    assert first.ready and second.ready and len(sim.sessions) == 2
    a = first.new_call("01")
    b = second.new_call("01")  # the same IVR port from another client: refused server-wide
    net.run(0.3)
    assert a.started.called and b.ended.called
    assert failure_of(b.started, RequestFailed).message.EndCause == "InvalidStateTransition"
    sim.restart(downtime=3.0)
    net.flush()
    assert isinstance(result(a.ended), LinkLost) and not first.ready and not second.ready
    net.run(2.5)
    assert not first.ready and len(net.attempts) > 2  # refused while the server is down
    net.run(10.0)
    assert first.ready and second.ready and sim.calls == {}
    second.stopService()
    finish(net, first)


def test_dialout_is_refused_and_an_unencodable_refid_does_not_break_the_link():
    from ctic.ivrserver import gli
    from ctic.ivrserver.xmlcodec import Encoder

    net, client = setup()
    link = client.link
    sim = net.servers[PRIMARY]
    sent = sim.stats["received"]
    utf8 = Encoder("UTF-8").encode
    link.dataReceived(gli.encode_frame(gli.DATA, utf8(m.DialOut(RefID="9", OrigNum="1", DestNum="2",
                                                                TimeToAnswer="20"))))
    net.flush()
    assert sim.stats["received"] == sent + 1  # DialOutError NotSupported
    link.dataReceived(gli.encode_frame(gli.DATA, utf8(m.DialOut(RefID="\u20ac", OrigNum="1", DestNum="2",
                                                                TimeToAnswer="20"))))
    net.flush()
    assert client.link is link and client.ready and sim.stats["received"] == sent + 1
    finish(net, client)


def test_a_failing_monitor_listener_does_not_break_the_link():
    from ctic.ivrserver import gli
    from ctic.ivrserver.xmlcodec import encode

    net, client = setup()
    link = client.link
    seen = []

    def broken(msg):
        seen.append(msg)
        raise RuntimeError("listener bug")

    client.monitor_listeners += [broken, seen.append]
    info = m.MonitorInfo(CallId=client.session_call_id, Subject=m.ServerStatus(Name="TServer_IVR", Status="OK"))
    link.dataReceived(gli.encode_frame(gli.DATA, encode(info)))
    assert seen == [info, info] and client.link is link and client.ready
    finish(net, client)
