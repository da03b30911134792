# -*- test-case-name: tests.icm.test_codec -*-
"""
GED-125 codec, Sans-IO: whole frames in, L{Message}s out, and back.

A frame is the 8-byte header (MessageLength, MessageType; §1.1) plus the
body.  The body is a fixed part (a table per base type and per
SERVICE_CONTROL sub-type, §2/§2.1), then floating fields (tag, length, data;
§3.1) until MessageLength is used up.

Round trip: C{encode(decode(frame)) == frame} for every frame C{decode}
accepts.  For that, a decoded message keeps the order of its floating
fields, their values as received (unknown tags as raw bytes), and for each
string the number of trailing NULs it came with; a message built by our code
leaves that count as C{None} and gets the codec's send policy (§3.3: NUL-
terminated by default, switchable).  Bytes after a fixed-only message's
fixed part are kept as C{trailer}.

Errors are L{DecodeError} (the frame is malformed: the session answers
FAILURE_EVENT and resets) or L{FieldError}, a subclass raised when only one
field breaks a limit (the message is skipped, the session lives on), and
L{EncodeError} when our own code tries to send something invalid.
"""

from __future__ import annotations

import struct

from ctic.framing import FrameBuffer
from ctic.icm import constants as C

_HEADER = struct.Struct("!II")
_SC_HEADER = struct.Struct("!III")
_UINT = struct.Struct("!I")
_ECC_ARRAY = struct.Struct("!IB")
HEADER_SIZE = 8
SC_HEADER_SIZE = 12
DEFAULT_MAX_MESSAGE = 65536  # §1.1 recommendation [I]: accept up to about 64 KiB


class GED125Error(Exception):
    """The one error type of this protocol's codec: what was wrong and where."""

    def __init__(self, reason: str, message: str | None = None, tag: int | None = None):
        self.reason = reason
        self.message = message
        self.tag = tag
        where = message or "frame"
        if tag is not None:
            where += f" tag {tag} ({C.TAG_NAMES.get(tag, 'unknown')})"
        super().__init__(f"{where}: {reason}")


class DecodeError(GED125Error):
    """A received frame cannot be decoded; framing may be lost."""


class FieldError(DecodeError):
    """One field of an otherwise well-formed message breaks a limit."""


class EncodeError(GED125Error):
    """We were asked to send something the protocol cannot carry."""


# --- fixed-part layouts -------------------------------------------------------------------
# Field kinds: I UINT, i INT, H USHORT, B BOOL (4 bytes, §1.2), T TIME (UINT seconds).
# A layout may end with an array to the end of the body:
#   "ints"   INT × n           (StatusVariable)
#   "trunks" {USHORT, USHORT} × n (TrunkNumber, TrunkStatus)
#   "ushorts" USHORT × n        (TrunkNumber)
_STRUCT_CODES = {"I": "I", "i": "i", "H": "H", "B": "I", "T": "I"}


class Layout:
    __slots__ = ("name", "names", "kinds", "struct", "size", "tail", "floating")

    def __init__(self, name, fields, tail=None, floating=False):
        self.name = name
        self.names = tuple(n for n, _ in fields)
        self.kinds = tuple(k for _, k in fields)
        self.struct = struct.Struct("!" + "".join(_STRUCT_CODES[k] for k in self.kinds))
        self.size = self.struct.size
        self.tail = tail  # (field name, kind) or None
        self.floating = floating


def _L(name, spec="", tail=None, floating=False):
    fields = []
    for item in spec.split():
        fname, _, kind = item.partition(":")
        fields.append((fname, kind or "I"))
    return Layout(name, fields, tail, floating)


# §2, in the order of the table; layouts as S1 reads them [V:S1].
BASE_LAYOUTS = {
    C.FAILURE_CONF: _L("FAILURE_CONF", "InvokeID Status"),
    C.FAILURE_EVENT: _L("FAILURE_EVENT", "Status"),
    C.OPEN_REQ: _L("OPEN_REQ", "InvokeID VersionNumber IdleTimeout"),
    C.OPEN_CONF: _L("OPEN_CONF", "InvokeID UseEventFeed:B UsePolledFeed:B UseCallRouting:B "
                                 "UseTimeSynch:B UseServiceControl:B"),
    C.HEARTBEAT_REQ: _L("HEARTBEAT_REQ", "InvokeID"),
    C.HEARTBEAT_CONF: _L("HEARTBEAT_CONF", "InvokeID"),
    # §2: CLOSE_REQ floating fields are probably tag 1 Text [I]
    C.CLOSE_REQ: _L("CLOSE_REQ", "InvokeID Status", floating=True),
    C.CLOSE_CONF: _L("CLOSE_CONF", "InvokeID"),
    C.INIT_DATA_REQ: _L("INIT_DATA_REQ", "InvokeID"),
    C.INIT_DATA_CONF: _L("INIT_DATA_CONF", "InvokeID"),
    # §2: this is the layout S1 reads (it probably omits a TrunkGroupID) [I]
    C.INIT_TRKGRP_DATA_EVENT: _L("INIT_TRKGRP_DATA_EVENT",
                                 "InvokeID TrunkCount CallsInToday CallsOutToday InServiceTimeToday "
                                 "InUseInboundTimeToday InUseOutboundTimeToday AllTrunksInUseTimeToday",
                                 tail=("Trunks", "trunks")),
    C.INIT_SERVICE_DATA_EVENT: _L("INIT_SERVICE_DATA_EVENT",
                                  "InvokeID ServiceID AvailableNow:B CallsInNow CallsOutNow CallsInToday "
                                  "CallsOutToday CallsHandledToday HandleTimeToday DivertedInToday "
                                  "DivertedOutToday"),
    C.INIT_VRU_DATA_EVENT: _L("INIT_VRU_DATA_EVENT", "InvokeID TimeZoneDelta:i OperationalStatus",
                              tail=("StatusVariable", "ints")),
    C.INIT_DATA_END_EVENT: _L("INIT_DATA_END_EVENT", "InvokeID InitDataTime:T StartOfDay:T"),
    C.DELIVERED_EVENT: _L("DELIVERED_EVENT", "CallID TrunkGroupID TrunkNumber ServiceID", floating=True),
    C.ORIGINATED_EVENT: _L("ORIGINATED_EVENT", "CallID TrunkGroupID TrunkNumber ServiceID", floating=True),
    C.CALL_CLEARED_EVENT: _L("CALL_CLEARED_EVENT", "CallID CauseCode", floating=True),
    C.CONFERENCED_EVENT: _L("CONFERENCED_EVENT", "ConferenceCallID PrimaryCallID SecondaryCallID ServiceID"),
    C.DIVERTED_EVENT: _L("DIVERTED_EVENT", "CallID NewServiceID"),
    C.NEW_TRANSACTION_EVENT: _L("NEW_TRANSACTION_EVENT", "CallID NewCallID ServiceID"),
    C.SET_CALL_VARIABLES_EVENT: _L("SET_CALL_VARIABLES_EVENT", "CallID", floating=True),
    C.VRU_STATUS_EVENT: _L("VRU_STATUS_EVENT", "CurrentTime:T TimeZoneDelta:i OperationalStatus",
                           tail=("StatusVariable", "ints")),
    C.TRKGRP_STATUS_EVENT: _L("TRKGRP_STATUS_EVENT", "TrunkGroupID TrunkCount InService:B",
                              tail=("TrunkNumber", "ushorts")),
    C.SERVICE_STATUS_EVENT: _L("SERVICE_STATUS_EVENT", "ServiceID ServiceAvailable:B"),
    C.ROUTE_REQUEST_EVENT: _L("ROUTE_REQUEST_EVENT", "CrossRefID CallID", floating=True),
    C.ROUTE_SELECT: _L("ROUTE_SELECT", "CrossRefID LabelType", floating=True),
    C.ROUTE_END_EVENT: _L("ROUTE_END_EVENT", "CrossRefID Status"),
    C.ROUTE_END: _L("ROUTE_END", "CrossRefID Status"),
    C.TIME_SYNCH_REQ: _L("TIME_SYNCH_REQ", "InvokeID VRUTimeLag:i"),
    C.TIME_SYNCH_CONF: _L("TIME_SYNCH_CONF", "InvokeID"),
    # §2: "one UINT", name unknown [U]; "Value" is ours.
    C.SIMULATOR_RESET_EVENT: _L("SIMULATOR_RESET_EVENT", "Value"),
    C.REGISTER_VARIABLES: _L("REGISTER_VARIABLES", "CallVarsMask:H", floating=True),
}

# §2.1; fixed part after the 12-byte Service Control header.
SC_LAYOUTS = {
    C.INIT_SERVICE_CTRL_REQ: _L("INIT_SERVICE_CTRL_REQ", "InvokeID"),
    C.INIT_SERVICE_CTRL_CONF: _L("INIT_SERVICE_CTRL_CONF", "InvokeID"),
    C.INIT_SERVICE_CTRL_DATA: _L("INIT_SERVICE_CTRL_DATA", "InvokeID ServiceFeatures"),
    C.INIT_SERVICE_CTRL_END: _L("INIT_SERVICE_CTRL_END", "InvokeID"),
    C.NEW_CALL: _L("NEW_CALL", "TrunkGroupID TrunkNumber ServiceID", floating=True),
    C.REQUEST_INSTRUCTION: _L("REQUEST_INSTRUCTION", "TrunkGroupID TrunkNumber ServiceID", floating=True),
    C.RUN_SCRIPT_REQ: _L("RUN_SCRIPT_REQ", "InvokeID", floating=True),
    C.RUN_SCRIPT_RESULT: _L("RUN_SCRIPT_RESULT", "InvokeID ResultCode:B", floating=True),
    C.CONNECT: _L("CONNECT", "LabelType", floating=True),
    C.EVENT_REPORT: _L("EVENT_REPORT", "EventID", floating=True),
    C.DIALOGUE_FAILURE_CONF: _L("DIALOGUE_FAILURE_CONF", "InvokeID ErrorCode"),
    C.DIALOGUE_FAILURE_EVENT: _L("DIALOGUE_FAILURE_EVENT", "ErrorCode"),
    C.INIT_SERVICE_CTRL_TRKGRP: _L("INIT_SERVICE_CTRL_TRKGRP", "InvokeID TrunkGroupID TrunkCount",
                                   tail=("Trunks", "trunks")),
    C.INIT_SERVICE_CTRL_SERVICE: _L("INIT_SERVICE_CTRL_SERVICE",
                                    "InvokeID ServiceID AvailableNow:B CallsInNow CallsOutNow"),
    C.INIT_SERVICE_CTRL_VRU: _L("INIT_SERVICE_CTRL_VRU",
                                "InvokeID CurrentTime:T TimeZoneDelta:i OperationalStatus",
                                tail=("StatusVariable", "ints")),
    C.TRKGRP_STATUS: _L("TRKGRP_STATUS", "TrunkGroupID TrunkCount", tail=("Trunks", "trunks")),
    C.SERVICE_STATUS: _L("SERVICE_STATUS", "ServiceID ServiceAvailable:B"),
    C.VRU_STATUS: _L("VRU_STATUS", "CurrentTime:T TimeZoneDelta:i OperationalStatus",
                     tail=("StatusVariable", "ints")),
    C.CANCEL: _L("CANCEL", "InvokeID RequestID"),
    C.RELEASE: _L("RELEASE", "Cause"),
    C.NEW_DIALOGUE: _L("NEW_DIALOGUE", "CallID ServiceID", floating=True),
    C.CONNECT_TO_RESOURCE: _L("CONNECT_TO_RESOURCE", "", floating=True),
    C.RESOURCE_CONNECTED: _L("RESOURCE_CONNECTED", ""),
    C.MICROAPP_CONTEXT: _L("MICROAPP_CONTEXT", "", floating=True),
    C.MICROAPP_PLAY: _L("MICROAPP_PLAY", "InvokeID ToBeContinued:B BargeInAllowed:B", floating=True),
    C.MICROAPP_PLAY_CONTINUE: _L("MICROAPP_PLAY_CONTINUE", "InvokeID ToBeContinued:B", floating=True),
    C.MICROAPP_COLLECT_DATA: _L("MICROAPP_COLLECT_DATA",
                                "InvokeID DTMFTerminationKey NoEntryTimeout InterdigitTimeout "
                                "NumberOfNoEntryTries NumberOfInvalidEntryTries MinLength MaxLength "
                                "BargeInAllowed:B ASRAllowed:B", floating=True),
    C.MICROAPP_MENU: _L("MICROAPP_MENU",
                        "InvokeID NoEntryTimeout NumberOfNoEntryTries NumberOfInvalidEntryTries "
                        "DTMFMenuKeys BargeInAllowed:B ASRAllowed:B", floating=True),
    C.MICROAPP_RESULT: _L("MICROAPP_RESULT", "InvokeID MicroappErrorCode", floating=True),
    # §2.1: floating fields of TEMPORARY_CONNECT are [U]; we accept any.
    C.TEMPORARY_CONNECT: _L("TEMPORARY_CONNECT", "", floating=True),
}

# Unknown base types / sub-types: the whole body (after the SC header) is kept raw.
_RAW = Layout("UNKNOWN", [], tail=None, floating=False)

# --- floating-field kinds (§3.1, §3.2) ----------------------------------------------------------
STRING, UNSPEC, UINT, BOOL, ECC_NAME, ECC_VALUE, ECC_ARRAY, RAW = range(8)
FIELD_KINDS = [RAW] * 256
for _tag in (C.TAG_Text, C.TAG_ANI, C.TAG_DNIS, C.TAG_Digits_Dialed, C.TAG_DialedNumber, C.TAG_CED,
             C.TAG_Label, C.TAG_CalledNumber, C.TAG_ScriptID, C.TAG_ScriptConfiguration,
             C.TAG_CorrelationID, *range(51, 59), C.TAG_CallGUID, C.TAG_Location_Parameter_PKID,
             C.TAG_Location_Parameter_Name, C.TAG_PSTN_Trunk_Group_ID, C.TAG_SIP_Header,
             C.TAG_WhisperAnnounce, C.TAG_FeatureType, C.TAG_FeatureParam1, C.TAG_FeatureParam2,
             *range(22, 32)):
    FIELD_KINDS[_tag] = STRING
FIELD_KINDS[C.TAG_UUI] = UNSPEC
for _tag in (C.TAG_TrunkGroupID, C.TAG_TrunkNumber, C.TAG_CauseCode, C.TAG_RouterCallKey,
             C.TAG_RouterCallKeyDay, C.TAG_RouterCallKeySequenceNumber):
    FIELD_KINDS[_tag] = UINT
FIELD_KINDS[C.TAG_NewTransaction] = BOOL
FIELD_KINDS[C.TAG_TransferHint] = BOOL
FIELD_KINDS[C.TAG_ECC_VAR_NAME] = ECC_NAME
FIELD_KINDS[C.TAG_ECC_VAR_VALUE] = ECC_VALUE
FIELD_KINDS[C.TAG_ECC_VAR_ARRAY] = ECC_ARRAY
# Media_Specifier structs (47-50), PSTN_Trunk_Group_Channel_Number (66, width [U]) and
# AgentGreetingHint (72, type [U]) stay RAW bytes: preserved, never guessed.
FIELD_KINDS = tuple(FIELD_KINDS)

# §3.2 / S3 character limits (excluding a trailing NUL, §3.3 decision); 255 bytes otherwise.
DEFAULT_MAX_LENGTHS = {
    C.TAG_ANI: 40, C.TAG_UUI: 131, C.TAG_DNIS: 32, C.TAG_DialedNumber: 40, C.TAG_CED: 40,
    C.TAG_Label: 48, C.TAG_CalledNumber: 32, C.TAG_ScriptID: 40, C.TAG_ScriptConfiguration: 40,
    C.TAG_ECC_VAR_NAME: 32, C.TAG_ECC_VAR_VALUE: 210, C.TAG_ECC_VAR_ARRAY: 210,
    **{t: 40 for t in range(22, 32)},
}


class Message:
    """
    One GED-125 message.

    @ivar type: base MessageType.
    @ivar subtype: SERVICE_CONTROL MessageSubType, or C{None}.
    @ivar dialogue_id, send_seq: SC header values (L{C.NULL} when not a dialogue message).
    @ivar fixed: fixed-part values by the reference's field names; a tail array
        (StatusVariable, Trunks, TrunkNumber) is a list under its name.  BOOLs are
        kept as received ints (any non-zero is TRUE, §1.2).
    @ivar floating: list of C{(tag, value, nuls)}; value is C{str} for STRING,
        C{bytes} for UNSPEC and unknown tags, C{int} for UINT/BOOL,
        C{(ecc_tag, str)} for ECC_VAR_NAME/VALUE, C{(ecc_tag, index, str)} for
        ECC_VAR_ARRAY; C{nuls} is the trailing NUL count received, or C{None}.
    @ivar trailer: bytes after a fixed-only message's fixed part, kept raw.
    """

    __slots__ = ("type", "subtype", "dialogue_id", "send_seq", "fixed", "floating", "trailer")

    def __init__(self, type, fixed=None, floating=None, subtype=None, dialogue_id=C.NULL,
                 send_seq=C.NULL, trailer=b""):
        self.type = type
        self.subtype = subtype
        self.dialogue_id = dialogue_id
        self.send_seq = send_seq
        self.fixed = fixed if fixed is not None else {}
        self.floating = floating if floating is not None else []
        self.trailer = trailer

    @property
    def name(self) -> str:
        if self.type == C.SERVICE_CONTROL:
            return C.SUBTYPE_NAMES.get(self.subtype, f"SC_SUBTYPE_{self.subtype}")
        return C.MESSAGE_NAMES.get(self.type, f"MESSAGE_TYPE_{self.type}")

    @property
    def known(self) -> bool:
        if self.type == C.SERVICE_CONTROL:
            return self.subtype in SC_LAYOUTS
        return self.type in BASE_LAYOUTS

    def __getitem__(self, name):
        return self.fixed[name]

    def get(self, tag: int, default=None):
        """The value of the first floating field with this tag."""
        for t, value, _ in self.floating:
            if t == tag:
                return value
        return default

    def getall(self, tag: int) -> list:
        return [value for t, value, _ in self.floating if t == tag]

    def add(self, tag: int, value) -> "Message":
        """Append a floating field (sent with the codec's NUL policy); returns self."""
        self.floating.append((tag, value, None))
        return self

    def call_variables(self) -> dict[int, str]:
        """CallVariable1..10 present in this message, by number."""
        return {t - 21: v for t, v, _ in self.floating if 22 <= t <= 31}

    def ecc(self) -> dict:
        """ECC values by ECC tag; arrays as {ecc_tag: {index: value}}."""
        out: dict = {}
        for t, v, _ in self.floating:
            if t == C.TAG_ECC_VAR_VALUE:
                out[v[0]] = v[1]
            elif t == C.TAG_ECC_VAR_ARRAY:
                out.setdefault(v[0], {})
                if isinstance(out[v[0]], dict):
                    out[v[0]][v[1]] = v[2]
        return out

    def summary(self) -> str:
        """One line for ladders and logs: name, dialogue, fixed and floating fields."""
        parts = [self.name]
        if self.type == C.SERVICE_CONTROL and self.dialogue_id != C.NULL:
            parts.append(f"dlg={self.dialogue_id} seq={self.send_seq}")
        parts += [f"{k}={v}" for k, v in self.fixed.items()]
        parts += [f"{C.TAG_NAMES.get(t, t)}={v!r}" for t, v, _ in self.floating]
        return " ".join(parts)

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        return (self.type, self.subtype, self.dialogue_id, self.send_seq, self.fixed,
                [(t, v) for t, v, _ in self.floating], self.trailer) == (
            other.type, other.subtype, other.dialogue_id, other.send_seq, other.fixed,
            [(t, v) for t, v, _ in other.floating], other.trailer)

    def __repr__(self):
        return f"<Message {self.summary()}>"


def base(type: int, floating=None, **fixed) -> Message:
    """A base (non-SERVICE_CONTROL) message: C{base(C.OPEN_REQ, InvokeID=1, ...)}."""
    return Message(type, fixed, floating)


def sc(subtype: int, dialogue_id=C.NULL, send_seq=C.NULL, floating=None, **fixed) -> Message:
    """A SERVICE_CONTROL message."""
    return Message(C.SERVICE_CONTROL, fixed, floating, subtype, dialogue_id, send_seq)


def frame_size(header: bytes) -> int:
    """For L{FrameBuffer}: MessageLength excludes the 8-byte header (§1.1)."""
    return _UINT.unpack_from(header, 0)[0] + HEADER_SIZE


class Codec:
    """
    Encode and decode GED-125 frames.

    @param nul_terminate: append a NUL to strings we send (§3.3 decision, default on).
    @param accept_without_nul: accept received strings that lack a NUL (default on);
        when off, such a string is a L{FieldError}.
    @param max_lengths: per-tag maximum characters (bytes for UUI/raw), excluding the NUL.
    @param enforce_on_receive: apply C{max_lengths} to received fields too.
    @param max_message: largest frame accepted, header included.
    """

    def __init__(self, nul_terminate=True, accept_without_nul=True, max_lengths=None,
                 enforce_on_receive=True, max_message=DEFAULT_MAX_MESSAGE, encoding="latin-1"):
        self.nul_terminate = nul_terminate
        self.accept_without_nul = accept_without_nul
        limits = [255] * 256
        for tag, n in {**DEFAULT_MAX_LENGTHS, **(max_lengths or {})}.items():
            limits[tag] = n
        self.max_lengths = tuple(limits)
        self.enforce_on_receive = enforce_on_receive
        self.max_message = max_message
        self.encoding = encoding

    def frame_buffer(self) -> FrameBuffer:
        return FrameBuffer(HEADER_SIZE, frame_size, self.max_message)

    # --- decoding ---------------------------------------------------------------------------

    def decode(self, frame: bytes) -> Message:
        """Decode one whole frame (header included), as cut by L{frame_buffer}."""
        if len(frame) < HEADER_SIZE:
            raise DecodeError(f"frame of {len(frame)} bytes is shorter than the 8-byte header")
        length, mtype = _HEADER.unpack_from(frame, 0)
        end = len(frame)
        if length + HEADER_SIZE != end:
            raise DecodeError(f"MessageLength {length} does not match the {end - HEADER_SIZE} body bytes")
        if mtype == C.SERVICE_CONTROL:
            if end < HEADER_SIZE + SC_HEADER_SIZE:
                raise DecodeError("SERVICE_CONTROL body is shorter than its 12-byte header",
                                  "SERVICE_CONTROL")
            subtype, dialogue_id, send_seq = _SC_HEADER.unpack_from(frame, HEADER_SIZE)
            layout = SC_LAYOUTS.get(subtype, _RAW)
            pos = HEADER_SIZE + SC_HEADER_SIZE
        else:
            subtype = None
            dialogue_id = send_seq = C.NULL
            layout = BASE_LAYOUTS.get(mtype, _RAW)
            pos = HEADER_SIZE
        msg = Message(mtype, None, [], subtype, dialogue_id, send_seq)
        if layout is _RAW:
            msg.trailer = frame[pos:]
            return msg
        if end - pos < layout.size:
            raise DecodeError(f"body too short for the fixed part ({end - pos} < {layout.size} bytes)",
                              layout.name)
        fixed = dict(zip(layout.names, layout.struct.unpack_from(frame, pos)))
        pos += layout.size
        msg.fixed = fixed
        if layout.tail is not None:
            fixed[layout.tail[0]] = _decode_tail(layout, frame, pos, end)
        elif layout.floating:
            msg.floating = self._decode_floating(layout.name, frame, pos, end)
        elif pos < end:
            msg.trailer = frame[pos:]
        return msg

    def _decode_floating(self, name, frame, pos, end):
        out = []
        kinds = FIELD_KINDS
        limits = self.max_lengths
        enforce = self.enforce_on_receive
        encoding = self.encoding
        append = out.append
        accept = self.accept_without_nul
        while pos < end:
            if end - pos < 2:
                raise DecodeError("floating field header cut off at the end of the message", name)
            tag = frame[pos]
            length = frame[pos + 1]
            pos += 2
            stop = pos + length
            if stop > end:
                raise DecodeError(f"floating field of {length} bytes runs past the end of the message",
                                  name, tag)
            kind = kinds[tag]
            if kind == STRING:
                stripped = frame[pos:stop].rstrip(b"\0")
                nuls = length - len(stripped)
                if enforce and len(stripped) > limits[tag]:
                    raise FieldError(f"{len(stripped)} characters exceed the limit of {limits[tag]}",
                                     name, tag)
                if not nuls and not accept:
                    raise FieldError("string without a terminating NUL", name, tag)
                append((tag, stripped.decode(encoding), nuls))
            elif kind == UINT or kind == BOOL:
                if length != 4:
                    raise DecodeError(f"expected 4 bytes, got {length}", name, tag)
                append((tag, _UINT.unpack_from(frame, pos)[0], None))
            elif kind == ECC_VALUE or kind == ECC_NAME:
                if length < 4:
                    raise DecodeError(f"ECC field of {length} bytes is shorter than its 4-byte tag", name, tag)
                ecc_tag = _UINT.unpack_from(frame, pos)[0]
                stripped = frame[pos + 4:stop].rstrip(b"\0")
                nuls = length - 4 - len(stripped)
                if enforce and len(stripped) > limits[tag]:
                    raise FieldError(f"{len(stripped)} characters exceed the limit of {limits[tag]}",
                                     name, tag)
                append((tag, (ecc_tag, stripped.decode(encoding)), nuls))
            elif kind == ECC_ARRAY:
                if length < 5:
                    raise DecodeError(f"ECC array field of {length} bytes is shorter than 5", name, tag)
                ecc_tag, index = _ECC_ARRAY.unpack_from(frame, pos)
                stripped = frame[pos + 5:stop].rstrip(b"\0")
                nuls = length - 5 - len(stripped)
                if enforce and len(stripped) > limits[tag]:
                    raise FieldError(f"{len(stripped)} characters exceed the limit of {limits[tag]}",
                                     name, tag)
                append((tag, (ecc_tag, index, stripped.decode(encoding)), nuls))
            else:  # UNSPEC and unknown tags: raw bytes, skipped by length and preserved (§12.2)
                if enforce and kind == UNSPEC and length > limits[tag]:
                    raise FieldError(f"{length} bytes exceed the limit of {limits[tag]}", name, tag)
                append((tag, frame[pos:stop], None))
            pos = stop
        return out

    # --- encoding ---------------------------------------------------------------------------

    def encode(self, msg: Message) -> bytes:
        """Encode a message into one frame (header included)."""
        if msg.type == C.SERVICE_CONTROL:
            layout = SC_LAYOUTS.get(msg.subtype, _RAW)
            head = _SC_HEADER.pack(msg.subtype, msg.dialogue_id, msg.send_seq)
        else:
            layout = BASE_LAYOUTS.get(msg.type, _RAW)
            head = b""
        parts = [head]
        if layout is not _RAW:
            fixed = msg.fixed
            try:
                parts.append(layout.struct.pack(*[fixed[n] for n in layout.names]))
            except KeyError as e:
                raise EncodeError(f"fixed field {e.args[0]} is missing", layout.name) from None
            except struct.error as e:
                raise EncodeError(f"fixed part: {e}", layout.name) from None
            if layout.tail is not None:
                parts.append(_encode_tail(layout, fixed.get(layout.tail[0], ())))
            elif layout.floating:
                parts.append(self._encode_floating(layout.name, msg.floating))
        parts.append(msg.trailer)
        body = b"".join(parts)
        size = len(body) + HEADER_SIZE
        if size > self.max_message:
            raise EncodeError(f"message of {size} bytes exceeds the limit of {self.max_message}", msg.name)
        return _HEADER.pack(len(body), msg.type) + body

    def _encode_floating(self, name, floating) -> bytes:
        out = bytearray()
        limits = self.max_lengths
        default_nuls = 1 if self.nul_terminate else 0
        encoding = self.encoding
        for tag, value, nuls in floating:
            kind = FIELD_KINDS[tag] if 0 <= tag < 256 else RAW
            try:
                if kind == STRING:
                    data = value.encode(encoding)
                    _check(len(data), limits[tag], name, tag)
                    data += b"\0" * (default_nuls if nuls is None else nuls)
                elif kind == UINT or kind == BOOL:
                    data = _UINT.pack(int(value))
                elif kind == ECC_VALUE or kind == ECC_NAME:
                    text = value[1].encode(encoding)
                    _check(len(text), limits[tag], name, tag)
                    data = _UINT.pack(value[0]) + text + b"\0" * (default_nuls if nuls is None else nuls)
                elif kind == ECC_ARRAY:
                    text = value[2].encode(encoding)
                    _check(len(text), limits[tag], name, tag)
                    data = _ECC_ARRAY.pack(value[0], value[1]) + text + b"\0" * (
                        default_nuls if nuls is None else nuls)
                else:
                    data = bytes(value)
                    if kind == UNSPEC:
                        _check(len(data), limits[tag], name, tag)
            except (UnicodeEncodeError, struct.error, TypeError, IndexError, AttributeError) as e:
                raise EncodeError(f"bad value {value!r}: {e}", name, tag) from None
            if len(data) > 255:
                raise EncodeError(f"{len(data)} bytes do not fit a floating field (max 255)", name, tag)
            if not 0 <= tag < 256:
                raise EncodeError("tag out of range", name, tag)
            out.append(tag)
            out.append(len(data))
            out += data
        return bytes(out)


def _check(length, limit, name, tag):
    if length > limit:
        raise EncodeError(f"{length} characters exceed the limit of {limit}", name, tag)


def _decode_tail(layout, frame, pos, end):
    kind = layout.tail[1]
    size = {"ints": 4, "trunks": 4, "ushorts": 2}[kind]
    if (end - pos) % size:
        raise DecodeError(f"array to the end of the message is not a multiple of {size} bytes", layout.name)
    count = (end - pos) // size
    if kind == "ints":
        return list(struct.unpack_from(f"!{count}i", frame, pos))
    if kind == "ushorts":
        return list(struct.unpack_from(f"!{count}H", frame, pos))
    flat = struct.unpack_from(f"!{count * 2}H", frame, pos)
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _encode_tail(layout, values) -> bytes:
    kind = layout.tail[1]
    try:
        if kind == "ints":
            return struct.pack(f"!{len(values)}i", *values)
        if kind == "ushorts":
            return struct.pack(f"!{len(values)}H", *values)
        return b"".join(struct.pack("!HH", n, s) for n, s in values)
    except (struct.error, TypeError, ValueError) as e:
        raise EncodeError(f"{layout.tail[0]}: {e}", layout.name) from None
