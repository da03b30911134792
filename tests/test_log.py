"""JSON-lines logging: one object per line, no RFC 7464 separator, fields kept, failures with tracebacks."""

from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogPublisher

from ctic.log import eventAsDict, jsonObserver


def capture():
    out = io.StringIO()
    publisher = LogPublisher(jsonObserver(out))
    return out, Logger(namespace="ctic.test", observer=publisher)


def test_json_lines_with_fields():
    out, log = capture()
    log.info("Rejected {method} from {peer}: {reason}", method="INVITE", peer="udp:192.0.2.1:5060",
             reason="bad", status=400, tags=("a", "b"), raw=b"\xff", extra={"k": 1}, obj=object)
    log.warn("second")
    text = out.getvalue()
    assert "\x1e" not in text
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    rec = json.loads(lines[0])
    assert rec["msg"] == "Rejected INVITE from udp:192.0.2.1:5060: bad"
    assert (rec["level"], rec["namespace"]) == ("info", "ctic.test")
    assert (rec["method"], rec["peer"], rec["reason"], rec["status"]) == ("INVITE", "udp:192.0.2.1:5060", "bad", 400)
    assert rec["tags"] == ["a", "b"] and rec["raw"] == "\\xff" and rec["extra"] == {"k": 1}
    assert rec["obj"] == str(object)
    assert rec["time"].endswith("Z") and "T" in rec["time"]
    assert not any(k.startswith("log_") for k in rec)
    assert json.loads(lines[1])["level"] == "warn"


def test_failure_has_traceback():
    out, log = capture()
    try:
        1 / 0
    except ZeroDivisionError:
        log.failure("Handler failed for {call_id}", call_id="c1")
    rec = json.loads(out.getvalue())
    assert rec["level"] == "critical" and rec["call_id"] == "c1"
    assert "ZeroDivisionError" in rec["traceback"] and "Traceback" in rec["traceback"]


def test_event_without_time_or_level():
    rec = eventAsDict({"log_format": "plain {x}", "x": 1})
    assert rec == {"time": None, "level": "info", "namespace": "-", "msg": "plain 1", "x": 1}


def test_unicode_kept():
    out, log = capture()
    log.info("{reason}", reason="сто девяносто девять")
    assert "сто девяносто девять" in out.getvalue()


def test_undecodable_bytes_from_the_wire_do_not_lose_the_event():
    # The SIP parser decodes with surrogateescape: a Call-ID with a 0xFF byte
    # reaches the log as "\udcff", which a strict UTF-8 stdout cannot write.
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    log = Logger(namespace="ctic.test", observer=LogPublisher(jsonObserver(out)))
    log.info("Rejected {call_id}", call_id="a\udcffb")
    rec = json.loads(raw.getvalue().decode("utf-8"))
    assert rec["call_id"] == "a\udcffb" and rec["msg"] == "Rejected a\udcffb"
