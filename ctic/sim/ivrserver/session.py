# -*- test-case-name: tests.ivrserver.test_sim -*-
"""
One client connection to the simulated IVR Server, and the calls it owns.

Behaviour follows docs/ivr-server-xml.rst (§3, §4, §10 "Simulator"); where
the sources are silent, the simulator's choices are ours and marked "ours" below:

- Login: LoginResp (IServerVer, Result, Status when ReportStatus=true),
  then FlowControl (Version 4.0 logins), then MonitorInfo/Server for each
  T-Server when ServerMonitor=set.  Requests before login get CallError
  Unknown (ours).
- NewCall: an unknown CalledNum ends with EndCall FeatureNotSupported; a
  port already in a call, or a CallId already in use on the server, ends
  with EndCall InvalidStateTransition (ours).  In-Front ports: Ringing and
  Established at once; Behind ports: after ring/answer delays, or EndCall
  Timeout after wait-for-ringing; Network route DNs: no CallStatus.
- Before Ringing/Established, requests are refused as the real 8.1 server
  did [WIRE]: CallInfoResp with NewCall's data, UDataGet -> NoMatch,
  UDataSet -> MiscError, OneStepXfer -> CallError Unknown BLOCKED_REQ,
  RouteRequest -> CallError Unknown INVALID_REQ (other control requests:
  BLOCKED_REQ, ours).
- Anything for an unknown CallId: CallError NoSuchCall.
- Transfers and conferences are Behind-only (Table 3): elsewhere they get
  CallError naming the request (ours: TlibErrCode INVALID_REQ).
"""

from __future__ import annotations

import itertools
import uuid as _uuid

from twisted.logger import Logger

from ctic.ivrserver import messages as m
from ctic.ivrserver.link import GLIProtocol
from ctic.ivrserver.xmlcodec import EncodeError
from ctic.sim.ivrserver.model import BEHIND, FRONT

log = Logger(namespace="ctic.sim.ivrserver")

NETWORK = "network"
_TRANSFERS = {"OneStepXfer", "OneStepConf", "InitXfer", "CompleteXfer", "InitConf", "CompleteConf", "RetrieveCall",
              "MakeCall"}
_CONN_IDS = itertools.count(0x007902_0EAF04C100)


class SimLink(GLIProtocol):
    """A GLI link whose writes can be cut into small pieces (fault injection)."""

    write_chunk = 0

    def _write(self, data: bytes) -> None:
        if not self.connected:
            return
        n = self.write_chunk
        if n <= 0:
            self.transport.write(data)
            return
        for i in range(0, len(data), n):
            self.transport.write(data[i:i + n])


class SimCall:
    def __init__(self, session, call_id, mode, called_num, ani, dnis, port=None, route=None):
        self.session = session
        self.CallId = call_id
        self.mode = mode
        self.called_num = called_num
        self.port = port
        self.route = route
        self.nc_ani = ani
        self.nc_dnis = dnis
        if mode == BEHIND:
            self.ani = port.ani or f"55501{next(_seq) % 100:02d}"
            self.dnis = port.dnis or port.dn or called_num
        else:
            self.ani, self.dnis = ani, dnis
        self.conn_id = (port.conn_id if port and port.conn_id else None) or f"{next(_CONN_IDS):016x}"
        self.ts_call_id = str(1000 + next(_seq))
        self.uuid = (port.uuid if port and port.uuid else None) or _uuid.uuid4().hex.upper()[:26]
        self.udata = list(port.user_data) if port and mode == BEHIND else []
        self.state = "new"
        self.last_event = None
        self.routed = 0
        self.timers = []

    @property
    def answered(self) -> bool:
        return self.state in ("Ringing", "Established", "Held", "Retrieved", "Dialing", "ConfPartyAdd",
                              "ConfPartyDel", "XferComplete", "Busy")

    def later(self, delay, fn, *args):
        call = self.session.clock.callLater(delay, fn, *args)
        self.timers = [t for t in self.timers if t.active()]
        self.timers.append(call)
        return call

    def cancel_timers(self):
        for t in self.timers:
            if t.active():
                t.cancel()
        self.timers = []


_seq = itertools.count(1)


class SimSession:
    """The GLI handler for one client connection."""

    def __init__(self, server):
        self.server = server
        self.clock = server.clock
        self.model = server.model
        self.link = None
        self.client_name = None
        self.session_call_id = None
        self.logged_in = False
        self.calls: dict[str, SimCall] = {}
        self.received = 0
        self._timers = []

    # --- GLI handler ----------------------------------------------------------

    def gli_connected(self, link):
        self.link = link
        host = link.transport.getPeer().host
        if not self.server.client_allowed(host):
            log.warn("Client {peer} is not in gli-client-list; GLI Error", peer=link.peer)
            link.send_error()
            link.abort("client not allowed")
            return
        log.info("Client {peer} connected", peer=link.peer)

    def gli_lost(self, link, reason):
        log.info("Client {peer} ({client_name}) gone: {reason}; {count} call(s) dropped",
                 peer=link.peer, client_name=self.client_name, reason=reason, count=len(self.calls))
        for call in list(self.calls.values()):
            self._drop(call)
        for t in self._timers:
            if t.active():
                t.cancel()
        self.server.session_lost(self)

    def gli_bad_frame(self, link, frame):
        link.send_error()  # the real server answers an invalid VersionNumber with GLI Error (DOC p.20)

    def gli_bad_message(self, link, error):
        self.server.stats["bad"] += 1
        if error.call_id is not None:
            self.send(m.CallError(CallId=error.call_id, FailedReq="Unknown"))

    def gli_message(self, link, msg):
        self.received += 1
        self.server.stats["received"] += 1
        if self.server.fault_after_message(self):
            return
        handler = getattr(self, "handle_" + msg.element, None)
        if handler is None:
            log.warn("{element} is not a client message; CallError Unknown", element=msg.element)
            if msg.CallId is not None:
                self.send(m.CallError(CallId=msg.CallId, FailedReq="Unknown"))
            return
        if msg.element not in ("LoginReq", "DialOutError") and not self.logged_in:
            log.warn("{element} before LoginReq from {peer}", element=msg.element, peer=link.peer)
            if msg.CallId is not None:
                self.send(m.CallError(CallId=msg.CallId, FailedReq="Unknown"))
            return
        handler(msg)

    # --- sending --------------------------------------------------------------

    def send(self, msg, delay: float | None = None):
        """Send now, or after the configured reply delay (fault injection)."""
        delay = self.server.faults.reply_delay if delay is None else delay
        if delay > 0:
            self._timers = [t for t in self._timers if t.active()]
            self._timers.append(self.clock.callLater(delay, self._send_now, msg))
        else:
            self._send_now(msg)

    def _send_now(self, msg):
        if self.link is not None and self.link.connected:
            try:
                self.link.send(msg)
            except EncodeError as e:
                # e.g. user data a UTF-8 client set, echoed under target-encoding=ISO-8859-1
                log.warn("{element} for {call_id} not sent: {reason}", element=msg.element,
                         call_id=msg.CallId, reason=str(e))
                self.server.stats["bad"] += 1
                return
            self.server.stats["sent"] += 1

    def _status(self, call, event):
        if call.CallId not in self.calls:
            return
        call.state = call.last_event = event
        self.send(m.CallStatus(CallId=call.CallId, Event=event))

    def _end(self, call, cause):
        if call.CallId in self.calls:
            self.send(m.EndCall(CallId=call.CallId, EndCause=cause))
            self._drop(call)

    def _drop(self, call):
        call.cancel_timers()
        self.calls.pop(call.CallId, None)
        self.server.call_ended(call)

    # --- session --------------------------------------------------------------

    def handle_LoginReq(self, msg):
        self.session_call_id = msg.CallId
        self.client_name = msg.ClientName
        model = self.model
        if msg.Version not in m.VERSIONS:
            self.send(m.LoginResp(CallId=msg.CallId, IServerVer=model.server_version, Result="InvalidProtocolVer"))
            return
        status = "OK"
        if model.client_names and msg.ClientName not in model.client_names:
            status = "NoSuchClient"
        elif self.server.initialising():
            status = "InitInProgress"
        self.send(m.LoginResp(CallId=msg.CallId, IServerVer=model.server_version, Result="Success",
                              Status=status if msg.ReportStatus == "true" else None))
        self.logged_in = status != "NoSuchClient"
        log.info("Login from {client_name} at {peer}: {status}", client_name=msg.ClientName,
                 peer=self.link.peer, status=status)
        if msg.Version == "4.0":
            self.send(m.FlowControl(CallId=msg.CallId, Status="On" if self.server.flow_control else "Off"))
            if msg.ServerMonitor == "set":
                for name in model.t_servers:
                    self.send(m.MonitorInfo(CallId=msg.CallId, Subject=m.ServerStatus(Name=name, Status="OK")))

    def handle_LogMsg(self, msg):
        log.info("LogMsg from {client_name} [{msg_type}]: {text}", client_name=self.client_name,
                 msg_type=msg.MsgType, text=msg.Msg)

    def handle_Reset(self, msg):
        pass  # "Not yet implemented. Reserved." (DOC p.66)

    def _agent(self, msg, status):
        self.server.agent_status[msg.PortNum] = status
        self.send(m.MonitorInfo(CallId=msg.CallId, ReqId=msg.ReqId,
                                Subject=m.AgentStatus(PortNum=msg.PortNum, Status=status)))

    def handle_AgentQuery(self, msg):
        self._agent(msg, self.server.agent_status.get(msg.PortNum, "LoggedOut"))

    def handle_AgentLogin(self, msg):
        self._agent(msg, "LoggedIn")
        self._agent(msg, "NotReady")

    def handle_AgentLogout(self, msg):
        self._agent(msg, "LoggedOut")

    def handle_AgentReady(self, msg):
        self._agent(msg, "Ready")

    def handle_AgentNotReady(self, msg):
        self._agent(msg, "NotReady")

    def handle_DialOutRegistry(self, msg):
        self.send(m.DialOutRegistryResp(CallId=msg.CallId, Result="Success"))

    def handle_DialOutError(self, msg):
        log.info("DialOutError {error} for {ref}", error=msg.Error, ref=msg.RefID)

    # --- call start -------------------------------------------------------------

    def handle_NewCall(self, msg):
        self._start_call(msg.CallId, msg.CalledNum, msg.ANI, msg.DNIS, msg.UDataEx)

    def handle_MakeCall(self, msg):
        call = self._start_call(msg.CallId, msg.OrigNum, None, msg.DestNum, msg.UDataEx, outbound=True)
        if call is not None:
            self._status(call, "Dialing")
            call.later(self.model.answer_delay, self._status, call, "Established")

    def handle_DialOutInit(self, msg):
        call = self._start_call(msg.CallId, msg.CalledNum, None, None, (), outbound=True)
        if call is not None:
            self._status(call, "Dialing")
            call.later(self.model.answer_delay, self._status, call, "Established")

    def _start_call(self, call_id, called_num, ani, dnis, udata, outbound=False):
        model = self.model
        if self.server.flow_control:
            log.warn("NewCall {call_id} while FlowControl is On", call_id=call_id)
        port = model.ports.get(called_num)
        route = model.routes.get(called_num)
        if port is None and not (route is not None and route.network):
            log.warn("NewCall {call_id}: {called_num} is no IVR port or route DN; FeatureNotSupported",
                     call_id=call_id, called_num=called_num)
            self.send(m.EndCall(CallId=call_id, EndCause="FeatureNotSupported"))
            return None
        if self.server.call_id_in_use(call_id) or (port is not None and self.server.port_in_use(called_num)):
            log.warn("NewCall {call_id} on {called_num}: CallId or port already in a call",
                     call_id=call_id, called_num=called_num)
            self.send(m.EndCall(CallId=call_id, EndCause="InvalidStateTransition"))
            return None
        mode = port.mode if port is not None else NETWORK
        call = SimCall(self, call_id, mode, called_num, ani, dnis, port, route)
        self._attach(call, udata)
        self.calls[call_id] = call
        self.server.call_started(call)
        log.info("Call {call_id} on {called_num} ({mode})", call_id=call_id, called_num=called_num, mode=mode)
        if outbound:
            return call
        if mode == FRONT:
            self._status(call, "Ringing")
            self._status(call, "Established")
            self._hangup_later(call)
        elif mode == BEHIND:
            if port.ring:
                call.later(model.ring_delay, self._status, call, "Ringing")
                call.later(model.ring_delay + model.answer_delay, self._established, call)
            else:
                call.later(model.wait_for_ringing, self._end, call, "Timeout")
        return call

    def _established(self, call):
        self._status(call, "Established")
        self._hangup_later(call)

    def _hangup_later(self, call):
        if call.port is not None and call.port.hangup_after > 0:
            call.later(call.port.hangup_after, self._status, call, "Released")

    def _call(self, msg):
        call = self.calls.get(msg.CallId)
        if call is None:
            self.send(m.CallError(CallId=msg.CallId, FailedReq="NoSuchCall"))
        return call

    @staticmethod
    def _attach(call, items):
        """UDataEx on any request is attached as with UDataSet Replace (DOC p.22)."""
        for item in items or ():
            call.udata = [i for i in call.udata if i.Name != item.Name] + [item]

    # --- call information and user data ------------------------------------

    def handle_CallInfoReq(self, msg):
        call = self._call(msg)
        if call is None:
            return
        port = call.port
        port_dn = (port.dn or port.port) if port else None
        if not call.answered and call.mode != NETWORK:
            # Before the T-Server call exists: NewCall's values plus the port DN [WIRE]
            resp = m.CallInfoResp(CallId=call.CallId, ANI=call.nc_ani, DNIS=call.nc_dnis,
                                  CalledNum=call.called_num, PortDN=port_dn)
        else:
            resp = m.CallInfoResp(
                CallId=call.CallId, ANI=call.ani, DNIS=call.dnis, CalledNum=call.called_num, ConnId=call.conn_id,
                TSCallId=call.ts_call_id, PortDN=port_dn, PortTrunk="0" if port else None,
                OtherDN=port.other_dn if port else None,
                LastEvent="Event" + call.last_event if call.last_event else None,
                UUID=call.uuid if msg.ReportUUID == "true" else None,
            )
        self.send(resp)

    def _udata_resp(self, msg, result, items=()):
        self.send(m.UDataResp(CallId=msg.CallId, Result=result, RequestId=msg.RequestId, UDataEx=tuple(items)))

    def handle_UDataGet(self, msg):
        call = self._call(msg)
        if call is None:
            return
        keys = msg.Keys.split(":")
        found = [i for i in call.udata if i.Name in keys] if call.answered or call.mode == NETWORK else []
        self._udata_resp(msg, "Success" if found else "NoMatch", found)

    def handle_UDataGetAll(self, msg):
        call = self._call(msg)
        if call is None:
            return
        found = call.udata if call.answered or call.mode == NETWORK else []
        self._udata_resp(msg, "Success" if found else "NoMatch", found)

    def handle_UDataSet(self, msg):
        call = self._call(msg)
        if call is None:
            return
        if not call.answered and call.mode != NETWORK:
            self._udata_resp(msg, "MiscError")  # no T-Server call yet [WIRE]
            return
        if call.mode == NETWORK and msg.Action != "Replace":
            self._udata_resp(msg, "FeatureNotSupported")  # Network mode: Replace only (DOC p.40)
            return
        if msg.Action == "Add":
            call.udata.extend(msg.UDataEx)
        else:
            self._attach(call, msg.UDataEx)
        self._udata_resp(msg, "Success")

    def handle_UDataDel(self, msg):
        call = self._call(msg)
        if call is None:
            return
        if call.mode == NETWORK:
            self._udata_resp(msg, "FeatureNotSupported")
            return
        if not call.answered:
            self._udata_resp(msg, "MiscError")
            return
        if msg.Action == "DeleteAll":
            call.udata = []
            self._udata_resp(msg, "Success")
            return
        before = len(call.udata)
        call.udata = [i for i in call.udata if i.Name != msg.Key]
        self._udata_resp(msg, "Success" if len(call.udata) < before else "NoMatch")  # NoMatch: ours

    # --- routing --------------------------------------------------------------------

    def handle_RouteRequest(self, msg):
        call = self._call(msg)
        if call is None:
            return
        if call.mode != NETWORK and not call.answered:
            self.send(m.CallError(CallId=call.CallId, FailedReq="Unknown", TlibErrCode="INVALID_REQ"))  # [WIRE]
            return
        if call.mode == NETWORK and call.routed:
            self.send(m.CallError(CallId=call.CallId, FailedReq="Unknown"))  # one RouteRequest per call
            return
        call.routed += 1
        self._attach(call, msg.UDataEx)
        route_dn = call.called_num if call.mode == NETWORK else msg.RouteDN
        route = self.model.routes.get(route_dn)
        timeout = self.model.router_timeout
        if route is None or route.result == "timeout":
            call.later(timeout, self._router_timeout, call)
        elif route.result == "error":
            call.later(route.delay, self.send, m.CallError(CallId=call.CallId, FailedReq="Unknown"))
        elif route.result == "default":
            call.later(route.delay, self.send, m.RouteResponse(CallId=call.CallId, RouteType="Default",
                                                                Dest=route.dest, ExtnsEx=route.extensions))
        else:
            call.later(route.delay, self.send, m.RouteResponse(CallId=call.CallId, RouteType=route.route_type,
                                                                Dest=route.dest, ExtnsEx=route.extensions))

    def _router_timeout(self, call):
        if call.mode == NETWORK:
            self._end(call, "Timeout")  # Network: EndCall Timeout (DOC p.150)
        elif call.CallId in self.calls:
            self.send(m.RouteResponse(CallId=call.CallId, RouteType="Default"))

    def handle_TreatStatus(self, msg):
        self._call(msg)

    def handle_CancelCompleted(self, msg):
        self._call(msg)

    def handle_Connected(self, msg):
        self._call(msg)

    def handle_Failure(self, msg):
        self._call(msg)

    def handle_EndCall(self, msg):
        call = self._call(msg)
        if call is not None:
            self._attach(call, msg.UDataEx)
            log.info("Call {call_id} ended by the client ({cause})", call_id=call.CallId, cause=msg.EndCause)
            self._drop(call)

    # --- transfers ----------------------------------------------------------------

    def _control_allowed(self, msg, call) -> bool:
        name = msg.element
        if call.mode != BEHIND:
            self.send(m.CallError(CallId=call.CallId, FailedReq="Unknown" if call.mode == NETWORK else name,
                                  TlibErrCode="INVALID_REQ"))
            return False
        if not call.answered:
            self.send(m.CallError(CallId=call.CallId, FailedReq="Unknown", TlibErrCode="BLOCKED_REQ"))  # [WIRE]
            return False
        return True

    def _agent_for(self, dn):
        agent = self.model.agents.get(dn)
        if agent is None:
            from ctic.sim.ivrserver.model import Agent

            agent = Agent(dn, self.model.unknown_dest)
        return agent

    def _transfer_request(self, msg):
        call = self._call(msg)
        if call is None or not self._control_allowed(msg, call):
            return None, None
        self._attach(call, getattr(msg, "UDataEx", ()))
        return call, self._agent_for(msg.DestDN) if hasattr(msg, "DestDN") else None

    def _one_step(self, msg, done_event):
        call, agent = self._transfer_request(msg)
        if call is None:
            return
        if agent.behaviour != "answer":
            call.later(agent.delay, self.send, m.CallError(CallId=call.CallId, FailedReq=msg.element,
                                                           TlibErrCode=agent.tlib_error))
            return
        call.later(agent.delay, self._status, call, done_event)

    def handle_OneStepXfer(self, msg):
        self._one_step(msg, "XferComplete")

    def handle_OneStepConf(self, msg):
        self._one_step(msg, "ConfPartyAdd")

    def _consult(self, msg, name):
        call, agent = self._transfer_request(msg)
        if call is None:
            return
        if agent.behaviour == "error":
            call.later(agent.delay, self.send, m.CallError(CallId=call.CallId, FailedReq=name,
                                                           TlibErrCode=agent.tlib_error))
            return
        self._status(call, "Held")
        self._status(call, "Dialing")
        call.later(agent.delay, self._status, call, "Busy" if agent.behaviour == "busy" else "Established")

    def handle_InitXfer(self, msg):
        self._consult(msg, "InitXfer")

    def handle_InitConf(self, msg):
        self._consult(msg, "InitConf")

    def _complete(self, msg, events):
        call = self._call(msg)
        if call is None or not self._control_allowed(msg, call):
            return
        if call.state != "Established" or call.last_event != "Established":
            self.send(m.CallError(CallId=call.CallId, FailedReq=msg.element))
            return
        for event in events:
            self._status(call, event)

    def handle_CompleteXfer(self, msg):
        self._complete(msg, ("XferComplete",))

    def handle_CompleteConf(self, msg):
        self._complete(msg, ("Retrieved", "ConfPartyAdd"))

    def handle_RetrieveCall(self, msg):
        call = self._call(msg)
        if call is None or not self._control_allowed(msg, call):
            return
        self._status(call, "Retrieved")

    # --- access numbers and statistics --------------------------------------------

    def handle_AccessNumGet(self, msg):
        call = self._call(msg)
        if call is None:
            return
        number = self.model.access_numbers.get(msg.Location)
        if call.mode == NETWORK or number is None:
            self.send(m.AccessNumResp(CallId=call.CallId, Action="Get", Result="Failure"))
        else:
            self.send(m.AccessNumResp(CallId=call.CallId, Action="Get", Result="Success", AccessNum=number))

    def handle_AccessNumCancel(self, msg):
        call = self._call(msg)
        if call is not None:
            self.send(m.AccessNumResp(CallId=call.CallId, Action="Cancel", Result="Success"))

    def _stat(self, msg, name):
        if msg.CallId not in self.calls:
            self.send(m.CallError(CallId=msg.CallId, FailedReq="NoSuchCall"))  # outside a call (DOC p.144)
            return
        value = self.model.statistics.get(name)
        if value is None:
            self.send(m.StatResp(CallId=msg.CallId, ResultCode="NoSuchStat", RequestId=msg.RequestId))
        else:
            self.send(m.StatResp(CallId=msg.CallId, ResultCode="Success", RequestId=msg.RequestId, Result=value))

    def handle_PeekStatReq(self, msg):
        self._stat(msg, msg.StatName)

    def handle_GetStatReq(self, msg):
        self._stat(msg, msg.StatType)

