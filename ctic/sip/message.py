# -*- test-case-name: tests.sip.test_parser -*-
"""
The SIP message model: L{Request}, L{Response} and their L{Headers}.

Headers are kept as an ordered mapping from lookup key (lower case, compact
forms expanded) to a list of values.  The hot headers (Via, From, To,
Call-ID, CSeq, Content-Length, Max-Forwards, Route, Record-Route, Contact)
hold structured values (L{Via}, L{NameAddr}, L{CSeq}, int); every other
header holds its text, split into list elements only on request and only for
headers whose grammar is a list.

C{bytes(message)} serialises; Content-Length is always written from the body.
"""

from __future__ import annotations

from ctic.sip.headers import (
    LIST_HEADERS,
    CSeq,
    NameAddr,
    Via,
    display_name,
    header_key,
    split_commas,
)
from ctic.sip.uri import URI, parse_uri

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


class Headers:
    """
    Ordered multi-valued headers.  Names are case-insensitive and compact
    forms are the same header (C{headers["v"]} is the Via list).
    """

    __slots__ = ("_d", "_names")

    def __init__(self):
        self._d: dict[str, list] = {}
        self._names: dict[str, str] = {}

    def __contains__(self, name: str) -> bool:
        return header_key(name) in self._d

    def __getitem__(self, name: str) -> list:
        return self._d[header_key(name)]

    def get(self, name: str, default=None):
        """The first value of a header, or C{default}."""
        values = self._d.get(header_key(name))
        return values[0] if values else default

    def getlist(self, name: str) -> list:
        """Every value; list headers written comma-joined are split."""
        key = header_key(name)
        values = self._d.get(key)
        if not values:
            return []
        if key in LIST_HEADERS:
            out = []
            for v in values:
                if isinstance(v, str):
                    out.extend(split_commas(v, strict=False))
                else:
                    out.append(v)
            return out
        return list(values)

    def set(self, name: str, value) -> None:
        """Replace every value of a header with one value (or a list of them)."""
        key = header_key(name)
        self._remember(key, name)
        self._d[key] = list(value) if isinstance(value, list) else [value]

    def add(self, name: str, value, first: bool = False) -> None:
        """Add a value after (or, with C{first}, before) the existing ones."""
        key = header_key(name)
        values = self._d.get(key)
        if values is None:
            self._remember(key, name)
            self._d[key] = [value]
        elif first:
            values.insert(0, value)
        else:
            values.append(value)

    def remove(self, name: str) -> list:
        """Remove a header; return its values (empty if absent)."""
        key = header_key(name)
        self._names.pop(key, None)
        return self._d.pop(key, [])

    def _remember(self, key: str, written: str) -> None:
        if key != written and key not in self._names and display_name(key) == key:
            self._names[key] = written

    def items(self):
        """(display name, value) pairs in order, one per value."""
        names = self._names
        for key, values in self._d.items():
            name = display_name(key, names.get(key))
            for v in values:
                yield name, v

    def keys(self):
        return list(self._d)

    def copy(self) -> "Headers":
        """A copy whose structured values are copies too."""
        new = Headers()
        d = new._d
        for key, values in self._d.items():
            d[key] = [v if isinstance(v, (str, int)) else v.copy() for v in values]
        new._names = dict(self._names)
        return new

    def __eq__(self, other):
        if not isinstance(other, Headers):
            return NotImplemented
        return _normal(self) == _normal(other)

    __hash__ = None

    def __repr__(self):
        return f"<Headers {list(self.items())!r}>"


def _normal(h: Headers) -> dict:
    """Headers compared by meaning: list headers split, values as text."""
    out = {}
    for key in h._d:
        if key == "content-length":  # derived from the body when serialised
            continue
        values = h.getlist(key) if key in LIST_HEADERS else h._d[key]
        out[key] = [str(v) for v in values]
    return out


class Message:
    """What requests and responses share."""

    __slots__ = ("headers", "body", "source")

    version = "SIP/2.0"

    def __init__(self, headers: Headers | None = None, body: bytes = b""):
        self.headers = headers if headers is not None else Headers()
        self.body = body
        # Where the message came from (set by the transport), or None.
        self.source = None

    # --- the hot headers, structured ---------------------------------------

    @property
    def via(self) -> list[Via]:
        return self.headers._d.get("via") or []

    @property
    def top_via(self) -> Via | None:
        values = self.headers._d.get("via")
        return values[0] if values else None

    @property
    def from_(self) -> NameAddr | None:
        values = self.headers._d.get("from")
        return values[0] if values else None

    @property
    def to(self) -> NameAddr | None:
        values = self.headers._d.get("to")
        return values[0] if values else None

    @property
    def call_id(self) -> str | None:
        values = self.headers._d.get("call-id")
        return values[0] if values else None

    @property
    def cseq(self) -> CSeq | None:
        values = self.headers._d.get("cseq")
        return values[0] if values else None

    @property
    def max_forwards(self) -> int | None:
        values = self.headers._d.get("max-forwards")
        return values[0] if values else None

    @property
    def contact(self) -> list[NameAddr]:
        return self.headers._d.get("contact") or []

    @property
    def route(self) -> list[NameAddr]:
        return self.headers._d.get("route") or []

    @property
    def record_route(self) -> list[NameAddr]:
        return self.headers._d.get("record-route") or []

    # --- serialisation -----------------------------------------------------

    def start_line(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        lines = [self.start_line()]
        names = self.headers._names
        for key, values in self.headers._d.items():
            if key == "content-length":
                continue
            name = display_name(key, names.get(key))
            for v in values:
                lines.append(f"{name}: {v}")
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    to_bytes = __bytes__

    def summary(self) -> str:
        """One line for logs and ladders."""
        return self.start_line()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.start_line() == other.start_line() and self.headers == other.headers and self.body == other.body

    __hash__ = None


class Request(Message):
    """
    A SIP request.  The parser checks the Request-URI's shape and leaves
    turning it into a L{URI} object to the first reader of C{uri}.
    """

    __slots__ = ("method", "_uri", "_uri_text")

    def __init__(self, method: str, uri, headers: Headers | None = None, body: bytes = b""):
        Message.__init__(self, headers, body)
        self.method = method
        if isinstance(uri, str):
            self._uri = None
            self._uri_text = uri
        else:
            self._uri = uri
            self._uri_text = None

    @property
    def uri(self) -> URI:
        uri = self._uri
        if uri is None:
            uri = self._uri = parse_uri(self._uri_text)
            self._uri_text = None
        return uri

    @uri.setter
    def uri(self, value: URI) -> None:
        self._uri = value
        self._uri_text = None

    @property
    def uri_text(self) -> str:
        """The Request-URI as text, without turning it into an object."""
        return self._uri_text if self._uri is None else str(self._uri)

    def start_line(self) -> str:
        uri = self._uri
        return f"{self.method} {self._uri_text if uri is None else uri} SIP/2.0"

    def copy(self) -> "Request":
        new = Request(self.method, self.uri.copy(), self.headers.copy(), self.body)
        new.source = self.source
        return new

    def __repr__(self):
        return f"<Request {self.method} {self.uri} call_id={self.call_id!r}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str | None = None, headers: Headers | None = None, body: bytes = b""):
        Message.__init__(self, headers, body)
        self.status = status
        self.reason = REASONS.get(status, "Unknown") if reason is None else reason

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def copy(self) -> "Response":
        new = Response(self.status, self.reason, self.headers.copy(), self.body)
        new.source = self.source
        return new

    def __repr__(self):
        return f"<Response {self.status} {self.reason} call_id={self.call_id!r}>"


def make_response(request: Request, status: int, reason: str | None = None, to_tag: str | None = None) -> Response:
    """
    A response to C{request} (RFC 3261 §8.2.6): Via, From, To, Call-ID and
    CSeq copied; C{to_tag} added to To when given and To has none (never on
    100 Trying).
    """
    h = Headers()
    src = request.headers._d
    d = h._d
    d["via"] = list(src.get("via", ()))
    d["from"] = list(src.get("from", ()))
    to = src.get("to")
    if to:
        if to_tag is not None and status != 100 and to[0].tag is None:
            t = to[0].copy()
            t.params["tag"] = to_tag
            d["to"] = [t]
        else:
            d["to"] = list(to)
    d["call-id"] = list(src.get("call-id", ()))
    d["cseq"] = list(src.get("cseq", ()))
    if status == 100 and "timestamp" in src:
        d["timestamp"] = list(src["timestamp"])
    return Response(status, reason, h)
