# -*- test-case-name: tests.ivrserver.test_xmlcodec -*-
"""
The GctiMsg message catalogue: every message of the IVR SDK XML interface
(docs/ivr-server-xml.rst §3), in both directions, as typed frozen objects.

Each class lists its attributes (L{A}) and child elements (L{E}, L{KV},
L{ValueE}, L{Sub}) in the DTD's order; the codec writes them in exactly that
order.  Names are the DTD's, including its spellings where the guide's tables
differ (errata E1-E11): C{IServerVer}, C{InvalidProtocolVer}, C{On|Off},
C{TlibErrCode}, C{FastBusy}, C{RecordAnnounce}, C{DirectNotoken},
C{ConnectFailed}.

Every message has a keyword C{CallId} (the envelope's C{<CallId>}), except
C{DialOut} and C{DialOutError}, which the DTD places directly under
C{GctiMsg}.
"""

from __future__ import annotations

from ctic.ivrserver.fields import BOTH, C2S, S2C, A, E, KV, Message, Sub, ValueE, message, part

VERSIONS = ("1.0", "2.0", "3.0", "4.0")
TRUE_FALSE = ("true", "false")

# --- §3.1 session and general ------------------------------------------------


@message(C2S)
class LoginReq:
    """The first message of a session; its CallId is the session CallId."""

    Version = A(VERSIONS, required=True)
    ClientName = A(required=True)
    ReportStatus = A(TRUE_FALSE)
    ServerMonitor = A(("set", "clear"))


@message(S2C)
class LoginResp:
    IServerVer = A(required=True)
    Result = A(("Success", "InvalidProtocolVer"), required=True)
    Status = A(("NoSuchClient", "InitInProgress", "OK"))
    ConfigOptions = KV()


@message(S2C)
class FlowControl:
    """On: send no new NewCall to this server; existing calls continue."""

    Status = A(("On", "Off"), required=True)


@message(C2S)
class LogMsg:
    MsgType = A(("Standard", "Trace", "Debug"), required=True)
    Msg = A(required=True)


@message(C2S)
class Reset:
    """Reserved by Genesys ("not yet implemented")."""

    ExtnsEx = KV()


@part("Server")
class ServerStatus:
    Name = A(required=True)
    Status = A(("OK", "Unavailable"), required=True)
    Switch = A()


@part("Port")
class PortStatus:
    PortNum = A(required=True)
    Status = A(("OK", "Unavailable"), required=True)


AGENT_STATUSES = ("LoggedIn", "LoggedOut", "Ready", "NotReady", "Unknown")


@part("Agent")
class AgentStatus:
    PortNum = A(required=True)
    Status = A(AGENT_STATUSES, required=True)


@message(S2C)
class MonitorInfo:
    ReqId = A()
    Subject = Sub(ServerStatus, PortStatus, AgentStatus, required=True)


@message(C2S)
class AgentQuery:
    ReqId = A(required=True)
    PortNum = A(required=True)


@message(C2S)
class AgentLogin:
    ReqId = A(required=True)
    PortNum = A(required=True)
    Queue = A(required=True)
    AgentId = A(required=True)
    Password = A(required=True)


@message(C2S)
class AgentLogout:
    ReqId = A(required=True)
    PortNum = A(required=True)
    Queue = A(required=True)


WORK_MODES = ("AutoIn", "ManualIn", "Unknown")


@message(C2S)
class AgentReady:
    ReqId = A(required=True)
    PortNum = A(required=True)
    Queue = A(required=True)
    WorkMode = A(WORK_MODES)


@message(C2S)
class AgentNotReady:
    ReqId = A(required=True)
    PortNum = A(required=True)
    Queue = A(required=True)
    WorkMode = A(WORK_MODES)


# --- §3.2 call lifecycle and routing ---------------------------------------

CALL_EVENTS = (
    "Dialing", "Ringing", "Established", "Retrieved", "Busy", "Held",
    "ConfPartyAdd", "ConfPartyDel", "XferComplete", "Released",
)
END_CAUSES = (
    "Normal", "Abandoned", "Resources", "FeatureNotSupported", "InvalidVersion",
    "InvalidStateTransition", "Timeout", "ServerPaused",
)
ROUTE_TYPES = ("Default", "Normal", "Reroute", "RerouteAttended", "RerouteConferenced")


@message(C2S)
class NewCall:
    """Starts a call; CalledNum is the IVR port (In-Front/Behind) or a route DN (Network)."""

    CallControlMode = A(("Genesys", "Network"), required=True)
    Version = A(VERSIONS)
    ANIRestriction = A(("CLIP", "CLIR"))
    CalledNum = E(required=True)
    DNIS = E()
    ANI = E()
    UDataEx = KV()
    ExtnsEx = KV()


@message(S2C)
class CallStatus:
    Event = A(CALL_EVENTS, required=True)


@message(C2S)
class RouteRequest:
    RouteDN = A()
    CED = E()
    UDataEx = KV()
    ExtnsEx = KV()


@message(S2C)
class RouteResponse:
    # Required in the DTD; GENEM says present only when URS supplied it, so
    # it is optional on input (docs/ivr-server-xml.rst §3.2).
    RouteType = A(ROUTE_TYPES)
    Dest = E()
    ExtnsEx = KV()


@message(C2S)
class Connected:
    ExtnsEx = KV()


@message(C2S)
class Failure:
    FailureCause = A(("Busy", "NoAnswer", "ConnectFailed"), required=True)
    ExtnsEx = KV()


@message(BOTH)
class EndCall:
    EndCause = A(END_CAUSES, required=True)
    UDataEx = KV()
    ExtnsEx = KV()


# --- §3.3 treatments ---------------------------------------------------------

TREATMENT_TYPES = (
    "PlayAnnounce", "PlayAnnounceAndDigits", "Music", "RAN", "Busy", "CollectDigits",
    "CancelCall", "SetDefaultRoute", "PlayApplication", "IVR", "RingBack", "Silence",
    "VerifyDigits", "RecordAnnounce", "DeleteAnnounce", "TextToSpeech", "FastBusy",
    "TextToSpeechAndDigits",
)


@message(S2C)
class TreatCall:
    Type = A(TREATMENT_TYPES, required=True)
    Parameters = KV()
    ExtnsEx = KV()


@message(C2S)
class TreatStatus:
    Status = A(("Started", "NotStarted", "Completed"), required=True)
    CED = A()  # an attribute here, an element in RouteRequest (erratum E10)
    UDataEx = KV()
    ExtnsEx = KV()


@message(S2C)
class Cancel:
    pass


@message(C2S)
class CancelCompleted:
    pass


# --- §3.4 transfer, conference, outbound call control -----------------------


@message(C2S)
class OneStepXfer:
    DestDN = A(required=True)
    Location = A()
    UDataEx = KV()
    ExtnsEx = KV()


@message(C2S)
class OneStepConf:
    DestDN = A(required=True)
    Location = A()
    UDataEx = KV()
    ExtnsEx = KV()


@message(C2S)
class InitXfer:
    DestDN = A(required=True)
    Location = A()
    UDataEx = KV()
    ExtnsEx = KV()


@message(C2S)
class CompleteXfer:
    ExtnsEx = KV()


@message(C2S)
class InitConf:
    DestDN = A(required=True)
    Location = A()
    UDataEx = KV()
    ExtnsEx = KV()


@message(C2S)
class CompleteConf:
    ExtnsEx = KV()


@message(C2S)
class RetrieveCall:
    ExtnsEx = KV()


@message(C2S)
class MakeCall:
    OrigNum = A(required=True)
    DestNum = A(required=True)
    Location = A()
    UDataEx = KV()
    ExtnsEx = KV()


XROUTE_TYPES = (
    "Default", "Route", "Reroute", "Direct", "DirectAni", "DirectNotoken",
    "DirectAniDnis", "DirectUUI", "DirectDigits", "DnisPool",
)


@message(C2S)
class AccessNumGet:
    DestDN = A(required=True)
    Location = A(required=True)
    XRouteType = A(XROUTE_TYPES)
    UUI_Number = A()
    UDataEx = KV()
    ExtnsEx = KV()


@message(C2S)
class AccessNumCancel:
    pass


@message(S2C)
class AccessNumResp:
    Action = A(("Get", "Cancel"), required=True)
    Result = A(("Success", "Failure"), required=True)
    AccessNum = A()


FAILED_REQS = (
    "Unknown", "NoSuchCall", "OneStepXfer", "OneStepConf", "InitConf", "CompleteConf",
    "InitXfer", "CompleteXfer", "MakeCall", "RetrieveCall", "AgentControl", "NotAllowed",
)


@message(S2C)
class CallError:
    FailedReq = A(FAILED_REQS, required=True)
    TlibErrCode = A()  # free text on the wire: '1183', 'INVALID_REQ' (erratum E4)
    ReqId = A()


# --- §3.5 call information ---------------------------------------------------


@message(C2S)
class CallInfoReq:
    ReportUUID = A(TRUE_FALSE)
    ReportThirdPartyDN = A(TRUE_FALSE)


@message(S2C)
class CallInfoResp:
    ANI = A()
    DNIS = A()
    CalledNum = A()
    ConnId = A()
    TSCallId = A()
    PortDN = A()
    PortTrunk = A()
    PortQueue = A()
    OtherDN = A()
    OtherTrunk = A()
    OtherQueue = A()
    LastEvent = A()
    FirstHomeLocation = A()
    UUID = A()
    ThirdPartyDN = A()


# --- §3.6 statistics ---------------------------------------------------------


@message(C2S)
class PeekStatReq:
    RequestId = E(required=True)
    StatName = E(required=True)


@message(C2S)
class GetStatReq:
    RequestId = E(required=True)
    ServerName = E(required=True)
    StatType = E(required=True)
    ObjectId = E(required=True)
    ObjectType = E(required=True)


@message(S2C)
class StatResp:
    ResultCode = A(("Success", "NoSuchStat", "MiscError"), required=True)
    RequestId = E()
    Result = ValueE()


# --- §3.7 user data ------------------------------------------------------------

UDATA_RESULTS = ("Success", "NoSuchCall", "NoMatch", "FeatureNotSupported", "MiscError")


@message(C2S)
class UDataGet:
    Keys = A(required=True)  # colon-separated, so keys never contain ':'
    RequestId = E(required=True)


@message(C2S)
class UDataGetAll:
    RequestId = E(required=True)


@message(C2S)
class UDataSet:
    Action = A(("Add", "Replace"), required=True)
    RequestId = E(required=True)
    UDataEx = KV(required=True)


@message(C2S)
class UDataDel:
    Action = A(("DeleteAll", "DeleteKey"), required=True)
    Key = A()
    RequestId = E(required=True)


@message(S2C)
class UDataResp:
    Result = A(UDATA_RESULTS, required=True)
    RequestId = E()
    UDataEx = KV()


# --- §3.8 outbound dialing -------------------------------------------------------


@message(C2S)
class DialOutRegistry:
    Command = A(("Add", "Remove", "RemoveAll"), required=True)
    DN = A()


@message(S2C)
class DialOutRegistryResp:
    Result = A(("MiscFailure", "ConfigError", "Success"), required=True)


@message(S2C, has_call_id=False)
class DialOut:
    RefID = A(required=True)
    OrigNum = A(required=True)
    DestNum = A(required=True)
    TimeToAnswer = A(required=True)
    UDataEx = KV()
    ExtnsEx = KV()


@message(C2S, has_call_id=False)
class DialOutError:
    Error = A(("NotSupported", "NoTrunks", "MiscError"), required=True)
    RefID = A(required=True)


@message(C2S)
class DialOutInit:
    RefID = A(required=True)
    Version = A(("2.0", "3.0"))
    CalledNum = E(required=True)
    ExtnsEx = KV()


CATALOGUE: dict[str, type[Message]] = {
    cls.element: cls
    for cls in (
        LoginReq, LoginResp, FlowControl, LogMsg, Reset, MonitorInfo,
        AgentQuery, AgentLogin, AgentLogout, AgentReady, AgentNotReady,
        NewCall, CallStatus, RouteRequest, RouteResponse, Connected, Failure, EndCall,
        TreatCall, TreatStatus, Cancel, CancelCompleted,
        OneStepXfer, OneStepConf, InitXfer, CompleteXfer, InitConf, CompleteConf,
        RetrieveCall, MakeCall, AccessNumGet, AccessNumCancel, AccessNumResp, CallError,
        CallInfoReq, CallInfoResp, PeekStatReq, GetStatReq, StatResp,
        UDataGet, UDataGetAll, UDataSet, UDataDel, UDataResp,
        DialOutRegistry, DialOutRegistryResp, DialOut, DialOutError, DialOutInit,
    )
}
"""Element name -> message class, for every message of docs/ivr-server-xml.rst §3."""
