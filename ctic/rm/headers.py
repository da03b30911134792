# -*- test-case-name: tests.rm.test_rm_routing -*-
"""
The GVP extension headers the RM writes and reads.

- C{X-Genesys-GVP-Session-ID} (docs/gvp-rm-ctic.rst §4.1, observed): C{GUID *(";" name "=" value)};
  split on C{;} only, parameter order free, values raw (spaces, parentheses).
- C{X-Genesys-GVP-CDR} (docs/gvp-rm-ctic.rst §4.3: name documented, format unknown).  B{Ours}:
  C{name=value} pairs separated by C{;}, values %-escaped where they hold
  C{;}, C{=} or C{%}.  The RM reads C{call-disposition} and
  C{queue-wait-time} (seconds) and keeps every other pair in the CDR's
  C{extra}.
- C{X-Genesys-GVP-CTI-Params} (name R, format U).  B{Ours}: the CTI service
  parameters as C{Name=value} pairs separated by C{;}, escaped the same way.
"""

from __future__ import annotations

import re
import uuid

SESSION_ID = "X-Genesys-GVP-Session-ID"
CDR = "X-Genesys-GVP-CDR"
CTI_PARAMS = "X-Genesys-GVP-CTI-Params"

_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\Z")


def new_guid(rng=None) -> str:
    """An upper-case GUID, as GVP writes them."""
    if rng is not None:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
    return str(uuid.uuid4()).upper()


class SessionID:
    """A parsed C{X-Genesys-GVP-Session-ID}: the GUID and ordered parameters."""

    __slots__ = ("guid", "params")

    def __init__(self, guid: str, params=None):
        self.guid = guid
        self.params: dict[str, str] = dict(params or {})

    @classmethod
    def parse(cls, text: str) -> "SessionID | None":
        """The header value, or C{None} when its first item is not a GUID."""
        if not text:
            return None
        parts = text.strip().split(";")
        guid = parts[0].strip()
        if not _GUID.match(guid):
            return None
        params = {}
        for part in parts[1:]:
            name, sep, value = part.partition("=")
            name = name.strip()
            if name:
                params[name] = value if sep else ""
        return cls(guid.upper(), params)

    def __str__(self):
        return self.guid + "".join(f";{k}={v}" for k, v in self.params.items())

    @property
    def cti_call(self) -> bool:
        return self.params.get("gvp.rm.cti-call") == "1"


def tenant_id(dbid_path: str, profile_name: str) -> str:
    """C{gvp.rm.tenant-id} value: C{<tenant DBID path>_<IVR Profile name>} (§4.1)."""
    return f"{dbid_path}_{profile_name}"


def _esc(text: str) -> str:
    return text.replace("%", "%25").replace(";", "%3B").replace("=", "%3D")


def _unesc(text: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def format_pairs(pairs) -> str:
    return ";".join(f"{_esc(str(k))}={_esc(str(v))}" for k, v in pairs)


def parse_pairs(text: str) -> dict[str, str]:
    """Tolerant: empty items are skipped, a name without '=' has the value ''."""
    out = {}
    for part in (text or "").split(";"):
        name, _, value = part.partition("=")
        name = name.strip()
        if name:
            out[_unesc(name)] = _unesc(value.strip())
    return out


class CDRHeader:
    """Our C{X-Genesys-GVP-CDR} format (see the module docstring)."""

    DISPOSITION = "call-disposition"
    QUEUE_WAIT = "queue-wait-time"

    def __init__(self, disposition=None, queue_wait_time=None, extra=None):
        self.disposition = disposition
        self.queue_wait_time = queue_wait_time
        self.extra = dict(extra or {})

    @classmethod
    def parse(cls, text: str) -> "CDRHeader":
        pairs = parse_pairs(text)
        disposition = pairs.pop(cls.DISPOSITION, None) or None
        wait = pairs.pop(cls.QUEUE_WAIT, None)
        try:
            wait = float(wait) if wait not in (None, "") else None
            if wait is not None and not (0 <= wait < 1e9):
                wait = None
        except ValueError:
            pairs[cls.QUEUE_WAIT] = wait
            wait = None
        return cls(disposition, wait, pairs)

    def __str__(self):
        pairs = []
        if self.disposition is not None:
            pairs.append((self.DISPOSITION, self.disposition))
        if self.queue_wait_time is not None:
            w = self.queue_wait_time
            pairs.append((self.QUEUE_WAIT, int(w) if w == int(w) else w))
        pairs.extend(self.extra.items())
        return format_pairs(pairs)
