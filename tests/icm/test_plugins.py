"""The two plugins as real processes hold a session pair out of the box (shipped configs)."""

import json
import socket
import time

from tests.support import ROOT, twistd


def _events(path):
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _ports_free(*ports):
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def test_ctic_and_vru_pg_sim_hold_sessions_with_shipped_configs():
    import pytest

    if not _ports_free(9001, 9002):
        pytest.skip("ports 9001/9002 of the shipped configuration are in use")
    with twistd("ctic", "--config", str(ROOT / "etc/ctic-icm.ini"), ready_port=9001) as vru:
        with twistd("vru-pg-sim", "--config", str(ROOT / "etc/vru-pg-sim.ini")) as sim:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                ready = [e for e in _events(vru.log_path) if "Service Control ready" in e.get("msg", "")]
                if len(ready) >= 2:
                    break
                time.sleep(0.1)
            events = _events(vru.log_path)
            assert sim.poll() is None and vru.poll() is None
    ready = {e["link"] for e in events if "Service Control ready" in e.get("msg", "")}
    assert ready == {"Tenant1/9001", "Tenant1/9002"}, vru.log_path.read_text()[-3000:]
    connections = [e for e in events if e.get("msg", "").startswith("PG connection from")]
    assert len(connections) >= 4  # both sides of both duplex PGs connected; two stay quiescent
    sim_events = _events(sim.log_path)
    assert sum("session active on side A" in e.get("msg", "") for e in sim_events) == 2
    assert sum("side B connected and quiescent" in e.get("msg", "") for e in sim_events) == 2


def test_ctic_check_describes_each_mode():
    import subprocess
    import sys

    def check(config):
        out = subprocess.run([sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                              "ctic", "--check", "--config", str(ROOT / "etc" / config)], capture_output=True,
                             text=True, cwd=ROOT, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout.splitlines()[1:]

    assert check("ctic-genesys.ini") == [
        "  mode: genesys", "  SIP listeners: UDP 127.0.0.1:5070, TCP 127.0.0.1:5070",
        "  IVR Server: 127.0.0.1:3021 as GVP_CTIC", "  behind mode; leg B to the RM at 127.0.0.1:5060"]
    assert check("ctic-icm.ini")[0] == "  mode: icm"
