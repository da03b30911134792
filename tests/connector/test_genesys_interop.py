"""
The CTI Connector in Genesys behind mode, end to end with real processes on
127.0.0.1: SIPp as the gateway (from the Genesys tenant's gateway port) ->
gvp-rm (etc/rm-cti.ini) -> ctic (etc/ctic-genesys.ini) <-> ivr-server-sim
(etc/ivr-server-sim.ini) -> gvp-rm -> SIPp uas as the MCP.  The shipped
files are used as they are, with only ports, paths and a few simulator
behaviours overridden.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
import subprocess
import time
from types import SimpleNamespace

from ctic.rm.cdr import read_all
from tests.support import ROOT, free_port, requires_tool, twistd

ETC = ROOT / "etc"
HERE = __import__("pathlib").Path(__file__).parent


def log_events(path, namespace):
    out = []
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("namespace", "").startswith(namespace):
            out.append(event)
    return out


@contextlib.contextmanager
def genesys_lab(tmp_path, sim_args=(), with_sim=True, mcp_sim_args=None, ctic_args=()):
    """
    The four processes of the lab, with SIPp uas as the MCP (or C{twistd
    mcp-sim} when C{mcp_sim_args} is given); yields their ports and processes.
    """
    lab = SimpleNamespace(rm=free_port(), ctic=free_port(), sim=free_port(), mcp=free_port(), gw=free_port(),
                          tmp=tmp_path, cdr=tmp_path / "cdr.sqlite")
    uas = None
    if mcp_sim_args is None:
        uas = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(lab.mcp), "-nostdin", "-timeout", "60s",
             "-trace_msg", "-message_file", str(tmp_path / "mcp-messages.log")],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with contextlib.ExitStack() as stack:
            if mcp_sim_args is not None:
                lab.mcp_proc = stack.enter_context(twistd(
                    "mcp-sim", "--config", str(ETC / "mcp-sim.ini"), "--port", str(lab.mcp), *mcp_sim_args,
                    ready_port=lab.mcp))
            if with_sim:
                lab.sim_proc = stack.enter_context(twistd(
                    "ivr-server-sim", "--config", str(ETC / "ivr-server-sim.ini"), "--port", str(lab.sim),
                    *sim_args, ready_port=lab.sim))
            lab.rm_proc = stack.enter_context(twistd(
                "gvp-rm", "--config", str(ETC / "rm-cti.ini"), "--port", str(lab.rm),
                "--set", f"[cdr]sqlite-path={lab.cdr}",
                "--set", f"[gateway-group:genesys-gw]members=127.0.0.1:{lab.gw}",
                "--set", f"[ctic-group:genesys-ctic]members=127.0.0.1:{lab.ctic}",
                "--set", "[ctic-group:genesys-ctic]monitor-method=none",
                "--set", f"[mcp-group:mcp]members=127.0.0.1:{lab.mcp}", ready_port=lab.rm))
            lab.ctic_proc = stack.enter_context(twistd(
                "ctic", "--config", str(ETC / "ctic-genesys.ini"), "--port", str(lab.ctic),
                "--set", f"[ivr-server]server=127.0.0.1:{lab.sim}", "--set", "[ivr-server]reconnect-delay=0.2",
                "--set", f"[genesys]resource-manager=127.0.0.1:{lab.rm}", *ctic_args, ready_port=lab.ctic))
            if with_sim:
                wait_for(lambda: "Logged in to IVR Server" in lab.ctic_proc.log_path.read_text(),
                         "the CTIC did not log in to IVR Server", lab.ctic_proc)
            yield lab
    finally:
        if uas is not None:
            uas.terminate()
            uas.wait(10)


def gateway_calls(lab, dn, calls, *, scenario=("-sn", "uac"), pause_ms=200):
    """SIPp as the Genesys tenant's gateway: C{calls} calls to C{dn}, one at a time."""
    return subprocess.run(
        ["sipp", *scenario, f"127.0.0.1:{lab.rm}", "-s", dn, "-i", "127.0.0.1", "-p", str(lab.gw),
         "-m", str(calls), "-r", "1", "-l", "1", "-d", str(pause_ms), "-nostdin", "-timeout", "40s",
         "-timeout_error", "-trace_msg", "-message_file", str(lab.tmp / "gw-messages.log")],
        cwd=lab.tmp, capture_output=True, timeout=60)


def wait_for(predicate, what, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(what + ("\n" + proc.log_path.read_text()[-3000:] if proc is not None else ""))


def cdrs(lab, count):
    """The CDR rows, once there are C{count} of them."""
    def rows():
        try:
            return read_all(str(lab.cdr)) if lab.cdr.exists() else []
        except sqlite3.OperationalError:  # the file exists, its table not yet
            return []

    wait_for(lambda: len(rows()) >= count, f"{count} CDRs", lab.rm_proc)
    return rows()


def options_status(port) -> int:
    msg = (f"OPTIONS sip:ctic@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKopt{port}\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:ctic@127.0.0.1>\r\nCall-ID: opt-{port}@probe\r\n"
           "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        s.sendto(msg.replace(b"127.0.0.1:9;", f"127.0.0.1:{s.getsockname()[1]};".encode()), ("127.0.0.1", port))
        return int(s.recv(65535).split()[1])


def sim_calls(lab):
    text = lab.sim_proc.log_path.read_text()
    started = re.findall(r'"msg":"Call (\S+) on \S+ \(behind\)"', text)
    ended = re.findall(r'"msg":"Call (\S+) ended by ([^"]+)"', text)
    return started, ended


@requires_tool("sipp")
def test_behind_mode_call_gets_ani_dnis_and_attached_data_from_ivr_server(tmp_path):
    calls = 3
    with genesys_lab(tmp_path) as lab:
        assert options_status(lab.ctic) == 200
        uac = gateway_calls(lab, "3001", calls)
        rows = cdrs(lab, calls)
        started, ended = sim_calls(lab)
        logic = log_events(lab.ctic_proc.log_path, "ctic.connector.genesys")
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + ctic_log[-3000:]
    # Leg B reached the MCP with the caller's data from IVR Server as Request-URI parameters.
    invites = re.findall(r"^INVITE (\S+) SIP/2\.0", (tmp_path / "mcp-messages.log").read_text(), re.M)
    assert len(invites) == calls
    for uri in invites:
        assert "ConnId=" in uri and "UUID=" in uri and ";Language=EN" in uri and ";Segment=Gold" in uri, uri
    # The RM mapped the CTIC's INVITE by the DNIS IVR Server reported; one CDR per call.
    assert len(rows) == calls
    assert all(r["dnis"] == "8005550100" and r["ani"] == "4155550101" and r["ivr_profile"] == "genesys-default"
               and int(r["cti"]) == 1 and r["ctic"] == f"127.0.0.1:{lab.ctic}" for r in rows), rows
    # The CTIC's X-Genesys-GVP-CDR reached the RM's CDR: disposition and the time held for IVR Server
    # (the simulator rings after 0.2 s and answers 0.3 s later).
    assert all(r["call_disposition"] == "completed" and 0.4 <= float(r["queue_wait_time"]) < 5 for r in rows), rows
    connected = [e for e in logic if "leg B to the RM" in e.get("msg", "")]
    assert len(connected) == calls and all(e["ani"] == "4155550101" for e in connected)
    # Every NewCall got its EndCall from the CTIC.
    assert len(started) == calls and sorted(ended) == sorted((c, "the client (Normal)") for c in started)
    assert "Traceback" not in ctic_log


@requires_tool("sipp")
def test_ivr_server_unreachable_is_503_and_the_rm_answers_the_call_without_cti(tmp_path):
    with genesys_lab(tmp_path, with_sim=False) as lab:
        wait_for(lambda: "Cannot connect to IVR Server" in lab.ctic_proc.log_path.read_text(),
                 "the CTIC did not try IVR Server", lab.ctic_proc)
        assert options_status(lab.ctic) == 503  # the RM's health checks take this CTIC out
        uac = gateway_calls(lab, "3001", 1)
        [row] = cdrs(lab, 1)
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:]
    assert "Refused CTI call" in ctic_log and "with 503" in ctic_log
    # cti-unavailable-respcode 503 -> cti-unavailable-action = answer: straight to an MCP
    assert row["mcp"] == f"127.0.0.1:{lab.mcp}" and row["final_status"] == "200"


@requires_tool("sipp")
def test_call_ivr_server_never_rings_is_refused_and_its_newcall_ended(tmp_path):
    """Port3 (DN 3003) never rings: IVR Server ends it with Timeout after wait-for-ringing."""
    with genesys_lab(tmp_path, sim_args=("--set", "[ivr-server-sim]wait-for-ringing=0.5")) as lab:
        uac = gateway_calls(lab, "3003", 1)
        [row] = cdrs(lab, 1)
        started, ended = sim_calls(lab)
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:]
    assert row["mcp"] == f"127.0.0.1:{lab.mcp}"  # the RM answered it as a non-CTI call
    assert "with 503: IVR Server call set-up failed: IVR Server ended the call (Timeout)" in ctic_log
    assert len(started) == 1 and ended == []  # IVR Server ended it: no EndCall from the CTIC
    assert "0 call(s) dropped" in lab.sim_proc.log_path.read_text()


@requires_tool("sipp")
def test_ivr_server_released_ends_both_legs(tmp_path):
    """The caller hangs up on the switch (Released): the CTIC BYEs the gateway leg and the MCP leg."""
    with genesys_lab(tmp_path, sim_args=("--set", "[Port1]hangup-after=0.5")) as lab:
        uac = gateway_calls(lab, "3001", 1, scenario=("-sf", str(HERE / "uac_remote_bye.xml")))
        [row] = cdrs(lab, 1)
        started, ended = sim_calls(lab)
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + ctic_log[-3000:]
    assert "released by IVR Server" in ctic_log or "ended by IVR Server" in ctic_log
    assert (tmp_path / "mcp-messages.log").read_text().count("BYE sip:") >= 1
    assert len(started) == 1 and len(ended) == 1
    assert row["final_status"] == "200" and row["call_disposition"] == "released"


@requires_tool("sipp")
def test_user_data_over_info_reaches_ivr_server_and_comes_back(tmp_path):
    """mcp-sim plays the VoiceXML application: GetData, AttachData, DeleteData through RM and CTIC."""
    steps = ("wait 0.2; getdata Language,Segment; attachdata Note=a b&c%3Dd%25 \u00e9t\u00e9; getdata Note; "
             "deletedata Segment; getdata Segment,Language; hangup")
    with genesys_lab(tmp_path, mcp_sim_args=("--set", f"[app:userdata]steps={steps}")) as lab:
        uac = gateway_calls(lab, "3001", 1, scenario=("-sf", str(HERE / "uac_remote_bye.xml")))
        [row] = cdrs(lab, 1)
        results = [e for e in log_events(lab.mcp_proc.log_path, "ctic.sim.mcp") if e.get("event") == "info.result"]
        ctic_log = lab.ctic_proc.log_path.read_text()
        started, ended = sim_calls(lab)
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + ctic_log[-3000:]
    assert [(e["action"], e["ok"], e["data"]) for e in results] == [
        ("getdata", True, {"Language": "EN", "Segment": "Gold"}),
        ("attachdata", True, {}),
        ("getdata", True, {"Note": "a b&c=d% \u00e9t\u00e9"}),
        ("deletedata", True, {}),
        ("getdata", True, {"Language": "EN"}),
    ], results
    assert row["final_status"] == "200" and int(row["cti"]) == 1 and row["call_disposition"] == "ended-by-ivr"
    assert len(started) == 1 and ended == [(started[0], "the client (Normal)")]


@requires_tool("sipp")
def test_blind_transfer_by_refer_moves_the_call_on_the_switch(tmp_path):
    """mcp-sim REFERs to agent 5550800: OneStepXfer, NOTIFY sipfrag 200, both SIP legs released."""
    with genesys_lab(tmp_path, mcp_sim_args=("--set", "[app:userdata]steps=wait 0.2; transfer refer 5550800")) as lab:
        uac = gateway_calls(lab, "3001", 1, scenario=("-sf", str(HERE / "uac_remote_bye.xml")))
        [row] = cdrs(lab, 1)
        transfers = [e for e in log_events(lab.mcp_proc.log_path, "ctic.sim.mcp") if e.get("event") == "transfer.result"]
        sim_log = lab.sim_proc.log_path.read_text()
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + ctic_log[-3000:]
    assert [e["ok"] for e in transfers] == [True], transfers
    assert "transferred to 5550800 by the switch" in ctic_log
    assert row["call_disposition"] == "transferred"
    assert "ended by the client (Normal)" in sim_log  # EndCall after XferComplete


@requires_tool("sipp")
def test_refused_transfer_is_reported_and_the_call_goes_on(tmp_path):
    """Agent 5550801 is busy: OneStepXfer fails, the MCP hears 503 by NOTIFY and carries on."""
    steps = "wait 0.2; transfer refer 5550801; hangup"
    with genesys_lab(tmp_path, mcp_sim_args=("--set", f"[app:userdata]steps={steps}")) as lab:
        uac = gateway_calls(lab, "3001", 1, scenario=("-sf", str(HERE / "uac_remote_bye.xml")))
        [row] = cdrs(lab, 1)
        transfers = [e for e in log_events(lab.mcp_proc.log_path, "ctic.sim.mcp") if e.get("event") == "transfer.result"]
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + ctic_log[-3000:]
    assert [e["ok"] for e in transfers] == [False], transfers
    assert "Transfer of" in ctic_log and "to 5550801 failed" in ctic_log
    assert row["call_disposition"] == "ended-by-ivr"


@requires_tool("sipp")
def test_in_front_mode_gives_ivr_server_the_ani_and_dnis_of_the_invite(tmp_path):
    """In-front: the IVR supplies ANI and DNIS in NewCall; the simulator's Port4 is an in-front port."""
    ctic = ("--set", "[genesys]mode=front", "--set", "[genesys]port-map=8005550142=127000000001001")
    with genesys_lab(tmp_path, ctic_args=ctic) as lab:
        uac = gateway_calls(lab, "8005550142", 1)
        [row] = cdrs(lab, 1)
        ctic_log = lab.ctic_proc.log_path.read_text()
    assert uac.returncode == 0, uac.stdout.decode()[-2000:] + ctic_log[-3000:]
    assert "NewCall" in ctic_log and "on 127000000001001 (front)" in ctic_log
    # CallInfoResp echoes what NewCall told IVR Server: the RM maps the CTIC's INVITE by that DNIS.
    assert row["dnis"] == "8005550142" and row["ani"] == "sipp" and int(row["cti"]) == 1
