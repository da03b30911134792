# -*- test-case-name: tests.sip.test_uri -*-
"""
SIP URIs (RFC 3261 §19.1): C{sip:}, C{sips:}, C{tel:} (RFC 3966) and any
other absolute URI, kept opaque.

User parts and parameter values are stored as written (still %-escaped), so
serialising gives back the same text; L{unescape} decodes when a caller needs
the meaning (never recursively: C{value%2541} is C{value%41}).
"""

from __future__ import annotations

import re

from ctic.sip.errors import SIPParseError

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_BAD_URI_CHARS = re.compile(r"[\s<>\"]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def unescape(text: str) -> str:
    """Decode %HH escapes once (RFC 3261 §19.1.2), leaving malformed ones as written."""
    if "%" not in text:
        return text
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


_UNRESERVED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()")
_USER_OK = _UNRESERVED | set("&=+$,;?/")
_PARAM_OK = _UNRESERVED | set("[]/:&+$")


def escape(text: str, allowed=_USER_OK) -> str:
    """%-escape what a user part (or, with C{allowed=PARAM}, a parameter) may not carry."""
    if all(c in allowed for c in text):
        return text
    out = []
    for c in text:
        if c in allowed:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8"))
    return "".join(out)


PARAM_CHARS = _PARAM_OK


def uri_user(uri) -> str | None:
    """The unescaped user part of a URI (the number of a tel: URI), or C{None}."""
    user = getattr(uri, "user", None)
    return unescape(user) if user else None


def param_value(value) -> str:
    """Any value as the text of a URI parameter (escaped where RFC 3261 §25.1 says so)."""
    return escape(str(value), PARAM_CHARS)


class URIParams(dict):
    """
    URI parameters: names kept exactly as sent (a VoiceXML application reads
    C{session.connection.protocol.sip.requesturi['CustomerID']} case by
    case), looked up case-insensitively as RFC 3261 §19.1.4 compares them:
    C{params.get("transport")} finds C{;Transport=tcp}.  Setting a name
    that is there in another case replaces that entry.  An exact-case hit
    costs what a dict look-up does; only a miss scans.
    """

    __slots__ = ()

    def _key(self, name):
        if dict.__contains__(self, name):
            return name
        low = name.lower()
        for key in self:
            if key.lower() == low:
                return key
        return None

    def __contains__(self, name):
        return self._key(name) is not None

    def __getitem__(self, name):
        key = self._key(name)
        if key is None:
            raise KeyError(name)
        return dict.__getitem__(self, key)

    def get(self, name, default=None):
        key = self._key(name)
        return default if key is None else dict.__getitem__(self, key)

    def __setitem__(self, name, value):
        key = self._key(name)
        dict.__setitem__(self, name if key is None else key, value)

    def __delitem__(self, name):
        key = self._key(name)
        if key is None:
            raise KeyError(name)
        dict.__delitem__(self, key)

    def pop(self, name, *default):
        key = self._key(name)
        if key is None:
            if default:
                return default[0]
            raise KeyError(name)
        return dict.pop(self, key)

    def setdefault(self, name, default=None):
        key = self._key(name)
        if key is None:
            dict.__setitem__(self, name, default)
            return default
        return dict.__getitem__(self, key)

    def copy(self):
        return URIParams(self)


def parse_uri_params(text: str) -> URIParams:
    """C{;a=b;c} (leading C{;} already stripped) into L{URIParams}; names as sent."""
    params = URIParams()
    for part in text.split(";"):
        if not part:
            raise SIPParseError("empty URI parameter")
        name, sep, value = part.partition("=")
        if not name:
            raise SIPParseError("URI parameter without a name")
        params[name] = value if sep else None  # a repeated name: the last one wins
    return params


def format_params(params: dict) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


class URI:
    """Base class: every URI has a scheme and renders back to text with C{str()}."""

    __slots__ = ("scheme",)

    def __eq__(self, other):
        return type(other) is type(self) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __repr__(self):
        return f"<{type(self).__name__} {self}>"

    def copy(self):
        # A parsed URI is copied field by field, never re-parsed from its text.
        new = object.__new__(type(self))
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                value = getattr(self, name)
                setattr(new, name, type(value)(value) if isinstance(value, dict) else value)
        return new


class SIPURI(URI):
    """
    C{sip:user:password@host:port;params?headers} (and C{sips:}).

    @ivar user: the user part as written (escaped), or C{None}.
    @ivar password: as written, or C{None}.
    @ivar host: host name, IPv4 address, or IPv6 reference I{without} brackets.
    @ivar port: int or C{None}.
    @ivar params: L{URIParams}, names as sent (looked up case-insensitively), value C{None} for a flag.
    @ivar headers: the C{?...} part as written (without C{?}), or C{None}.
    """

    __slots__ = ("user", "password", "host", "port", "params", "headers")

    def __init__(self, host, user=None, port=None, params=None, headers=None, password=None, scheme="sip"):
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = params if type(params) is URIParams else URIParams(params or ())
        self.headers = headers

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.upper() if value else None

    def __str__(self):
        userinfo = ""
        if self.user is not None:
            userinfo = self.user if self.password is None else f"{self.user}:{self.password}"
            userinfo += "@"
        text = f"{self.scheme}:{userinfo}{self.hostport}"
        if self.params:
            text += format_params(self.params)
        if self.headers is not None:
            text += "?" + self.headers
        return text


class TelURI(URI):
    """C{tel:+1-201-555-0123;phone-context=...} (RFC 3966)."""

    __slots__ = ("number", "params")

    def __init__(self, number, params=None):
        self.scheme = "tel"
        self.number = number
        self.params = params if type(params) is URIParams else URIParams(params or ())

    @property
    def user(self):
        return self.number

    def __str__(self):
        return f"tel:{self.number}{format_params(self.params)}"


class AbsoluteURI(URI):
    """Any other scheme, kept as written (RFC 3261 §19.1: absoluteURI)."""

    __slots__ = ("opaque",)

    def __init__(self, scheme, opaque):
        self.scheme = scheme
        self.opaque = opaque

    user = None

    def __str__(self):
        return f"{self.scheme}:{self.opaque}"


_PORT_MAX = 65535
_HOSTNAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_KNOWN = {"sip": "sip", "sips": "sips", "tel": "tel", "SIP": "sip", "SIPS": "sips", "TEL": "tel"}


def parse_uri(text: str) -> URI:
    """Parse a URI; raise L{SIPParseError} if it is malformed."""
    colon = text.find(":")
    if colon <= 0:
        raise SIPParseError(f"not a URI: {text[:80]!r}")
    scheme = _KNOWN.get(text[:colon])
    if scheme is None:
        scheme = text[:colon]
        if not _SCHEME.match(scheme):
            raise SIPParseError(f"not a URI: {text[:80]!r}")
        scheme = scheme.lower()
    if _BAD_URI_CHARS.search(text):
        raise SIPParseError(f"whitespace, quote or angle bracket inside URI {text[:80]!r}")
    rest = text[colon + 1:]
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        number, _, ptext = rest.partition(";")
        if not number:
            raise SIPParseError(f"empty tel URI {text[:80]!r}")
        return TelURI(number, parse_uri_params(ptext) if ptext else URIParams())
    if not rest:
        raise SIPParseError(f"empty URI {text[:80]!r}")
    return AbsoluteURI(scheme, rest)


def _parse_sip(scheme: str, rest: str, whole: str) -> SIPURI:
    # The user part may hold ';', '?', ',' and ':' (RFC 4475 §3.1.1.2, §3.1.1.9)
    # but never an unescaped '@': so the first '@' ends userinfo.
    user = password = None
    at = rest.find("@")
    if at >= 0:
        user = rest[:at]
        rest = rest[at + 1:]
        if ":" in user:
            user, _, password = user.partition(":")
        if not user:
            raise SIPParseError(f"empty user part in URI {whole[:80]!r}")
    headers = None
    q = rest.find("?")
    if q >= 0:
        headers = rest[q + 1:]
        rest = rest[:q]
    semi = rest.find(";")
    if semi >= 0:
        params = parse_uri_params(rest[semi + 1:])
        rest = rest[:semi]
    else:
        params = URIParams()
    port = None
    if rest[:1] == "[":
        end = rest.find("]")
        host = rest[:end + 1]
        if end < 0 or not _IPV6.match(host):
            raise SIPParseError(f"bad IPv6 reference in URI {whole[:80]!r}")
        host = host[1:-1]
        rest = rest[end + 1:]
        if rest:
            if rest[0] != ":":
                raise SIPParseError(f"junk after IPv6 reference in URI {whole[:80]!r}")
            port = rest[1:]
    else:
        host, colon, port_text = rest.partition(":")
        if colon:
            port = port_text
        if not _HOSTNAME.match(host):
            raise SIPParseError(f"bad host in URI {whole[:80]!r}")
    if port is not None:
        if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > _PORT_MAX:
            raise SIPParseError(f"bad port in URI {whole[:80]!r}")
        port = int(port)
    return SIPURI(host, user, port, params, headers, password, scheme)
