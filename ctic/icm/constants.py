"""
GED-125 numbers and names, exactly as ``shared/reference/ged125.md`` spells
them (§2, §2.1, §3.2, §4).  Plain ints, because the codec's hot path indexes
tables with them; the C{*_NAMES} dicts turn them back into names for logs.
"""

from __future__ import annotations

NULL = 0xFFFFFFFF  # §1.2: "no value" in UINT fields

# --- base message types (§2) -------------------------------------------------
FAILURE_CONF = 1
FAILURE_EVENT = 2
OPEN_REQ = 3
OPEN_CONF = 4
HEARTBEAT_REQ = 5
HEARTBEAT_CONF = 6
CLOSE_REQ = 7
CLOSE_CONF = 8
INIT_DATA_REQ = 9
INIT_DATA_CONF = 10
INIT_TRKGRP_DATA_EVENT = 11
INIT_SERVICE_DATA_EVENT = 12
INIT_VRU_DATA_EVENT = 13
INIT_DATA_END_EVENT = 14
DELIVERED_EVENT = 15
ORIGINATED_EVENT = 16
CALL_CLEARED_EVENT = 17
CONFERENCED_EVENT = 18
DIVERTED_EVENT = 19
NEW_TRANSACTION_EVENT = 20
SET_CALL_VARIABLES_EVENT = 21
VRU_STATUS_EVENT = 22
TRKGRP_STATUS_EVENT = 23
SERVICE_STATUS_EVENT = 24
ROUTE_REQUEST_EVENT = 41
ROUTE_SELECT = 42
ROUTE_END_EVENT = 43
ROUTE_END = 44
TIME_SYNCH_REQ = 45
TIME_SYNCH_CONF = 46
SERVICE_CONTROL = 47
SIMULATOR_RESET_EVENT = 48
REGISTER_VARIABLES = 49

# --- SERVICE_CONTROL sub-types (§2.1) -----------------------------------------
INIT_SERVICE_CTRL_REQ = 1
INIT_SERVICE_CTRL_CONF = 2
INIT_SERVICE_CTRL_DATA = 3
INIT_SERVICE_CTRL_END = 4
NEW_CALL = 5
REQUEST_INSTRUCTION = 6
RUN_SCRIPT_REQ = 7
RUN_SCRIPT_RESULT = 8
CONNECT = 9
EVENT_REPORT = 10
DIALOGUE_FAILURE_CONF = 11
DIALOGUE_FAILURE_EVENT = 12
INIT_SERVICE_CTRL_TRKGRP = 13
INIT_SERVICE_CTRL_SERVICE = 14
INIT_SERVICE_CTRL_VRU = 15
TRKGRP_STATUS = 16
SERVICE_STATUS = 17
VRU_STATUS = 18
CANCEL = 19
RELEASE = 20
NEW_DIALOGUE = 21
CONNECT_TO_RESOURCE = 22
RESOURCE_CONNECTED = 23
MICROAPP_CONTEXT = 24
MICROAPP_PLAY = 25
MICROAPP_PLAY_CONTINUE = 26
MICROAPP_COLLECT_DATA = 27
MICROAPP_MENU = 28
MICROAPP_RESULT = 29
TEMPORARY_CONNECT = 30

# --- floating-field tags (§3.2) --------------------------------------------------
TAG_Text = 1
TAG_ANI = 18
TAG_UUI = 19
TAG_DNIS = 20
TAG_Digits_Dialed = 21
TAG_CallVariable1 = 22  # ... CallVariable10 = 31
TAG_DialedNumber = 32
TAG_CED = 33
TAG_Label = 34
TAG_TrunkGroupID = 35
TAG_TrunkNumber = 36
TAG_CalledNumber = 37
TAG_ScriptID = 38
TAG_ScriptConfiguration = 39
TAG_CorrelationID = 40
TAG_CauseCode = 41
TAG_ECC_VAR_NAME = 42
TAG_ECC_VAR_VALUE = 43
TAG_ECC_VAR_ARRAY = 44
TAG_NewTransaction = 45
TAG_TransferHint = 46
TAG_Media_Specifier = 47
TAG_Initial_Prompt = 48
TAG_Invalid_Entry_Prompt = 49
TAG_Timeout_Prompt = 50
TAG_Customer_ID = 51
TAG_Application_Media_Library = 52
TAG_System_Media_Library = 53
TAG_Locale = 54
TAG_Media_Server_Set = 55
TAG_Microapp_Error_Text = 56
TAG_ASR_Grammar = 57
TAG_Currency = 58
TAG_RouterCallKey = 59
TAG_RouterCallKeyDay = 60
TAG_RouterCallKeySequenceNumber = 61
TAG_CallGUID = 62
TAG_Location_Parameter_PKID = 63
TAG_Location_Parameter_Name = 64
TAG_PSTN_Trunk_Group_ID = 65
TAG_PSTN_Trunk_Group_Channel_Number = 66
TAG_SIP_Header = 67
TAG_WhisperAnnounce = 68
TAG_FeatureType = 69
TAG_FeatureParam1 = 70
TAG_FeatureParam2 = 71
TAG_AgentGreetingHint = 72


def call_variable_tag(n: int) -> int:
    """CallVariable1..10 are tags 22..31."""
    if not 1 <= n <= 10:
        raise ValueError(f"CallVariable{n}: n must be 1..10")
    return TAG_CallVariable1 + n - 1


# --- status and error codes (§4.1); 7 is S3's name, not S1's duplicate ------------
E_NO_ERROR = 0
E_INVALID_VERSION = 1
E_SESSION_ALREADY_ACTIVE = 2
E_VRU_OFFLINE = 3
E_SESSION_NOT_ACTIVE = 4
E_INVALID_DIALED_NUMBER = 5
E_EVENTS_NOT_SUPPORTED = 6
E_POLLING_NOT_SUPPORTED = 7
E_ROUTING_NOT_SUPPORTED = 8
E_TIME_SYNCH_NOT_SUPPORTED = 9
E_TIMEOUT = 10
E_PG_OFFLINE = 11
E_REQUEST_REFUSED = 12
E_ROUTING_NOT_AVAILABLE = 13
E_ROUTE_NOT_ACCEPTED = 14
E_UNSPECIFIED_FAILURE = 15
E_INVALID_INVOKEID = 16
E_SERVICE_CTRL_NOT_SUPPORTED = 17
E_NO_SCRIPT = 18
E_CALL_VARIABLE1 = 19  # ... E_CALL_VARIABLE10 = 28
E_INVALID_SCRIPT = 30
E_INVALID_CALLID = 31
E_DUPLICATE_DIALOGUEID = 32
E_INVALID_MESSAGE = 33
E_INVALID_DIALOGUEID = 34
E_OPERATION_CANCELLED = 35
E_OPERATION_NOT_CANCELLED = 36
E_SIMULATOR_RESET = 37
E_SIMULATOR_REINIT = 38

# --- LabelType (§4.3) -----------------------------------------------------------------
LABEL_NORMAL = 1
LABEL_BUSY = 2
LABEL_RING = 3
LABEL_NOT_SUPPORTED = 4
LABEL_DEFAULT = 5

# --- EVENT_REPORT EventID (§4.4) ----------------------------------------------------------
CONNECT_FAILURE = 1
BUSY = 2
NO_ANSWER = 3
ANSWER = 4
ABANDON = 5
DISCONNECT = 6
CONNECT_INVALID = 7

# --- ServiceFeatures (§4.6) -------------------------------------------------------------
FEATURE_RUN_SCRIPT = 0x01
FEATURE_CONNECT = 0x02
FEATURE_CANCEL = 0x04
FEATURE_RELEASE = 0x08
FEATURE_BLIND_TRANSFER = 0x10
FEATURE_NEED_RELEASE = 0x20
FEATURE_RUN_MICROAPP = 0x40
FEATURE_NO_REQUERY = 0x80

# --- TrunkStatus (§4.8) ----------------------------------------------------------------
OUT_OF_SERVICE = 1
IN_USE_INBOUND = 2
IN_USE_OUTBOUND = 3
IDLE = 4


def _names(prefix_filter, exclude=()):
    out = {}
    for key, value in list(globals().items()):
        if isinstance(value, int) and prefix_filter(key) and key not in exclude:
            out.setdefault(value, key)
    return out


_BASE = [
    "FAILURE_CONF", "FAILURE_EVENT", "OPEN_REQ", "OPEN_CONF", "HEARTBEAT_REQ", "HEARTBEAT_CONF",
    "CLOSE_REQ", "CLOSE_CONF", "INIT_DATA_REQ", "INIT_DATA_CONF", "INIT_TRKGRP_DATA_EVENT",
    "INIT_SERVICE_DATA_EVENT", "INIT_VRU_DATA_EVENT", "INIT_DATA_END_EVENT", "DELIVERED_EVENT",
    "ORIGINATED_EVENT", "CALL_CLEARED_EVENT", "CONFERENCED_EVENT", "DIVERTED_EVENT",
    "NEW_TRANSACTION_EVENT", "SET_CALL_VARIABLES_EVENT", "VRU_STATUS_EVENT", "TRKGRP_STATUS_EVENT",
    "SERVICE_STATUS_EVENT", "ROUTE_REQUEST_EVENT", "ROUTE_SELECT", "ROUTE_END_EVENT", "ROUTE_END",
    "TIME_SYNCH_REQ", "TIME_SYNCH_CONF", "SERVICE_CONTROL", "SIMULATOR_RESET_EVENT",
    "REGISTER_VARIABLES",
]
_SUB = [
    "INIT_SERVICE_CTRL_REQ", "INIT_SERVICE_CTRL_CONF", "INIT_SERVICE_CTRL_DATA",
    "INIT_SERVICE_CTRL_END", "NEW_CALL", "REQUEST_INSTRUCTION", "RUN_SCRIPT_REQ",
    "RUN_SCRIPT_RESULT", "CONNECT", "EVENT_REPORT", "DIALOGUE_FAILURE_CONF",
    "DIALOGUE_FAILURE_EVENT", "INIT_SERVICE_CTRL_TRKGRP", "INIT_SERVICE_CTRL_SERVICE",
    "INIT_SERVICE_CTRL_VRU", "TRKGRP_STATUS", "SERVICE_STATUS", "VRU_STATUS", "CANCEL", "RELEASE",
    "NEW_DIALOGUE", "CONNECT_TO_RESOURCE", "RESOURCE_CONNECTED", "MICROAPP_CONTEXT",
    "MICROAPP_PLAY", "MICROAPP_PLAY_CONTINUE", "MICROAPP_COLLECT_DATA", "MICROAPP_MENU",
    "MICROAPP_RESULT", "TEMPORARY_CONNECT",
]
MESSAGE_NAMES = {globals()[n]: n for n in _BASE}
SUBTYPE_NAMES = {globals()[n]: n for n in _SUB}
TAG_NAMES = {v: k[4:] for k, v in list(globals().items()) if k.startswith("TAG_") and isinstance(v, int)}
for _n in range(1, 11):
    TAG_NAMES[TAG_CallVariable1 + _n - 1] = f"CallVariable{_n}"
STATUS_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("E_") and isinstance(v, int)}
for _n in range(1, 11):
    STATUS_NAMES[E_CALL_VARIABLE1 + _n - 1] = f"E_CALL_VARIABLE{_n}"
FEATURE_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("FEATURE_")}
EVENT_NAMES = {1: "CONNECT_FAILURE", 2: "BUSY", 3: "NO_ANSWER", 4: "ANSWER", 5: "ABANDON",
               6: "DISCONNECT", 7: "CONNECT_INVALID"}
LABEL_TYPE_NAMES = {1: "NORMAL", 2: "BUSY", 3: "RING", 4: "NOT_SUPPORTED", 5: "DEFAULT"}
STATUS_BY_NAME = {name: value for value, name in STATUS_NAMES.items()}
FEATURE_BY_NAME = {name: value for value, name in FEATURE_NAMES.items()}
del _n, _names
