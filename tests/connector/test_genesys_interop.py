"""
The CTI Connector in Genesys behind mode, end to end with real processes on
127.0.0.1: SIPp as the gateway (from the Genesys tenant's gateway port) ->
gvp-rm (etc/rm-cti.ini) -> ctic (etc/ctic-genesys.ini) <-> ivr-server-sim
(etc/ivr-server-sim.ini) -> gvp-rm -> SIPp uas as the MCP.  The shipped
files are used as they are, with only ports and paths overridden.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

from ctic.rm.cdr import read_all
from tests.support import ROOT, free_port, requires_tool, twistd

CALLS = 3


def log_events(proc, namespace):
    out = []
    for line in proc.log_path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("namespace", "").startswith(namespace):
            out.append(event)
    return out


@requires_tool("sipp")
def test_behind_mode_call_gets_ani_dnis_and_attached_data_from_ivr_server(tmp_path):
    rm_port, ctic_port, is_port, mcp_port, gw_port = (free_port() for _ in range(5))
    etc = ROOT / "etc"
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(mcp_port), "-nostdin", "-timeout", "60s",
         "-trace_msg", "-message_file", str(tmp_path / "mcp-messages.log")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with twistd("ivr-server-sim", "--config", str(etc / "ivr-server-sim.ini"), "--port", str(is_port),
                    ready_port=is_port) as sim, \
             twistd("gvp-rm", "--config", str(etc / "rm-cti.ini"), "--port", str(rm_port),
                    "--set", f"[cdr]sqlite-path={tmp_path / 'cdr.sqlite'}",
                    "--set", f"[gateway-group:genesys-gw]members=127.0.0.1:{gw_port}",
                    "--set", f"[ctic-group:genesys-ctic]members=127.0.0.1:{ctic_port}",
                    "--set", "[ctic-group:genesys-ctic]monitor-method=none",
                    "--set", f"[mcp-group:mcp]members=127.0.0.1:{mcp_port}", ready_port=rm_port) as rm, \
             twistd("ctic", "--config", str(etc / "ctic-genesys.ini"), "--port", str(ctic_port),
                    "--set", f"[ivr-server]server=127.0.0.1:{is_port}",
                    "--set", f"[genesys]resource-manager=127.0.0.1:{rm_port}", ready_port=ctic_port) as ctic:
            wait_logged_in(ctic)
            uac = subprocess.run(
                ["sipp", "-sn", "uac", f"127.0.0.1:{rm_port}", "-s", "3001", "-i", "127.0.0.1", "-p", str(gw_port),
                 "-m", str(CALLS), "-r", "1", "-l", "1", "-d", "200", "-nostdin", "-timeout", "40s",
                 "-timeout_error", "-trace_msg", "-message_file", str(tmp_path / "gw-messages.log")],
                cwd=tmp_path, capture_output=True, timeout=60)
            rows = wait_for_cdrs(tmp_path / "cdr.sqlite")
            ctic_log, sim_log = ctic.log_path.read_text(), sim.log_path.read_text()
            logic = log_events(ctic, "ctic.connector.genesys")
    finally:
        uas.terminate()
        uas.wait(10)
    assert uac.returncode == 0, (tmp_path / "gw-messages.log").read_text()[:6000]
    # Leg B reached the MCP with the caller's data from IVR Server as Request-URI parameters.
    invites = re.findall(r"^INVITE (\S+) SIP/2\.0", (tmp_path / "mcp-messages.log").read_text(), re.M)
    assert len(invites) == CALLS
    for uri in invites:
        assert "ConnId=" in uri and "UUID=" in uri and ";Language=EN" in uri and ";Segment=Gold" in uri, uri
    # The RM mapped the CTIC's INVITE by the DNIS IVR Server reported; one CDR per call.
    assert len(rows) == CALLS
    assert all(r["dnis"] == "8005550100" and r["ani"] == "4155550101" and r["ivr_profile"] == "genesys-default"
               and int(r["cti"]) == 1 and r["ctic"] == f"127.0.0.1:{ctic_port}" for r in rows), rows
    connected = [e for e in logic if "leg B to the RM" in e.get("msg", "")]
    assert len(connected) == CALLS and all(e["ani"] == "4155550101" for e in connected)
    # Every NewCall got its EndCall: each call the simulator saw was ended by the CTIC.
    started = set(re.findall(r'"msg":"Call (\S+) on 01 \(behind\)"', sim_log))
    ended = set(re.findall(r'"msg":"Call (\S+) ended by the client \(Normal\)"', sim_log))
    assert len(started) == CALLS and started == ended, sim_log[-3000:]
    assert "Traceback" not in ctic_log and "Traceback" not in sim_log


def wait_logged_in(proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "LoginResp" in proc.log_path.read_text() or "Logged in" in proc.log_path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError("the CTIC did not log in to IVR Server:\n" + proc.log_path.read_text()[-3000:])


def wait_for_cdrs(db, timeout=5.0):
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        rows = read_all(str(db)) if db.exists() else []
        if len(rows) >= CALLS:
            break
        time.sleep(0.1)
    return rows
