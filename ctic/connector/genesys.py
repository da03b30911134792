# -*- test-case-name: tests.connector.test_genesys_interop -*-
"""
Genesys mode of the CTI Connector: a B2BUA between the Resource Manager and
IVR Server (docs/gvp-rm-ctic.rst §3, §6.2; docs/ivr-server-xml.rst §4-6).

Behind mode, the case the GVP CTI Connector documentation describes first
(only the channel reaches GVP; the premise T-Server knows the caller)::

    RM -> CTIC   INVITE sip:3001@ctic          (leg A; held, 100 Trying)
    CTIC -> IS   NewCall CalledNum=01          (the IVR port of DN 3001)
    IS -> CTIC   CallStatus Ringing, Established
    CTIC -> IS   CallInfoReq ReportUUID=true   -> ANI, DNIS, ConnId, UUID
    CTIC -> IS   UDataGetAll                   -> the attached data
    CTIC -> RM   INVITE sip:DNIS@rm;ConnId=..;UUID=..;<key>=<value>...
                 From: ANI, To: DNIS, the caller's X-Genesys-GVP-Session-ID
    RM -> MCP    (mapped to an IVR Profile)    ... 200 OK back to leg A
    either side BYE -> the other leg's BYE, EndCall to IVR Server

Every NewCall gets exactly one EndCall (or was ended by IVR Server); IVR
Server's C{Released} or C{EndCall} ends both SIP legs.  When IVR Server
cannot take the call (link down, FlowControl On, port busy, no Established
in time) leg A is refused with C{unavailable-status} (503 by default, one of
the RM's default C{cti-unavailable-respcode} codes), so the RM applies its
C{cti-unavailable-action}.  OPTIONS is answered 503 while the IVR Server link
is not logged in, so the RM's health checks take this CTIC out.

The Request-URI parameter names on leg B are ours (C{ConnId}, C{UUID}, and
each attached-data key as it is named in IVR Server), values escaped; the
VoiceXML application reads them as C{session.connection.protocol.sip.requesturi}.
Every option of C{[genesys]} and C{[ivr-server]} is ours: the vendor's CTIC
option reference is not public.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from ctic.config import Option, Section, boolean, choice, hostport, integer, listof, number, string
from ctic.ivrserver.calls import BEHIND, FRONT
from ctic.ivrserver.client import ClientConfig, IVRServerClient
from ctic.ivrserver.errors import IVRServerError
from ctic.rm.headers import CDR, CDRHeader
from ctic.sip.b2bua import B2BUA
from ctic.sip.headers import NameAddr
from ctic.sip.message import make_response
from ctic.sip.service import make_transport, sip_section
from ctic.sip.transaction import Timers
from ctic.sip.transport import Peer
from ctic.sip.uri import SIPURI, param_value, uri_user

log = Logger(namespace="ctic.connector.genesys")


def _port_map(text: str) -> dict:
    """C{DN=port, ...}: the IVR port number (NewCall CalledNum) of each DN."""
    out = {}
    for item in listof(string)(text):
        dn, sep, port = item.partition("=")
        if not sep or not dn.strip() or not port.strip():
            raise ValueError(f"{item!r}: expected DN=port")
        out[dn.strip()] = port.strip()
    return out


_port_map.describe = "DN=port pairs separated by ','"

SECTIONS = (
    sip_section(5070, 5070),
    Section("ivr-server", (
        Option("server", hostport, ("127.0.0.1", 3021), "IVR Server GLI address (primary)"),
        Option("backup-server", hostport, None, "IVR Server tried when the primary is lost (empty: none)"),
        Option("client-name", string, "GVP_CTIC", "LoginReq ClientName: the IVR object's name"),
        Option("keepalive-interval", number(0), 20.0, "seconds between GLI keep-alives; 0: off"),
        Option("request-timeout", number(0.1), 10.0, "seconds IVR Server has to answer a request"),
        Option("call-setup-timeout", number(0.1), 75.0,
               "seconds from NewCall to Established before the call is given up"),
        Option("reconnect-delay", number(0.1), 2.0, "first delay before reconnecting (doubles up to 30 s)"),
        Option("encoding", choice("ISO-8859-1", "UTF-8"), "ISO-8859-1", "XML encoding of what we send"),
    ), doc="The IVR Server link (ours)"),
    Section("genesys", (
        Option("mode", choice(BEHIND, FRONT), BEHIND,
               "behind: only the channel reaches GVP, ANI/DNIS from CallInfoReq; front: from the INVITE"),
        Option("resource-manager", hostport, ("127.0.0.1", 5060), "where leg B (to the MCP) is sent"),
        Option("port-map", _port_map, {},
               "IVR port of each Request-URI user (DN); a user not listed is the port number itself"),
        Option("hold-timeout", number(0.1), 30.0, "seconds a call may wait for IVR Server before it is refused"),
        Option("unavailable-status", integer(300, 699), 503,
               "SIP status when IVR Server cannot take a call (keep it in the RM's cti-unavailable-respcode)"),
        Option("attach-data", boolean, True, "pass the call's attached data as Request-URI parameters of leg B"),
        Option("max-calls", integer(1), 10000, "calls in progress; beyond it new INVITEs get 503"),
    ), doc="The Genesys-mode call logic (ours)"),
)


def client_config(values) -> ClientConfig:
    servers = (values["server"],) + ((values["backup-server"],) if values["backup-server"] else ())
    return ClientConfig(client_name=values["client-name"], servers=servers,
                        keepalive_interval=values["keepalive-interval"], request_timeout=values["request-timeout"],
                        call_setup_timeout=values["call-setup-timeout"], reconnect_delay=values["reconnect-delay"],
                        encoding=values["encoding"])


FORM = "application/x-www-form-urlencoded;charset=utf-8"
# Actions of the MCP's INFO requests: GetData and AttachData (sub_action
# Replace or Add) as GVP applications send them; DeleteData and
# DeleteAllData are ours (Composer's Interaction Data block has delete and
# delete-all for CTIC, their wire names are not public).
ACTIONS = ("GetData", "AttachData", "DeleteData", "DeleteAllData")
_RESERVED = {"action", "sub_action"}


def form(pairs) -> bytes:
    """Form-encode C{(key, value)} pairs the way GVP applications expect: UTF-8, spaces as %20."""
    return "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in pairs).encode("utf-8")


def parse_form(body: bytes) -> list:
    """A form-encoded INFO body as C{(key, value)} pairs (UTF-8; ISO-8859-1 if it is not UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")
    return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")


def user_data_request(pairs):
    """C{(action, sub_action, keys, data)} of an MCP's INFO, or a C{ValueError} naming what is wrong."""
    fields = {k.lower(): v for k, v in pairs if k.lower() in _RESERVED}
    action = fields.get("action", "")
    match = [a for a in ACTIONS if a.lower() == action.lower()]
    if not match:
        raise ValueError(f"unknown Action {action!r} (expected {', '.join(ACTIONS)})")
    action = match[0]
    rest = [(k, v) for k, v in pairs if k.lower() not in _RESERVED]
    keys = [v for k, v in rest if k.lower().startswith("keyname") and v] + \
           [k for k, v in rest if not k.lower().startswith("keyname") and v == ""]
    data = [(k, v) for k, v in rest if not k.lower().startswith("keyname")]
    sub = fields.get("sub_action", "Replace")
    if action == "AttachData" and sub.lower() not in ("replace", "add"):
        raise ValueError(f"unknown sub_action {sub!r} (expected Replace or Add)")
    if action in ("GetData", "DeleteData") and not keys:
        raise ValueError(f"{action} names no key")
    if action == "AttachData" and not data:
        raise ValueError("AttachData carries no key=value pair")
    return action, sub.capitalize(), keys, data


class GenesysCallLogic:
    """
    B2BUA call logic: one IVR Server call per SIP call.

    @ivar counts: calls by outcome, for tests and the operations surface.
    """

    def __init__(self, client: IVRServerClient, settings, rm: Peer):
        self.client = client
        self.mode = settings["mode"]
        self.port_map = settings["port-map"]
        self.unavailable = settings["unavailable-status"]
        self.attach_data = settings["attach-data"]
        self.rm = rm
        self.counts = {"offered": 0, "connected": 0, "refused": 0, "ended": 0}

    @property
    def healthy(self) -> bool:
        return self.client.ready

    def ivr_port(self, invite) -> str:
        user = uri_user(invite.uri)
        return self.port_map.get(user, user)

    def new_call(self, call) -> None:
        self.counts["offered"] += 1
        invite = call.a.invite
        port = self.ivr_port(invite)
        if not port:
            self._refuse(call, 404, "No IVR port in the Request-URI")
            return
        ani = dnis = None
        if self.mode == FRONT:
            ani, dnis = uri_user(invite.from_.uri), uri_user(invite.to.uri)
        try:
            ivr = self.client.new_call(port, self.mode, ani=ani, dnis=dnis)
        except IVRServerError as e:
            self._refuse(call, self.unavailable, f"IVR Server cannot take the call: {e}")
            return
        call.data["ivr"] = ivr
        ivr.listeners.append(lambda msg: self._ivr_event(call, msg))
        ivr.ended.addCallback(lambda reason: self._ivr_ended(call, reason))
        d = ivr.started
        d.addCallback(lambda _: ivr.call_info(report_uuid=True))
        d.addCallback(lambda info: self._with_data(ivr, info))
        d.addCallback(lambda got: self._connect(call, *got))
        d.addErrback(self._setup_failed, call)

    def _with_data(self, ivr, info):
        if not self.attach_data:
            return info, {}
        d = ivr.get_all_data()
        d.addCallback(lambda data: (info, data))
        return d

    def _connect(self, call, info, data) -> None:
        if call.state != "new":
            return  # the caller gave up meanwhile
        invite = call.a.invite
        ani = info.ANI or uri_user(invite.from_.uri)
        dnis = info.DNIS or uri_user(invite.uri) or ""
        params = {}
        if info.ConnId:
            params["ConnId"] = param_value(info.ConnId)
        if info.UUID:
            params["UUID"] = param_value(info.UUID)
        for key, value in data.items():
            if isinstance(value, str) and key not in params:
                params[param_value(key)] = param_value(value)
        host, port = self.rm.host, self.rm.port
        uri = SIPURI(host, user=param_value(dnis), port=port, params=params)
        local = call.b2bua.contact_uri(self.rm.transport).host
        from_ = NameAddr(SIPURI(local, user=param_value(ani) if ani else "anonymous"))
        to = NameAddr(SIPURI(host, user=param_value(dnis), port=port))
        log.info("CTI call {call_id}: IVR Server call {ivr_call} ANI {ani} DNIS {dnis} ConnId {conn_id}; "
                 "leg B to the RM", call_id=call.call_id, ivr_call=call.data["ivr"].CallId, ani=ani, dnis=dnis,
                 conn_id=info.ConnId)
        self.counts["connected"] += 1
        call.data["queue_wait"] = call.b2bua.clock.seconds() - call.created
        call.connect(uri, peer=self.rm, from_=from_, to=to)

    def _setup_failed(self, failure, call) -> None:
        if call.state == "new":
            self._refuse(call, self.unavailable, f"IVR Server call set-up failed: {failure.getErrorMessage()}")
        elif not failure.check(IVRServerError, defer.CancelledError):
            log.failure("Genesys call set-up failed for {call_id}", failure, call_id=call.call_id)

    def _refuse(self, call, status, why) -> None:
        self.counts["refused"] += 1
        log.warn("Refused CTI call {call_id} with {status}: {why}", call_id=call.call_id, status=status, why=why)
        ivr = call.data.pop("ivr", None)
        if ivr is not None and ivr.active:
            ivr.end("Normal")
        call.reject(status)

    # --- mid-call user data: INFO from the MCP --------------------------------------

    def on_request(self, call, leg, server, request) -> bool:
        """
        From leg B (the MCP): an INFO with a form body is a user-data request
        (answer it, do it, INFO the result back); a REFER is a blind transfer.
        """
        if leg is not call.b:
            return False
        if request.method == "REFER":
            return self._refer(call, server, request)
        if request.method != "INFO":
            return False
        ctype = str(request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != FORM.split(";")[0]:
            return False
        server.respond(make_response(request, 200))
        pairs = parse_form(request.body)
        try:
            action, sub, keys, data = user_data_request(pairs)
        except ValueError as e:
            action = next((v for k, v in pairs if k.lower() == "action"), "")
            self._user_data_result(call, action, error=str(e))
            return True
        ivr = call.data.get("ivr")
        if ivr is None or not ivr.active:
            self._user_data_result(call, action, error="no IVR Server call (IVR Server link down or call ended)")
            return True
        try:
            if action == "GetData":
                d = ivr.get_data(*keys)
            elif action == "AttachData":
                d = ivr.set_data(dict(data), replace=sub == "Replace")
            elif action == "DeleteData":
                d = defer.gatherResults([ivr.delete_data(k) for k in keys], consumeErrors=True)
            else:
                d = ivr.delete_data(None)
        except (IVRServerError, ValueError) as e:
            self._user_data_result(call, action, error=str(e))
            return True
        d.addCallback(lambda got: self._user_data_result(
            call, action, sub=sub, data=got if action == "GetData" else None))
        d.addErrback(lambda f: self._user_data_result(call, action, sub=sub, error=_reason(f)))
        return True

    def _user_data_result(self, call, action, sub=None, data=None, error=None) -> None:
        if call.state != "connected" or call.b is None or call.b.dialog is None:
            return
        pairs = [("Result", "FAILURE" if error else "SUCCESS"), ("Action", "UserDataResp"),
                 ("Sub_Action", action)]
        if error:
            pairs.append(("Error", error))
        for key, value in (data or {}).items():
            if isinstance(value, str):
                pairs.append((key, value))
        self.counts["info-failure" if error else "info-success"] = \
            self.counts.get("info-failure" if error else "info-success", 0) + 1
        log.info("User data {action} for {call_id}: {result}", action=action, call_id=call.call_id,
                 result="FAILURE: " + error if error else "SUCCESS")
        call.send_request(call.b, "INFO", form(pairs), headers={"Content-Type": FORM})

    # --- transfers ----------------------------------------------------------------

    def _refer(self, call, server, request) -> bool:
        """
        Behind mode: the switch moves the call (OneStepXfer to the Refer-To
        user, or to the DefaultAgent Request-URI parameter the RM adds when
        Refer-To names nobody).  The MCP hears the outcome by NOTIFY
        message/sipfrag (RFC 3515); on XferComplete both SIP legs are
        released and the IVR Server call ends without releasing the caller
        on the switch (GCTIActiveRelease=false).
        """
        ivr = call.data.get("ivr")
        refer_to = request.headers.get("Refer-To")
        dest = None
        if refer_to is not None:
            uri = getattr(refer_to, "uri", None)
            if uri is None:
                try:
                    uri = NameAddr.parse(str(refer_to)).uri
                except Exception:
                    uri = None
            dest = uri_user(uri)
        dest = dest or request.uri.params.get("DefaultAgent")
        if dest is None:
            server.respond(make_response(request, 400, "Refer-To names no destination"))
            return True
        if ivr is None or not ivr.active:
            server.respond(make_response(request, 503, "No IVR Server call"))
            return True
        if call.data.get("transfer") is not None:
            server.respond(make_response(request, 491, "A transfer is in progress"))
            return True
        server.respond(make_response(request, 202))
        self._notify(call, "SIP/2.0 100 Trying", active=True)
        call.data["transfer"] = dest
        log.info("Blind transfer of {call_id} to {dest} by OneStepXfer", call_id=call.call_id, dest=dest)
        try:
            d = ivr.one_step_transfer(dest)
        except IVRServerError as e:
            self._transfer_failed(call, dest, str(e))
            return True
        d.addCallbacks(lambda _: self._transferred(call, dest),
                       lambda f: self._transfer_failed(call, dest, _reason(f)))
        return True

    def _notify(self, call, sipfrag: str, active: bool = False) -> None:
        if call.state == "ended" or call.b is None or call.b.dialog is None \
                or call.b.dialog.state == "terminated":
            return
        call.send_request(call.b, "NOTIFY", (sipfrag + "\r\n").encode(), headers={
            "Event": "refer", "Content-Type": "message/sipfrag;version=2.0",
            "Subscription-State": "active;expires=60" if active else "terminated;reason=noresource"})

    def _transferred(self, call, dest) -> None:
        call.data.pop("transfer", None)
        self.counts["transferred"] = self.counts.get("transferred", 0) + 1
        log.info("Call {call_id} transferred to {dest} by the switch", call_id=call.call_id, dest=dest)
        self._notify(call, "SIP/2.0 200 OK")
        call.data["disposition"] = "transferred"
        ivr = call.data.pop("ivr", None)
        if ivr is not None:
            ivr.end("Normal", active_release=False)  # the caller now talks to dest: the switch keeps the call
        call.hangup("transferred")

    def _transfer_failed(self, call, dest, why) -> None:
        call.data.pop("transfer", None)
        log.warn("Transfer of {call_id} to {dest} failed: {why}", call_id=call.call_id, dest=dest, why=why)
        self._notify(call, "SIP/2.0 503 Service Unavailable")

    # --- the CDR header ------------------------------------------------------------

    def end_headers(self, call, leg) -> dict:
        """
        C{X-Genesys-GVP-CDR} on the BYE we send to the RM on leg A, or on our
        answer to its BYE.  Its format and the disposition values are ours
        (the vendor's are not public): C{completed}, C{abandoned} (the caller
        hung up before leg B answered), C{released} (ended on the switch,
        IVR Server's Released or EndCall), C{ended-by-ivr} (the MCP hung
        up); C{queue-wait-time} is the seconds the call was held for IVR
        Server before leg B was placed.
        """
        if leg is not call.a:
            return {}
        disposition = call.data.get("disposition")
        if disposition is None:
            bye_from = call.data.get("bye_from")
            if call.answered is None:
                disposition = "abandoned"
            elif bye_from == "b":
                disposition = "ended-by-ivr"
            else:
                disposition = "completed"
        header = CDRHeader(disposition, round(call.data.get("queue_wait", 0.0), 3))
        return {CDR: str(header)}

    def _ivr_event(self, call, msg) -> None:
        if msg.element == "CallStatus" and msg.Event == "Released" and call.state != "ended":
            log.info("IVR Server released {call_id}: ending both legs", call_id=call.call_id)
            call.data["disposition"] = "released"
            # Released is the switch's news; the call on IVR Server still ends with our EndCall [WIRE].
            ivr = call.data.pop("ivr", None)
            if ivr is not None:
                ivr.end("Normal")
            call.hangup("released by IVR Server")

    def _ivr_ended(self, call, reason) -> None:
        if call.data.pop("ivr", None) is not None and call.state not in ("new", "ended"):
            log.info("IVR Server ended {call_id} ({reason}): ending both legs", call_id=call.call_id,
                     reason=reason.reason)
            call.data["disposition"] = "released"
            call.hangup("ended by IVR Server")

    def on_end(self, call, reason) -> None:
        self.counts["ended"] += 1
        ivr = call.data.pop("ivr", None)
        if ivr is not None:
            ivr.end("Normal")  # a no-op once IVR Server ended it; logs when the link is down


def _reason(failure) -> str:
    error = failure.value
    if isinstance(error, defer.FirstError):
        error = error.subFailure.value
    return getattr(error, "reason", None) or str(error) or type(error).__name__


class GenesysConnector(service.MultiService):
    """The CTIC in Genesys mode: SIP listeners, the B2BUA and the IVR Server client."""

    def __init__(self, config, reactor):
        super().__init__()
        self.setName("ctic-genesys")
        sip, settings = config["sip"], config["genesys"]
        self.client = IVRServerClient(reactor, client_config(config["ivr-server"]))
        self.client.setServiceParent(self)
        self.layer, transport_service = make_transport(reactor, sip, None, config.path)
        rm_host, rm_port = settings["resource-manager"]
        rm = Peer("UDP", rm_host, rm_port)
        self.logic = GenesysCallLogic(self.client, settings, rm)
        self.b2bua = B2BUA(reactor, self.layer, self.logic, outbound_proxy=rm,
                           timers=Timers(sip["t1"], sip["t2"], sip["t4"]), hold_timeout=settings["hold-timeout"],
                           max_calls=settings["max-calls"], health=lambda: self.logic.healthy)
        transport_service.setServiceParent(self)
