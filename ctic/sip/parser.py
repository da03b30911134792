# -*- test-case-name: tests.sip.test_parser -*-
"""
The SIP parser, Sans-IO: L{parse_datagram} for one UDP datagram,
L{StreamParser} for TCP/TLS byte streams (Content-Length framing, partial
reads, several messages per read, RFC 5626 §3.5.1 CRLF keep-alives).

The hot headers are parsed eagerly into structured values; everything else
is kept as text.  Every fault raises L{SIPParseError}; nothing else escapes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ctic.sip.errors import SIPParseError
from ctic.sip.headers import CANONICAL, COMPACT, CSeq, NameAddr, Via, display_name, header_key, is_token, split_commas
from ctic.sip.message import Headers, Request, Response
from ctic.sip.uri import parse_uri

__all__ = ["Limits", "parse_datagram", "parse_message", "StreamParser", "SIPParseError", "Ping"]


@dataclass(frozen=True)
class Limits:
    """Configurable bounds on what the parser accepts."""

    max_message_size: int = 65535
    max_headers: int = 128


DEFAULT_LIMITS = Limits()

_FOLD = re.compile(r"\r\n[ \t]+")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+\Z", re.I)
_STATUS = re.compile(r"[1-6][0-9][0-9]\Z")
# The shape of a sip:/sips: URI as uri.parse_uri accepts it (kept in step with it).
_RURI_SIP = re.compile(
    r'sips?:(?:[^@:\s<>"][^@\s<>"]*@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)'
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r'(?:;[^;=?\s<>"]+(?:=[^;?\s<>"]*)?)*(?:\?[^\s<>"]*)?\Z'
)
_RAW_KEYS = ("via", "from", "to", "call-id", "cseq")


def _h_via(d, value):
    vias = d.get("via")
    if vias is None:
        vias = d["via"] = []
    if "," in value:
        for part in split_commas(value):
            vias.append(Via.parse(part))
    else:
        vias.append(Via.parse(value))


def _h_nameaddr_list(key, allow_star=False):
    def handle(d, value):
        values = d.get(key)
        if values is None:
            values = d[key] = []
        if "," in value:
            for part in split_commas(value):
                values.append(NameAddr.parse(part, allow_star))
        else:
            values.append(NameAddr.parse(value, allow_star))

    return handle


def _singleton(key, convert):
    def handle(d, value):
        if key in d:
            raise SIPParseError(f"more than one {display_name(key)} header")
        d[key] = [convert(value)]

    return handle


def _call_id(value):
    if not value or " " in value or "\t" in value:
        raise SIPParseError("malformed Call-ID")
    return value


def _max_forwards(value):
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or int(value) > 255:
        raise SIPParseError("Max-Forwards must be an integer from 0 to 255")
    return int(value)


def _h_content_length(d, value):
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise SIPParseError(f"bad Content-Length {value[:20]!r}", fatal=True)
    n = int(value)
    old = d.get("content-length")
    if old is not None and old[0] != n:
        raise SIPParseError("conflicting Content-Length headers", fatal=True)
    d["content-length"] = [n]


def _h_date(d, value):
    # RFC 3261 §20.17: the date is always GMT (RFC 4475 §3.1.2.12).
    if not value.endswith("GMT"):
        raise SIPParseError("Date must be in GMT")
    d.setdefault("date", []).append(value)


_HANDLERS = {
    "via": _h_via,
    "from": _singleton("from", NameAddr.parse),
    "to": _singleton("to", NameAddr.parse),
    "call-id": _singleton("call-id", _call_id),
    "cseq": _singleton("cseq", CSeq.parse),
    "max-forwards": _singleton("max-forwards", _max_forwards),
    "content-length": _h_content_length,
    "contact": _h_nameaddr_list("contact", allow_star=True),
    "route": _h_nameaddr_list("route"),
    "record-route": _h_nameaddr_list("record-route"),
    "date": _h_date,
}


def _split_head(data: bytes):
    """(header text, body bytes) or None when the header block is incomplete."""
    idx = data.find(b"\r\n\r\n")
    if idx >= 0:
        return data[:idx].decode("utf-8", "surrogateescape"), data[idx + 4:]
    idx = data.find(b"\n\n")  # tolerate bare-LF line ends
    if idx >= 0:
        head = data[:idx].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return head.decode("utf-8", "surrogateescape"), data[idx + 2:]
    return None


def _raw_scan(lines) -> dict:
    """Raw values of the headers needed to answer, for a request that failed to parse."""
    raw = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = header_key(name)
        if key in _RAW_KEYS:
            raw.setdefault(key, []).append(value.strip())
    return raw


def _start_line(start: str):
    """Parse the start line: a (method, uri) or (status, reason) pair, with a kind flag."""
    if start[:4].isascii() and start[:4].upper() == "SIP/":
        version, sep, rest = start.partition(" ")
        if not sep:
            raise SIPParseError("malformed status line", is_request=False)
        code, _, reason = rest.partition(" ")
        if not version.isascii() or version.upper() != "SIP/2.0":
            raise SIPParseError(f"unsupported SIP version {version[:20]!r}", 505, is_request=False)
        if _STATUS.match(code) is None:
            raise SIPParseError(f"bad status code {code[:20]!r}", is_request=False)
        return False, int(code), reason
    parts = start.split(" ")
    if len(parts) != 3:
        method = parts[0] if parts and is_token(parts[0]) else None
        raise SIPParseError(
            "request line must be 'Method SP Request-URI SP SIP/2.0' with single spaces",
            method=method, is_request=method is not None,
        )
    method, uri_text, version = parts
    if method not in _METHOD_OK and not is_token(method):
        raise SIPParseError("bad method token")
    if version != "SIP/2.0":
        if version.isascii() and version.upper() == "SIP/2.0":
            pass
        elif _VERSION.match(version):
            raise SIPParseError(f"unsupported SIP version {version}", 505, method=method, is_request=True)
        else:
            raise SIPParseError("bad SIP version in request line", method=method, is_request=True)
    # The Request-URI is parsed in full here only when it is not a plain
    # sip:/sips: URI; for those a cheap check now, the object on first use.
    if uri_text[:4] == "sip:" or uri_text[:5] == "sips:":
        if not _RURI_SIP.match(uri_text):
            raise SIPParseError(f"malformed Request-URI {uri_text[:80]!r}", method=method, is_request=True)
        at = uri_text.find("@")
        if uri_text.find("?", at + 1) >= 0:
            # RFC 3261 §19.1.1: no headers in a Request-URI (RFC 4475 §3.1.2.11).
            raise SIPParseError("escaped headers are not allowed in a Request-URI", method=method, is_request=True)
        return True, method, uri_text
    try:
        uri = parse_uri(uri_text)
    except SIPParseError as e:
        e.method, e.is_request = method, True
        raise
    return True, method, uri


_parser_keys: dict[str, str] = {}
_METHOD_OK = {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY",
              "SUBSCRIBE", "UPDATE", "PRACK", "MESSAGE", "PUBLISH"}


def _parser_key(name: str) -> str:
    """Lookup key for a header name read off the wire; validated once, then cached."""
    key = header_key(name)
    if not key or not is_token(key):
        raise SIPParseError(f"bad header name {name[:40]!r}")
    if len(_parser_keys) < 4096:
        _parser_keys[name] = key
    return key


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS, *, exact_body: bool = False):
    """
    Parse one message.  With C{exact_body} (stream framing) the body is
    already cut to Content-Length; otherwise (datagram) Content-Length, when
    present, must not exceed what follows the headers, and trailing octets
    after it are ignored (RFC 4475 §3.1.1.8).
    """
    accel = _accel
    msg = None
    if accel is not None:
        msg = accel(data, limits.max_message_size, limits.max_headers, exact_body)
    if msg is None:
        msg = _parse_message_py(data, limits, exact_body=exact_body)
    if type(msg) is Request and msg._uri is None:
        # One URI grammar, checked here: a Request-URI that a later use would
        # reject is a 400 now, before any transaction or routing sees it.
        try:
            msg.uri
        except SIPParseError as err:
            _annotate(err, data)
            raise
    return msg


def _parse_message_py(data: bytes, limits: Limits = DEFAULT_LIMITS, *, exact_body: bool = False):
    """The pure-Python parser: the reference for the C fast path, and the one that decides every fault."""
    if len(data) > limits.max_message_size:
        err = SIPParseError(f"message of {len(data)} bytes exceeds the limit of {limits.max_message_size}", 513)
        _annotate(err, data)
        raise err
    idx = data.find(b"\r\n\r\n")
    if idx >= 0:
        head = data[:idx].decode("utf-8", "surrogateescape")
        body = data[idx + 4:]
    else:
        split = _split_head(data)
        if split is None:
            err = SIPParseError("no empty line after the header fields")
            _annotate(err, data)
            raise err
        head, body = split
    if "\r\n " in head or "\r\n\t" in head:
        head = _FOLD.sub(" ", head)
    lines = head.split("\r\n")
    is_request = None
    method = None
    try:
        is_request, a, b = _start_line(lines[0])
        if is_request:
            method = a
        if len(lines) > limits.max_headers + 1:
            raise SIPParseError(f"more than {limits.max_headers} header fields")
        headers = Headers()
        d = headers._d
        keys = _parser_keys
        handlers = _HANDLERS
        first = True
        for line in lines:
            if first:
                first = False
                continue
            i = line.find(":")
            if i < 0:
                raise SIPParseError(f"header line without a colon: {line[:40]!r}")
            name = line[:i]
            key = keys.get(name)
            if key is None:
                key = _parser_key(name)
            value = line[i + 1:].strip()
            handler = handlers.get(key)
            if handler is not None:
                handler(d, value)
            else:
                values = d.get(key)
                if values is None:
                    d[key] = [value]
                    if key not in CANONICAL:
                        headers._names[key] = name.rstrip()
                else:
                    values.append(value)
        cseq = d.get("cseq")
        if cseq is None or "via" not in d or "from" not in d or "to" not in d or "call-id" not in d:
            missing = [n for n in ("Via", "From", "To", "Call-ID", "CSeq") if header_key(n) not in d]
            raise SIPParseError("missing mandatory header(s): " + ", ".join(missing))
        if not exact_body:
            cl = d.get("content-length")
            if cl is not None:
                n = cl[0]
                if n != len(body):
                    if n > len(body):
                        raise SIPParseError(f"Content-Length {n} is larger than the {len(body)} body bytes")
                    body = body[:n]
        if is_request:
            if cseq[0].method != method:
                raise SIPParseError("CSeq method does not match the request method")
            msg = Request(method, b, headers, body)
        else:
            msg = Response(a, b, headers, body)
    except SIPParseError as err:
        if err.is_request is None:
            err.is_request = is_request
        if err.method is None:
            err.method = method
        if err.is_request:
            err.raw_headers = _raw_scan(lines[1:])
        raise
    except (ValueError, IndexError, UnicodeError) as e:  # defensive: never let another error escape
        err = SIPParseError(f"unparseable message ({type(e).__name__})", is_request=is_request, method=method)
        if is_request:
            err.raw_headers = _raw_scan(lines[1:])
        raise err from None
    return msg


def _load_accelerator():
    """
    ctic.sip._speedups.parse_message, or None: when the extension was not
    built, or CTIC_PURE_PYTHON is set (tests and debugging).  It returns the
    message the Python path would build, or None to let the Python path
    decide, so errors always come from the Python path.
    """
    if os.environ.get("CTIC_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from ctic.sip import _speedups
    except ImportError:
        return None
    _speedups.configure(Via, NameAddr, CSeq, Headers, Request, Response, Via.parse, NameAddr.parse,
                        parse_uri, CANONICAL, COMPACT)
    return _speedups.parse_message


_accel = _load_accelerator()
#: "c" when the C fast path is in use, else "python".
IMPLEMENTATION = "python" if _accel is None else "c"


def _annotate(err: SIPParseError, data: bytes) -> None:
    """Fill in what is needed to answer a message rejected before it was parsed."""
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else min(len(data), 8192)].decode("utf-8", "surrogateescape")
    lines = head.split("\r\n")
    first = lines[0].split(" ")
    if lines[0][:4].isascii() and lines[0][:4].upper() == "SIP/":
        err.is_request = False
    elif len(first) == 3 and is_token(first[0]):
        err.is_request = True
        err.method = first[0]
        err.raw_headers = _raw_scan(lines[1:])


def parse_datagram(data: bytes, limits: Limits = DEFAULT_LIMITS):
    """One UDP datagram: a L{Request} or L{Response}, or L{SIPParseError}."""
    return parse_message(data, limits)


class Ping:
    """A CRLF CRLF keep-alive on a stream (RFC 5626 §3.5.1); answer with CRLF."""

    __slots__ = ()


PING = Ping()
_CL_LINE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M)


class StreamParser:
    """
    Frame a SIP byte stream.  C{feed(data)} returns a list of events: a
    L{Request}, a L{Response}, L{PING}, or a L{SIPParseError} for a message
    that was framed but malformed (answer it, keep the connection).  A fault
    that loses framing (bad Content-Length, oversized header block) raises
    L{SIPParseError} with C{fatal=True}: close the connection.  Its
    C{framed} attribute lists the events framed earlier in the same call,
    so what arrived in one read before the fault is handled exactly as if
    it had arrived in reads of its own.
    """

    __slots__ = ("_buf", "_limits", "_need")

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self._buf = b""
        self._limits = limits
        self._need = 0  # bytes needed before trying again (known frame size)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def in_message(self) -> bool:
        """Part of a message has arrived (keep-alive CRLFs do not count)."""
        return bool(self._buf) and bool(self._buf.strip(b"\r\n"))

    def feed(self, data: bytes) -> list:
        buf = self._buf + data if self._buf else data
        events = []
        try:
            return self._frame(buf, events)
        except SIPParseError as err:
            err.framed = events
            raise

    def _frame(self, buf: bytes, events: list) -> list:
        limits = self._limits
        while buf:
            if buf[:2] == b"\r\n":
                # Keep-alives between messages: CRLFCRLF is a ping, a lone CRLF a pong.
                if buf[:4] == b"\r\n\r\n":
                    events.append(PING)
                    buf = buf[4:]
                    continue
                if len(buf) < 4 and b"\r\n\r\n".startswith(buf):
                    break  # maybe the first half of a ping
                buf = buf[2:]
                continue
            if self._need and len(buf) < self._need:
                break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > limits.max_message_size:
                    self._buf = b""
                    err = SIPParseError("header block exceeds the message size limit", 513, fatal=True)
                    _annotate(err, buf)
                    raise err
                break
            head = buf[:end]
            lengths = _CL_LINE.findall(head)
            if not lengths:
                self._buf = b""
                err = SIPParseError("Content-Length is required on stream transports", fatal=True)
                _annotate(err, buf)
                raise err
            if len(set(lengths)) > 1 or not lengths[0].isdigit() or len(lengths[0]) > 10:
                self._buf = b""
                err = SIPParseError("missing, negative or conflicting Content-Length", fatal=True)
                _annotate(err, buf)
                raise err
            size = end + 4 + int(lengths[0])
            if size > limits.max_message_size:
                self._buf = b""
                err = SIPParseError(f"message of {size} bytes exceeds the limit of {limits.max_message_size}", 513, fatal=True)
                _annotate(err, buf)
                raise err
            if len(buf) < size:
                self._need = size
                break
            self._need = 0
            frame = buf[:size]
            buf = buf[size:]
            try:
                events.append(parse_message(frame, limits, exact_body=True))
            except SIPParseError as err:
                events.append(err)
        self._buf = buf
        return events
