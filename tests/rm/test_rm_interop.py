"""
Interop: the shipped etc/rm.ini (on free ports) as a real gvp-rm process,
SIPp as the gateway (uac) and as the MCP (uas).  Every call completes and
ends with a CDR row in SQLite.
"""

from __future__ import annotations

import subprocess
import time

from ctic.rm.cdr import read_all
from tests.support import ROOT, free_port, requires_tool, twistd

CALLS = 30


def shipped_config(tmp_path, rm_port, mcp_port):
    text = (ROOT / "etc" / "rm.ini").read_text()
    text = text.replace("udp-port = 5060", f"udp-port = {rm_port}").replace("tcp-port = 5060", f"tcp-port = {rm_port}")
    text = text.replace("127.0.0.1:5090", f"127.0.0.1:{mcp_port}")
    text = text.replace("sqlite-path = var/rm-cdr.sqlite", f"sqlite-path = {tmp_path / 'var' / 'cdr.sqlite'}")
    path = tmp_path / "rm.ini"
    path.write_text(text)
    return path


@requires_tool("sipp")
def test_sipp_gateway_to_sipp_mcp_through_rm_with_cdrs(tmp_path):
    rm_port, mcp_port, gw_port = free_port(), free_port(), free_port()
    config = shipped_config(tmp_path, rm_port, mcp_port)
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(mcp_port), "-nostdin", "-timeout", "40s"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with twistd("gvp-rm", "--config", str(config), ready_port=rm_port) as rm:
            uac = subprocess.run(
                ["sipp", "-sn", "uac", f"127.0.0.1:{rm_port}", "-i", "127.0.0.1", "-p", str(gw_port),
                 "-m", str(CALLS), "-r", "20", "-nostdin", "-timeout", "30s", "-timeout_error",
                 "-trace_stat", "-stf", str(tmp_path / "uac.csv")],
                cwd=tmp_path, capture_output=True, timeout=45)
            deadline = time.monotonic() + 5
            rows = []
            while time.monotonic() < deadline:
                db = tmp_path / "var" / "cdr.sqlite"
                rows = read_all(str(db)) if db.exists() else []
                if len(rows) >= CALLS:
                    break
                time.sleep(0.1)
            log = rm.log_path.read_text()
    finally:
        uas.terminate()
        uas.wait(10)
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + log[-2000:]
    assert len(rows) == CALLS
    assert all(r["end_reason"] == "bye" and r["final_status"] == "200" and r["ivr_profile"] == "default"
               for r in rows)
    assert {r["mcp"] for r in rows} == {f"127.0.0.1:{mcp_port}"}
    assert len({r["gvp_guid"] for r in rows}) == CALLS
