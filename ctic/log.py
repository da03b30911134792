# -*- test-case-name: tests.test_log -*-
"""
Logging conventions.

Code logs through C{twisted.logger.Logger} with fields, never pre-formatted
strings::

    log.info("Rejected {method} from {peer}: {reason}", method=..., peer=..., reason=...)

One event per decision an operator would ask about (why this CTIC, why this
profile, why rejected).  Field names are stable and snake_case: C{call_id},
C{tenant}, C{peer}, C{reason}, C{status}.

For containers, run C{twistd --logger=ctic.log.jsonObserver ...}: one JSON
object per line on standard output, without the RFC 7464 record separator
that C{twisted.logger.jsonFileLogObserver} writes, and with flat keys a log
pipeline understands::

    {"time": "2026-11-28T01:02:03.456789Z", "level": "info",
     "namespace": "ctic.sip.responder", "msg": "...", "call_id": "...", ...}
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from twisted.logger import FileLogObserver, formatEvent

_RESERVED = ("log_", "_")


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def eventAsDict(event: dict) -> dict:
    """Flatten a twisted.logger event into ctic's JSON record."""
    when = event.get("log_time")
    level = event.get("log_level")
    record = {
        "time": (
            datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if when is not None
            else None
        ),
        "level": level.name if level is not None else "info",
        "namespace": event.get("log_namespace", "-"),
        "msg": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith(_RESERVED) or key in record or key in ("format", "message", "isError", "system", "time"):
            continue
        record[key] = _jsonable(value)
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return record


def eventAsJSONLine(event: dict) -> str:
    line = json.dumps(eventAsDict(event), ensure_ascii=False, separators=(",", ":")) + "\n"
    if not line.isascii():
        # Text read off the wire keeps undecodable bytes as lone surrogates
        # (surrogateescape); a UTF-8 file cannot take them, and the event
        # would be lost.  Write them as JSON escapes (\udcff) instead.
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line


def jsonObserver(outFile=None) -> FileLogObserver:
    """
    The C{twistd --logger} factory: JSON lines on standard output.

    twistd calls it with no arguments; tests pass a file.
    """
    return FileLogObserver(outFile if outFile is not None else sys.stdout, eventAsJSONLine)
