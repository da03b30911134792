"""
The SIP stack as real processes on loopback: SIPp sends OPTIONS at 1,000/s
over UDP and TCP and every one is answered; every RFC 4475 message is sent
over UDP (and the frameable ones over TCP) and gets the right answer, and
the process stays up.

Two processes: the stateless responder (tests/sip/responder.tac), whose
answers are fixed by RFC 3261 §8.2, and the real C{gvp-rm} plugin, where
only what the transport layer decides is asserted (the RM's routing answers
are the RM tests' business).
"""

from __future__ import annotations

import csv
import re
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.sip.corpus import ANSWER, INVALID, RESPONSES, SEMANTIC, VALID, every_name, load
from tests.support import ROOT, free_port, requires_tool, twistd

HERE = Path(__file__).parent

CONFIG = """\
[sip]
listen-address = 127.0.0.1
udp-port = {port}
tcp-port = {port}
tls-port = off
"""


@pytest.fixture(scope="module")
def responder(tmp_path_factory):
    port = free_port()
    path = tmp_path_factory.mktemp("responder") / "sip.ini"
    path.write_text(CONFIG.format(port=port))
    old = os.environ.get("CTIC_SIP_RESPONDER_CONFIG")
    os.environ["CTIC_SIP_RESPONDER_CONFIG"] = str(path)
    try:
        with twistd("-y", str(HERE / "responder.tac"), ready_port=port) as proc:
            proc.port = port
            yield proc
    finally:
        if old is None:
            del os.environ["CTIC_SIP_RESPONDER_CONFIG"]
        else:
            os.environ["CTIC_SIP_RESPONDER_CONFIG"] = old


@pytest.fixture(scope="module")
def rm(tmp_path_factory):
    port = free_port()
    with twistd("gvp-rm", "--config", str(ROOT / "etc" / "rm.ini"), "--port", str(port), "--set", "[cdr]sink=none",
                ready_port=port) as proc:
        proc.port = port
        yield proc


# --- SIPp ------------------------------------------------------------------------------

def run_sipp(port, transport, tmp_path, calls=2000, rate=1000):
    stat = tmp_path / f"stat-{transport}.csv"
    cmd = [
        "sipp", "-sf", str(HERE / "scenarios" / "options_uac.xml"), f"127.0.0.1:{port}",
        "-i", "127.0.0.1", "-p", str(free_port()), "-t", transport,
        "-m", str(calls), "-r", str(rate), "-nostdin", "-timeout", "30", "-timeout_error",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=60)
    rows = list(csv.DictReader(stat.read_text().splitlines(), delimiter=";"))
    return done, rows[-1]


@requires_tool("sipp")
@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest.mark.parametrize("target", ["responder", "rm"])
def test_sipp_options_all_answered(request, target, transport, tmp_path):
    proc = request.getfixturevalue(target)
    done, last = run_sipp(proc.port, transport, tmp_path)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert int(last["TotalCallCreated"]) == 2000
    assert int(last["SuccessfulCall(C)"]) == 2000
    assert int(last["FailedCall(C)"]) == 0
    assert proc.poll() is None


# --- the corpus over UDP and TCP -----------------------------------------------------------

def with_our_via(data: bytes, port: int, transport: str, n: int) -> bytes:
    """
    Put our own Via on top so the answer, routed by Via (§18.2.2), comes back
    to us (test.dat, which has none, becomes answerable: 400).
    """
    start, sep, rest = data.partition(b"\r\n")
    via = b"Via: SIP/2.0/%s 127.0.0.1:%d;rport;branch=z9hG4bK-interop-%d" % (transport.encode(), port, n)
    return start + sep + via + sep + rest


def udp_exchange(port, data, expect_answer=True):
    """Send one datagram; collect answers until a short quiet spell."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(with_our_via(data, s.getsockname()[1], "UDP", 1) if data[:4] != b"SIP/" else data, ("127.0.0.1", port))
        out = []
        s.settimeout(2.0 if expect_answer else 0.1)
        try:
            while True:
                out.append(s.recv(65535))
                s.settimeout(0.02)
        except socket.timeout:
            pass
        return out


def status_line(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


def expected_parse_answer(name):
    """What the transport layer itself answers (None: not decided there)."""
    if name in RESPONSES:
        return "silence"
    if name in INVALID:
        return 505 if name == "badvers" else 400
    return None


def check_alive(port):
    options = (b"OPTIONS sip:rm@127.0.0.1 SIP/2.0\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\n"
               b"To: <sip:rm@127.0.0.1>\r\nCall-ID: alive-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
               b"Content-Length: 0\r\n\r\n" % time.monotonic_ns())
    (answer,) = udp_exchange(port, options)
    assert status_line(answer) == b"SIP/2.0 200 OK"


# What the RM answers each well-formed request of the corpus with, over UDP in
# the exchange window (RFC 4475 §3.1.1, §3.3), and why:
# - OPTIONS (badbranch, lwsdisp, semiuri, transports) is for the RM itself: 200.
# - Max-Forwards 0 (zeromf, §3.3.7): 483 Too Many Hops (RFC 3261 §16.3).
# - an unknown Request-URI scheme (unkscm §3.3.2, novelsc §3.3.3): 416.
# - Require of an unknown extension (bext01 §3.3.4): 420.
# - methods the RM does not serve (REGISTER: cparam01/02, dblreq, escnull,
#   regaut01, regescrt, unksm2; MESSAGE mpart01; the unknown methods intmeth
#   §3.1.1.3 and esc02, whose method is RE%47IST%45R, not REGISTER): 405.
# - INVITEs (esc01, inv2543, invut, longreq, sdp01) are routed: 100 Trying,
#   the call then waits on the MCP.  wsinv's Request-URI host
#   (chair-dnrc.example.com) cannot be reached: 100, then 503 from the
#   transport error.
RM_ANSWER = {
    "badbranch": [200], "lwsdisp": [200], "semiuri": [200], "transports": [200],
    "zeromf": [483], "unkscm": [416], "novelsc": [416], "bext01": [420],
    "cparam01": [405], "cparam02": [405], "dblreq": [405], "escnull": [405], "regaut01": [405],
    "regescrt": [405], "unksm2": [405], "mpart01": [405], "intmeth": [405], "esc02": [405],
    "esc01": [100], "inv2543": [100], "invut": [100], "longreq": [100], "sdp01": [100],
    "wsinv": [100, 503],
}


def test_rm_answer_table_covers_every_well_formed_request():
    assert set(RM_ANSWER) == set(VALID + SEMANTIC) - set(RESPONSES)


@pytest.mark.parametrize("target", ["responder", "rm"])
def test_corpus_over_udp(request, target):
    proc = request.getfixturevalue(target)
    wrong = {}
    for name in every_name():
        expected = expected_parse_answer(name)
        if expected is None:
            if target == "responder":
                expected = [ANSWER[name]] if name in ANSWER else "silence"
            else:
                expected = RM_ANSWER.get(name, "silence")
        elif expected != "silence":
            expected = [expected]
        answers = udp_exchange(proc.port, load(name), expect_answer=expected != "silence")
        got = "silence" if not answers else [int(status_line(a).split()[1]) for a in answers]
        if got != expected:
            wrong[name] = got
    assert wrong == {}
    assert proc.poll() is None
    check_alive(proc.port)


# A stream needs Content-Length (inv2543 has none), and on clerr the server
# waits for the rest of the body: those are checked separately.
STREAM_SKIP = {"inv2543", "clerr"}


def tcp_exchange(port, data, expect_answer=True):
    """
    Send on a fresh connection; return (answer status codes, closed by the
    server).  Codes are read off the status lines: the answers echo the
    sender's own, maybe malformed, headers.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
        local = s.getsockname()[1]
        s.sendall(with_our_via(data, local, "TCP", 2) if data[:4] != b"SIP/" else data)
        s.settimeout(2.0 if expect_answer else 0.1)
        raw, closed = b"", False
        try:
            while True:
                chunk = s.recv(65535)
                if not chunk:
                    closed = True
                    break
                raw += chunk
                s.settimeout(0.05)
        except socket.timeout:
            pass
        return [int(c) for c in re.findall(rb"^SIP/2\.0 ([0-9]{3}) ", raw, re.M)], closed


def test_corpus_over_tcp(responder):
    wrong = {}
    for name in every_name():
        if name in STREAM_SKIP:
            continue
        expected = expected_parse_answer(name) or ANSWER.get(name, "silence")
        answers, closed = tcp_exchange(responder.port, load(name), expect_answer=expected != "silence")
        got = answers or "silence"
        if name in ("ncl", "mcl01"):  # fatal framing: answered, then closed
            got = (got, closed)
            expected = ([400], True)
        elif name == "dblreq":  # both requests framed, then junk: closed
            got = (got, closed)
            expected = ([501, 501], True)
        elif expected != "silence":
            expected = [expected]
        if got != expected:
            wrong[name] = got
    assert wrong == {}
    # clerr: the server waits for the missing body; the connection stays open.
    answers, closed = tcp_exchange(responder.port, load("clerr"), expect_answer=False)
    assert (answers, closed) == ([], False)
    assert responder.poll() is None
    check_alive(responder.port)
