"""
Interop: C{twistd mcp-sim} as a real process on a free port, called by SIPp
over UDP and TCP: the built-in uac (the caller hangs up), the callee-hangs-up
scenario (application C{wait; hangup}), a user-data round trip and a blind
transfer (SIPp as the CTIC answering the simulator's GetData INFO, and its
REFER with 202 and a NOTIFY).  Every call is answered
and ends cleanly, as SIPp and the counters the simulator logs when it stops
both say; C{--check} prints a summary and starts nothing.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.rm.test_start_failure import twistd as run_to_end
from tests.sim.test_mcp_tap import SHIPPED
from tests.support import ROOT, free_port, requires_tool, twistd

CALLS = 20
SCENARIOS = ROOT / "tests" / "sip" / "scenarios"
HERE = ROOT / "tests" / "sim" / "scenarios"


def events(proc) -> list[dict]:
    out = []
    for line in proc.log_path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def run_calls(tmp_path, transport, scenario=("-sn", "uac"), steps=None, service="service"):
    """Run CALLS calls from SIPp into a fresh mcp-sim; (sipp result, the sim's log events)."""
    port = free_port()
    extra = [] if steps is None else ["--set", f"[app:default]steps={steps}"]
    with twistd("mcp-sim", "--config", str(SHIPPED), "--port", str(port), *extra, ready_port=port) as proc:
        sipp = subprocess.run(
            ["sipp", *scenario, f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(free_port()), "-t", transport,
             "-s", service, "-m", str(CALLS), "-r", "20", "-d", "200", "-nostdin", "-timeout", "30s",
             "-timeout_error", "-max_socket", "100", "-trace_err", "-error_file", str(tmp_path / "errors.log")],
            cwd=tmp_path, capture_output=True, timeout=60)
    log = events(proc)
    errors = (tmp_path / "errors.log").read_text()[-1500:] if (tmp_path / "errors.log").exists() else ""
    assert sipp.returncode == 0, sipp.stdout.decode()[-1500:] + errors + proc.log_path.read_text()[-2000:]
    return log


def counters(log) -> dict:
    """The counters the simulator logs when it stops, which it does holding no call."""
    [stop] = [e for e in log if "counters" in e]
    assert stop["active"] == 0, stop
    return stop["counters"]


@requires_tool("sipp")
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_calls_are_answered_and_the_caller_hangs_up(tmp_path, transport):
    log = run_calls(tmp_path, transport)
    got = counters(log)
    assert (got["received"], got["answered"], got["ended_by_far_end"]) == (CALLS, CALLS, CALLS), got
    assert got["refused"] == got["rejected"] == got["cancelled"] == got["ended_by_us"] == 0
    ended = [e for e in log if e.get("event") == "call.ended"]
    assert len(ended) == CALLS and {e["reason"] for e in ended} == {"BYE from a"}


@requires_tool("sipp")
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_the_application_hangs_up(tmp_path, transport):
    log = run_calls(tmp_path, transport, ("-sf", str(SCENARIOS / "bye_uac.xml")), steps="wait 0.2; hangup")
    got = counters(log)
    assert (got["answered"], got["ended_by_us"], got["ended_by_far_end"]) == (CALLS, CALLS, 0), got


@requires_tool("sipp")
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_getdata_round_trip_with_sipp_as_the_ctic(tmp_path, transport):
    log = run_calls(tmp_path, transport, ("-sf", str(HERE / "mcp_getdata_uac.xml")),
                    steps="getdata CustomerID,Segment; wait 0.2; hangup")
    got = counters(log)
    assert (got["answered"], got["info_sent"], got["info_success"], got["ended_by_us"]) == (CALLS,) * 4, got
    results = [e for e in log if e.get("event") == "info.result"]
    assert len(results) == CALLS
    assert all(e["ok"] and e["data"] == {"CustomerID": "4 2", "Segment": "Gold & José"} for e in results)
    received = [e for e in log if e.get("event") == "call.received"]
    assert all(e["uri_params"] == {"CustomerID": "42", "Segment": "Gold"} for e in received)
    assert all(e["gvp_session_id"].endswith(";gvp.rm.cti-call=1") for e in received)


@requires_tool("sipp")
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_transfer_refer_with_sipp_as_the_ctic(tmp_path, transport):
    log = run_calls(tmp_path, transport, ("-sf", str(HERE / "mcp_refer_uac.xml")),
                    steps="transfer refer 5550800; hangup")
    got = counters(log)
    assert (got["answered"], got["transfers"], got["transfer_failures"], got["ended_by_us"]) == \
        (CALLS, CALLS, 0, CALLS), got
    assert {e["detail"] for e in log if e.get("event") == "transfer.result"} == {"NOTIFY 200"}


def test_check_prints_a_summary_and_starts_nothing():
    port = free_port()
    status, out = run_to_end("mcp-sim", "--check", "--config", str(SHIPPED), "--port", str(port))
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == f"{SHIPPED}: configuration OK"
    assert lines[1] == f"  SIP listeners: UDP 127.0.0.1:{port}, TCP 127.0.0.1:{port}"
    assert lines[2].startswith("  max-calls 10000 (then 486), 180 Ringing on")
    assert "  app default: DNIS *: (no steps)" in lines
    assert any(line.startswith("  app userdata: DNIS 8005550100: wait 1; getdata Language,Segment;") for line in lines)
    assert len(lines) == 6  # the summary only: no log line, nothing started
