# -*- test-case-name: tests.ivrserver.test_client -*-
"""
The IVR-side client: one logged-in GLI link to IVR Server, kept up.

- Connects to the first server of C{servers} (primary, then backups).
  When a link fails or a connection attempt fails, it moves to the next
  server (warm standby switchover, docs/ivr-server-xml.rst §4) after a
  delay that starts at C{reconnect_delay} and doubles after each full round
  of failures, up to C{reconnect_max_delay}; a successful login resets it.
  (Ours: docs/ivr-server-xml.rst §1.3, §10 give only I-Library's fixed
  2-5 s delay.)
- Logs in with C{LoginReq Version='4.0'}; on C{Status='InitInProgress'}
  repeats the login every C{login_retry} seconds; C{FlowControl On}
  stops new calls until C{Off}; C{MonitorInfo} goes to C{monitor_listeners}.
- Keep-alives per I-Library: a KeepAliveRequest after C{keepalive_interval}
  seconds with nothing received, the link declared dead after
  C{dead_multiplier} x that interval.
- Calls do not survive a reconnect (docs/ivr-server-xml.rst §2): when a
  link goes down every call on it ends with L{LinkLost}, and its C{ended}
  Deferred tells call logic, which applies its own policy.
- CallIds are unique across restarts: C{<ClientName>_<start ms, hex><random
  16 bits, hex>_<sequence>} (ours; docs/ivr-server-xml.rst §2 only requires
  uniqueness).

C{events} (a L{ctic.events.MessageEvents}) receives a
L{ctic.events.MessageEvent} for every message on any link (for a ladder
view); it costs nothing while nobody subscribes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.protocol import ClientFactory
from twisted.logger import Logger

from ctic.events import MessageEvents
from ctic.ivrserver import gli
from ctic.ivrserver import messages as m
from ctic.ivrserver.calls import BEHIND, MODES, NETWORK, IVRCall
from ctic.ivrserver.errors import LinkLost, NotReady, PortBusy
from ctic.ivrserver.link import GLIProtocol
from ctic.ivrserver.userdata import kvlist
from ctic.ivrserver.xmlcodec import Decoder, EncodeError, Encoder
from ctic.timers import Timer

log = Logger(namespace="ctic.ivrserver.client")

DISCONNECTED = "disconnected"
CONNECTING = "connecting"
LOGGING_IN = "logging-in"
LOGGED_IN = "logged-in"


@dataclass(frozen=True)
class ClientConfig:
    """What the client needs; C{ctic.connector} builds it from its INI section."""

    client_name: str  # LoginReq ClientName: the IVR object's name in Configuration Manager
    servers: tuple  # ((host, port), ...): primary first, then backups
    keepalive_interval: float = 20.0  # I-Library socket_activity_timer default; 0 disables
    dead_multiplier: float = 3.0
    reconnect_delay: float = 2.0
    reconnect_max_delay: float = 30.0
    connect_timeout: float = 5.0
    login_timeout: float = 10.0
    login_retry: float = 5.0
    request_timeout: float = 10.0
    call_setup_timeout: float = 75.0  # > the server's wait-for-ringing (60 s)
    encoding: str = "ISO-8859-1"
    max_payload: int = gli.MAX_PAYLOAD
    report_status: bool = True
    server_monitor: bool = False
    version: str = "4.0"


class CallIds:
    """CallId generator, unique across restarts and across clients of one server."""

    def __init__(self, prefix: str, now_ms: int | None = None, nonce: int | None = None):
        start = int(time.time() * 1000) if now_ms is None else now_ms
        nonce = int.from_bytes(os.urandom(2), "big") if nonce is None else nonce
        self._base = f"{prefix}_{start:x}{nonce:04x}_"
        self._seq = 0

    def __call__(self) -> str:
        self._seq += 1
        return f"{self._base}{self._seq}"


class _Factory(ClientFactory):
    def __init__(self, client, server):
        self.client = client
        self.server = server

    def buildProtocol(self, addr):
        return self.client._build_link(self.server)

    def clientConnectionFailed(self, connector, reason):
        self.client._connect_failed(self.server, reason.getErrorMessage())


class IVRServerClient(Service):
    """
    @param reactor: provides C{IReactorTCP} and C{IReactorTime}.
    @ivar state: DISCONNECTED, CONNECTING, LOGGING_IN or LOGGED_IN.
    @ivar server: the (host, port) in use or being tried.
    @ivar flow_control: True while IVR Server has FlowControl On.
    @ivar state_listeners: callables C{(client, state, reason)} on every change.
    @ivar monitor_listeners: callables taking C{MonitorInfo} messages.
    """

    def __init__(self, reactor, config: ClientConfig, events: MessageEvents | None = None, call_ids=None):
        if not config.servers:
            raise ValueError("at least one IVR Server address is needed")
        self.reactor = reactor
        self.clock = reactor
        self.config = config
        self.events = events if events is not None else MessageEvents()
        self.call_ids = call_ids or CallIds(config.client_name)
        self.state = DISCONNECTED
        self.server = config.servers[0]
        self.server_version = None
        self.flow_control = False
        self.link = None
        self.session_call_id = None
        self.calls: dict[str, IVRCall] = {}
        self.state_listeners: list = []
        self.monitor_listeners: list = []
        self._index = 0
        self._failures = 0
        self._request_id = 0
        self._connector = None
        self._ready_waiters: list = []
        self._reconnect = Timer(reactor, self._connect)
        self._login_timer = Timer(reactor, self._login_timed_out)
        self._login_retry = Timer(reactor, self._send_login)
        self._encoder = Encoder(config.encoding, '"', True)
        self._decoder = Decoder()

    # --- service ------------------------------------------------------------

    def startService(self):
        super().startService()
        self._connect()

    def stopService(self):
        super().stopService()
        self._reconnect.cancel()
        self._login_timer.cancel()
        self._login_retry.cancel()
        if self._connector is not None and self.link is None:
            try:
                self._connector.stopConnecting()
            except Exception:  # already connected or failed: nothing to stop
                pass
        if self.link is not None:
            self.link.abort("client stopped")
        for d in self._ready_waiters:
            d.errback(NotReady("client stopped"))
        self._ready_waiters = []

    # --- public -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Logged in and not flow-controlled: new calls may start."""
        return self.state == LOGGED_IN and not self.flow_control

    def when_ready(self):
        """A Deferred that fires (with the client) when new calls may start."""
        if self.ready:
            return defer.succeed(self)
        d = defer.Deferred()
        self._ready_waiters.append(d)
        return d

    def new_call(self, called_num: str, mode: str = BEHIND, ani: str | None = None, dnis: str | None = None,
                 control_mode: str = "Network", udata=None, extensions=None, call_id: str | None = None) -> IVRCall:
        """
        Send NewCall and return the L{IVRCall}; wait on its C{started}.

        - C{behind}: C{called_num} is the IVR port; ANI/DNIS come later from
          CallInfoReq (the premise T-Server knows them).
        - C{front}: C{called_num} is the IVR port; the IVR supplies ANI/DNIS.
        - C{network}: C{called_num} is the route DN; C{control_mode}
          C{Genesys} hands the call to URS at once.

        Raises L{NotReady} (no link, or FlowControl On) or L{PortBusy}.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if not self.ready:
            raise NotReady("IVR Server link is not logged in" if self.state != LOGGED_IN
                           else "IVR Server has FlowControl On")
        if mode != NETWORK and any(c.called_num == called_num and c.mode != NETWORK for c in self.calls.values()):
            raise PortBusy(f"a call is already active on IVR port {called_num}")
        call_id = call_id or self.call_ids()
        msg = m.NewCall(CallId=call_id, CallControlMode=control_mode, Version=self.config.version,
                        CalledNum=called_num, DNIS=dnis, ANI=ani,
                        UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions))
        self.send(self.link, msg)
        call = IVRCall(self, call_id, mode, called_num, self.link)
        self.calls[call_id] = call
        log.info("NewCall {call_id} on {called_num} ({mode})", call_id=call_id, called_num=called_num, mode=mode)
        return call

    def log_message(self, text: str, msg_type: str = "Standard") -> None:
        """LogMsg: a line in the IVR Server log (no reply)."""
        self.send(self.link, m.LogMsg(CallId=self.session_call_id, MsgType=msg_type, Msg=text))

    def next_request_id(self) -> str:
        self._request_id += 1
        return str(self._request_id)

    def send(self, link, msg) -> None:
        if link is None or not link.connected or link is not self.link:
            raise LinkLost("the IVR Server link is down")
        link.send(msg)

    def forget(self, call: IVRCall) -> None:
        self.calls.pop(call.CallId, None)

    # --- connection management --------------------------------------------

    def _set_state(self, state, reason=""):
        self.state = state
        for listener in list(self.state_listeners):
            try:
                listener(self, state, reason)
            except Exception:
                log.failure("State listener failed")

    def _connect(self):
        if not self.running:
            return
        host, port = self.server = self.config.servers[self._index]
        self._set_state(CONNECTING)
        log.info("Connecting to IVR Server {host}:{port}", host=host, port=port)
        self._connector = self.reactor.connectTCP(host, port, _Factory(self, self.server),
                                                  timeout=self.config.connect_timeout)

    def _build_link(self, server):
        interval = self.config.keepalive_interval
        return GLIProtocol(self.clock, self, encoder=self._encoder, decoder=self._decoder,
                           keepalive_interval=interval,
                           dead_after=interval * self.config.dead_multiplier if interval > 0 else 0,
                           max_payload=self.config.max_payload, events=self.events)

    def _connect_failed(self, server, reason):
        log.warn("Cannot connect to IVR Server {host}:{port}: {reason}", host=server[0], port=server[1],
                 reason=reason)
        self._schedule_reconnect(reason)

    def _schedule_reconnect(self, reason):
        self._connector = None
        self._set_state(DISCONNECTED, reason)
        if not self.running:
            return
        n = len(self.config.servers)
        delay = min(self.config.reconnect_max_delay,
                    self.config.reconnect_delay * (2 ** (self._failures // n)))
        self._failures += 1
        self._index = (self._index + 1) % n
        nxt = self.config.servers[self._index]
        log.info("Reconnecting to IVR Server {host}:{port} in {delay}s", host=nxt[0], port=nxt[1], delay=delay)
        self._reconnect.start(delay)

    def _send_login(self):
        if self.link is None:
            return
        self.session_call_id = self.call_ids()
        self.link.send(m.LoginReq(
            CallId=self.session_call_id, Version=self.config.version, ClientName=self.config.client_name,
            ReportStatus="true" if self.config.report_status else None,
            ServerMonitor="set" if self.config.server_monitor else "clear",
        ))
        self._login_timer.start(self.config.login_timeout)

    def _login_timed_out(self):
        log.warn("No LoginResp from {host}:{port} within {seconds}s", host=self.server[0], port=self.server[1],
                 seconds=self.config.login_timeout)
        if self.link is not None:
            self.link.abort("login timed out")

    # --- GLI handler -------------------------------------------------------

    def gli_connected(self, link):
        self.link = link
        self.flow_control = False
        self._set_state(LOGGING_IN)
        self._send_login()

    def gli_message(self, link, msg):
        if link is not self.link:
            return
        kind = msg.element
        if kind == "LoginResp":
            self._login_resp(msg)
        elif kind == "FlowControl":
            self.flow_control = msg.Status == "On"
            log.info("IVR Server FlowControl {status}", status=msg.Status)
            self._maybe_ready()
        elif kind == "MonitorInfo":
            for listener in list(self.monitor_listeners):
                try:
                    listener(msg)
                except Exception:
                    log.failure("MonitorInfo listener failed")
        elif kind == "DialOut":
            log.info("DialOut {ref} ignored: outbound dialling is not supported here", ref=msg.RefID)
            try:
                link.send(m.DialOutError(Error="NotSupported", RefID=msg.RefID))
            except EncodeError as e:  # a RefID our encoding cannot carry: nothing to answer with
                log.warn("DialOutError for {ref} not sent: {reason}", ref=msg.RefID, reason=str(e))
        else:
            call = self.calls.get(msg.CallId)
            if call is None:
                if msg.CallId != self.session_call_id:
                    log.warn("{element} for unknown call {call_id} ignored", element=kind, call_id=msg.CallId)
                else:
                    log.warn("{element} on the session CallId: {summary}", element=kind, summary=msg.summary())
                return
            call.received(msg)

    def _login_resp(self, msg):
        self._login_timer.cancel()
        self.server_version = msg.IServerVer
        if msg.Result != "Success":
            log.error("IVR Server refused the login: Result={result}", result=msg.Result)
            self.link.abort(f"login refused ({msg.Result})")
            return
        if msg.Status == "InitInProgress":
            log.info("IVR Server is initialising; logging in again in {seconds}s", seconds=self.config.login_retry)
            self._login_retry.start(self.config.login_retry)
            return
        if msg.Status == "NoSuchClient":
            log.error("IVR Server knows no IVR named {client_name} (NoSuchClient)",
                      client_name=self.config.client_name)
            self.link.abort("NoSuchClient")
            return
        self._failures = 0
        log.info("Logged in to {version} at {host}:{port}", version=msg.IServerVer, host=self.server[0],
                 port=self.server[1])
        self._set_state(LOGGED_IN)
        self._maybe_ready()

    def _maybe_ready(self):
        if self.ready:
            waiters, self._ready_waiters = self._ready_waiters, []
            for d in waiters:
                d.callback(self)

    def gli_bad_message(self, link, error):
        pass  # logged by the link; IVR Server has no XML-level error reply to send

    def gli_bad_frame(self, link, frame):
        pass  # logged by the link

    def gli_lost(self, link, reason):
        if link is not self.link:
            return
        self.link = None
        self._login_timer.cancel()
        self._login_retry.cancel()
        log.warn("IVR Server link {host}:{port} lost: {reason}; {count} call(s) lost",
                 host=self.server[0], port=self.server[1], reason=reason, count=len(self.calls))
        for call in list(self.calls.values()):
            call._finish(LinkLost(f"IVR Server link lost: {reason}"))
        self._schedule_reconnect(reason)
