# -*- test-case-name: tests.sip.test_headers -*-
"""
Header names and the structured header values the stack uses on every
message: L{Via}, L{NameAddr} (From, To, Contact, Route, Record-Route) and
L{CSeq}.  Everything else stays text until someone asks for it.

Values render back to text with C{str()}; renderings are canonical (single
spaces, C{<>} around every URI) but mean exactly what was parsed.
"""

from __future__ import annotations

import re

from ctic.sip.errors import SIPParseError
from ctic.sip.uri import URI, format_params, parse_uri

# RFC 3261 §7.3.3 and later RFCs' compact forms.
COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
    "v": "via", "o": "event", "r": "refer-to", "b": "referred-by", "u": "allow-events",
    "a": "accept-contact", "j": "reject-contact", "d": "request-disposition",
    "x": "session-expires", "y": "identity", "n": "identity-info",
}

# How we write well-known names; unknown names keep the spelling first seen.
CANONICAL = {
    k: v for v in (
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type",
        "Max-Forwards", "Route", "Record-Route", "Allow", "Accept", "Accept-Encoding",
        "Accept-Language", "Supported", "Require", "Proxy-Require", "Unsupported", "Expires",
        "User-Agent", "Server", "Subject", "Date", "Warning", "Retry-After", "Reason",
        "Content-Encoding", "Content-Disposition", "Content-Language", "MIME-Version",
        "Event", "Refer-To", "Referred-By", "Replaces", "Allow-Events", "Session-Expires",
        "Min-SE", "Timestamp", "Organization", "Priority", "Call-Info", "Alert-Info",
        "Error-Info", "In-Reply-To", "Reply-To", "Min-Expires", "Authorization",
        "Proxy-Authorization", "WWW-Authenticate", "Proxy-Authenticate",
        "Authentication-Info", "RSeq", "RAck", "Path", "Service-Route", "Privacy",
        "P-Asserted-Identity", "P-Preferred-Identity", "Subscription-State",
        "History-Info", "Diversion", "Identity", "Identity-Info", "Accept-Contact",
        "Reject-Contact", "Request-Disposition",
    ) for k in (v.lower(),)
}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): only these
# may be split or joined.  Date, Subject, the authentication headers, etc. may not.
LIST_HEADERS = frozenset((
    "via", "contact", "route", "record-route", "allow", "accept", "accept-encoding",
    "accept-language", "supported", "require", "proxy-require", "unsupported",
    "content-encoding", "content-language", "in-reply-to", "alert-info", "call-info",
    "error-info", "warning", "allow-events", "path", "service-route", "reason",
    "p-asserted-identity", "p-preferred-identity", "history-info", "diversion",
    "accept-contact", "reject-contact", "request-disposition",
))

# At most one of each in a message (RFC 4475 §3.3.8).
SINGLETONS = frozenset(("from", "to", "call-id", "cseq", "max-forwards", "content-length"))

_key_cache: dict[str, str] = {}
_KEY_CACHE_MAX = 4096
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~\-]+\Z")


def header_key(name: str) -> str:
    """The lookup key for a header name: lower case, compact forms expanded."""
    key = _key_cache.get(name)
    if key is not None:
        return key
    key = name.strip(" \t").lower()
    key = COMPACT.get(key, key)
    if len(_key_cache) < _KEY_CACHE_MAX:
        _key_cache[name] = key
    return key


def display_name(key: str, written: str | None = None) -> str:
    return CANONICAL.get(key) or written or key


def is_token(text: str) -> bool:
    return _TOKEN.match(text) is not None


# --- splitting and parameters ------------------------------------------------


def split_commas(value: str, strict: bool = True) -> list[str]:
    """
    Split a list header at commas outside quoted strings and C{<>}.  An empty
    element is an error when C{strict} (the hot headers, checked at parse
    time) and is dropped otherwise (other list headers, split on demand,
    where a stray comma should not fail the reader).
    """
    if "," not in value:
        return [value] if value or strict else []
    out = []
    start = 0
    quoted = angle = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            out.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(" \t"))
    if not all(out):
        if strict:
            raise SIPParseError("empty element in a comma-separated header")
        out = [part for part in out if part]
    return out


def _split_params(text: str) -> dict:
    """C{a=b;c} (no leading C{;}, no LWS, no quotes) into a dict."""
    params = {}
    for part in text.split(";"):
        if "=" in part:
            name, _, value = part.partition("=")
            if not name:
                raise SIPParseError("parameter without a name")
            params[name.lower()] = value
        elif part:
            params[part.lower()] = None
        else:
            raise SIPParseError("empty parameter")
    return params


_PARAM = re.compile(
    r'[ \t]*;[ \t]*([^\s;=,"<>]+)(?:[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s;,"<>]*))?[ \t]*'
)


def parse_params(text: str) -> dict:
    """
    Header parameters C{;a=b;c;d="x y"} into an ordered dict (names lower-case,
    values as written, C{None} for a flag).  LWS around C{;} and C{=} is allowed.
    """
    if not text:
        return {}
    params = {}
    if '"' not in text and " " not in text and "\t" not in text:
        if text[0] != ";":
            raise SIPParseError(f"junk before parameters: {text[:40]!r}")
        return _split_params(text[1:])
    pos = 0
    end = len(text.rstrip(" \t"))
    match = _PARAM.match
    while pos < end:
        m = match(text, pos)
        if m is None or m.end() == pos:
            raise SIPParseError(f"malformed parameters: {text[:60]!r}")
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
    return params


# --- Via ---------------------------------------------------------------------

_VIA = re.compile(
    r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9.!%*_+`'~\-]+)[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*(.*)\Z",
    re.I | re.S,
)

MAGIC_COOKIE = "z9hG4bK"
_VIA_HOST = re.compile(r"[A-Za-z0-9_.\-]+\Z")


class Via:
    """
    One Via value (RFC 3261 §20.42, RFC 3581).

    @ivar transport: upper-case (C{UDP}, C{TCP}, C{TLS}, or anything else seen).
    @ivar host: sent-by host, IPv6 without brackets.
    @ivar port: int or C{None}.
    @ivar params: ordered dict, names lower-case, C{None} for a flag.
    """

    __slots__ = ("transport", "host", "port", "params")

    def __init__(self, transport, host, port=None, params=None):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = params if params is not None else {}

    @classmethod
    def parse(cls, text: str) -> "Via":
        # Fast path for the canonical form; the regex copes with LWS anywhere.
        if text[:8] == "SIP/2.0/" and " " in text and "\t" not in text and '"' not in text and "[" not in text:
            sp = text.find(" ", 8)
            rest = text[sp + 1:]
            if " " not in rest:
                semi = rest.find(";")
                if semi >= 0:
                    hostport = rest[:semi]
                    params = _split_params(rest[semi + 1:])
                else:
                    hostport = rest
                    params = {}
                host, colon, port = hostport.partition(":")
                if colon:
                    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
                        raise SIPParseError(f"bad port in Via: {text[:80]!r}")
                    port = int(port)
                else:
                    port = None
                transport = text[8:sp]
                if not host or not _VIA_HOST.match(host) or not is_token(transport):
                    raise SIPParseError(f"malformed Via: {text[:80]!r}")
                via = cls.__new__(cls)
                via.transport = transport.upper()
                via.host = host
                via.port = port
                via.params = params
                return via
        m = _VIA.match(text)
        if m is None:
            raise SIPParseError(f"malformed Via: {text[:80]!r}")
        transport, host, port, rest = m.groups()
        if host[0] == "[":
            host = host[1:-1]
        if port is not None:
            port = int(port)
            if port > 65535:
                raise SIPParseError(f"Via port out of range: {text[:80]!r}")
        return cls(transport.upper(), host, port, parse_params(rest) if rest else {})

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self):
        """C{None} if absent, C{True} if requested (no value), else the port."""
        if "rport" not in self.params:
            return None
        value = self.params["rport"]
        return True if not value else int(value) if value.isascii() and value.isdigit() else True

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def copy(self) -> "Via":
        return Via(self.transport, self.host, self.port, dict(self.params))

    def __str__(self):
        text = f"SIP/2.0/{self.transport} {self.sent_by}"
        return text + format_params(self.params) if self.params else text

    def __eq__(self, other):
        return isinstance(other, Via) and (
            self.transport, self.host.lower(), self.port, self.params
        ) == (other.transport, other.host.lower(), other.port, other.params)

    __hash__ = None

    def __repr__(self):
        return f"<Via {self}>"


# --- name-addr / addr-spec ------------------------------------------------------

_NA_QUOTED = re.compile(r'("(?:[^"\\]|\\.)*")[ \t]*<([^<>]*)>[ \t]*(.*)\Z', re.S)
_NA_ANGLE = re.compile(r"([^<\"]*?)[ \t]*<([^<>]*)>[ \t]*(.*)\Z", re.S)
_DISPLAY_TOKENS = re.compile(r"[A-Za-z0-9.!%*_+`'~\-]+(?:[ \t]+[A-Za-z0-9.!%*_+`'~\-]+)*\Z")
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


_URI_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+\Z")


class NameAddr:
    """
    A From, To, Contact, Route or Record-Route value: optional display name,
    a URI, header parameters.

    The URI is parsed with the header, by L{parse_uri}, the one grammar
    every later reader uses (C and Python alike): a URI a copy or a proxy
    would reject is a 400 at the first parse.

    @ivar display: the display name as written (quoted or token form), or C{None}.
    @ivar uri: a L{URI}; C{None} only for the C{Contact: *} wildcard.
    @ivar params: header parameters (not URI parameters), ordered dict.
    """

    # _uri_text is always None: it is kept only because the C accelerator
    # (ctic/sip/_speedups.c) fills this layout, and an extension built
    # before its removal would then fail on every name-addr.
    __slots__ = ("display", "_uri", "_uri_text", "params")

    def __init__(self, uri, display=None, params=None):
        self._uri = uri
        self._uri_text = None
        self.display = display
        self.params = params if params is not None else {}

    @classmethod
    def parse(cls, text: str, allow_star: bool = False) -> "NameAddr":
        first = text[:1]
        if first == "<":
            end = text.find(">")
            if end < 0:
                raise SIPParseError(f"unterminated '<' in {text[:80]!r}")
            display = None
            uri_text = text[1:end]
            rest = text[end + 1:]
            if rest[:1] == " " or rest[:1] == "\t":
                rest = rest.lstrip(" \t")
        elif first == '"':
            m = _NA_QUOTED.match(text)
            if m is None:
                raise SIPParseError(f"unterminated quoted string or missing <URI> in {text[:80]!r}")
            display, uri_text, rest = m.groups()
        elif "<" in text:
            m = _NA_ANGLE.match(text)
            if m is None:
                raise SIPParseError(f"malformed name-addr {text[:80]!r}")
            display, uri_text, rest = m.groups()
            if not display:
                display = None
            elif _DISPLAY_TOKENS.match(display) is None:
                raise SIPParseError(f"display name must be tokens or a quoted string: {display[:60]!r}")
        else:
            if text == "*" and allow_star:
                return cls(None)
            # addr-spec: parameters after it are header parameters (RFC 3261 §20.10),
            # and it may not carry ',', '?' or ';' of its own.
            uri_text, sep, rest = text.partition(";")
            uri_text = uri_text.rstrip(" \t")
            if "?" in uri_text or "," in uri_text:
                raise SIPParseError(f"URI with '?' or ',' must be enclosed in <>: {text[:80]!r}")
            rest = sep + rest
            display = None
        if _URI_SHAPE.match(uri_text) is None:
            raise SIPParseError(f"malformed URI {uri_text[:80]!r}")
        na = cls.__new__(cls)
        # The URI is parsed now, with the one grammar every later reader uses:
        # a URI that a copy or a proxy would reject must be a 400 here, before
        # any routing decision is taken on the request.
        na._uri = parse_uri(uri_text)
        na._uri_text = None
        na.display = display
        na.params = parse_params(rest) if rest else {}
        return na

    @property
    def uri(self):
        return self._uri

    @uri.setter
    def uri(self, value) -> None:
        self._uri = value

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str) -> None:
        self.params["tag"] = value

    @property
    def display_name(self) -> str | None:
        """The display name with quoting undone."""
        d = self.display
        if d is None:
            return None
        if d[:1] == '"':
            return _QUOTED_PAIR.sub(r"\1", d[1:-1])
        return d

    @property
    def is_star(self) -> bool:
        return self._uri is None

    def copy(self) -> "NameAddr":
        na = NameAddr.__new__(NameAddr)
        na._uri = self._uri.copy() if self._uri is not None else None
        na._uri_text = None
        na.display = self.display
        na.params = dict(self.params)
        return na

    def __str__(self):
        uri = self._uri
        if uri is None:
            return "*"
        text = f"<{uri}>" if self.display is None else f"{self.display} <{uri}>"
        return text + format_params(self.params) if self.params else text

    def __eq__(self, other):
        return isinstance(other, NameAddr) and (self.display, str(self.uri), self.params) == (
            other.display, str(other.uri), other.params)

    __hash__ = None

    def __repr__(self):
        return f"<NameAddr {self}>"


def quote_display(name: str) -> str:
    """A display name as a quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- CSeq --------------------------------------------------------------------

_CSEQ = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z0-9.!%*_+`'~\-]+)\Z")
CSEQ_MAX = 2**32 - 1


class CSeq:
    """C{CSeq: 1 INVITE} (RFC 3261 §20.16): a 32-bit sequence number and a method."""

    __slots__ = ("seq", "method")

    def __init__(self, seq: int, method: str):
        self.seq = seq
        self.method = method

    @classmethod
    def parse(cls, text: str) -> "CSeq":
        m = _CSEQ.match(text)
        if m is None:
            raise SIPParseError(f"malformed CSeq: {text[:60]!r}")
        seq = int(m.group(1))
        if seq > CSEQ_MAX:
            raise SIPParseError("CSeq number larger than 2**32-1")
        return cls(seq, m.group(2))

    def copy(self) -> "CSeq":
        return CSeq(self.seq, self.method)

    def __str__(self):
        return f"{self.seq} {self.method}"

    def __eq__(self, other):
        return isinstance(other, CSeq) and self.seq == other.seq and self.method == other.method

    __hash__ = None

    def __repr__(self):
        return f"<CSeq {self}>"


__all__ = [
    "COMPACT", "CANONICAL", "LIST_HEADERS", "SINGLETONS", "MAGIC_COOKIE", "URI",
    "Via", "NameAddr", "CSeq", "header_key", "display_name", "split_commas",
    "parse_params", "quote_display", "is_token",
]
