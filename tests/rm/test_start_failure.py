"""
Starts that fail fail fast: exit status 1, one line naming the option and
the cause, no traceback and no usage text; C{--check} validates and exits 0.
Each case runs the real C{twistd} the way an operator does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.support import ROOT, free_port


def twistd(*args, cwd=ROOT):
    """Run twistd in the foreground to its end: (exit status, stdout + stderr)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", *args],
        cwd=cwd, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, timeout=60)
    return proc.returncode, proc.stdout.decode() + proc.stderr.decode()


def assert_one_line_failure(status, out, line):
    assert status == 1, out[-2000:]
    assert "Traceback" not in out and "Usage:" not in out, out[-3000:]
    hits = [text for text in out.splitlines() if line in text]
    assert len(hits) == 1, out[-2000:]
    return hits[0]


def rm_args(tmp_path, *extra):
    port = free_port()
    return port, ["gvp-rm", "--config", str(ROOT / "etc" / "rm.ini"), "--port", str(port),
                  "--set", f"[cdr]sqlite-path={tmp_path / 'cdr.sqlite'}", *extra]


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_port_in_use_is_one_line_and_exit_1(tmp_path, kind):
    port, args = rm_args(tmp_path)
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        taken.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        status, out = twistd(*args)
    option, proto = ("udp-port", "UDP") if kind == socket.SOCK_DGRAM else ("tcp-port", "TCP")
    assert_one_line_failure(status, out, f"[sip] {option} = {port} ({proto} 127.0.0.1:{port}): "
                                         "cannot listen: Address already in use")


def test_address_not_on_this_host_is_one_line_and_exit_1(tmp_path):
    _, args = rm_args(tmp_path, "--set", "[sip]listen-address=192.0.2.55")
    status, out = twistd(*args)
    assert_one_line_failure(status, out, "(UDP 192.0.2.55:")
    assert "cannot listen: Cannot assign requested address" in out


@pytest.mark.parametrize("extra, line", [
    (["--set", "[sip]listen-address=127.0.0.256"],
     "gvp-rm: error: {config} [sip] listen-address = '127.0.0.256': expected an IPv4 or IPv6 address"),
    (["--set", "[sip]udp-prot=5070"], "gvp-rm: error: {config} [sip] udp-prot: unknown option; did you mean udp-port?"),
    (["--set", "[mcp-grup:mcp]members=127.0.0.1:5090"],
     "gvp-rm: error: {config} [mcp-grup:mcp]: unknown section; did you mean [mcp-group:mcp]?"),
    (["--set", "[cdr]sqlite-path=/dev/null/cdr.sqlite"],
     "gvp-rm: error: {config} [cdr] sqlite-path = '/dev/null/cdr.sqlite': /dev/null is not a directory"),
    (["--port", "99999"], "gvp-rm: error: --port '99999': must be at most 65535"),
])
def test_configuration_mistake_is_the_first_line_and_exit_1(tmp_path, extra, line):
    _, args = rm_args(tmp_path, *extra)
    status, out = twistd(*args)
    first = assert_one_line_failure(status, out, line.format(config=ROOT / "etc" / "rm.ini"))
    assert out.splitlines()[0] == first


def test_check_prints_a_summary_and_starts_nothing(tmp_path):
    port, args = rm_args(tmp_path, "--check")
    status, out = twistd(*args)
    assert status == 0, out
    assert out.splitlines() == [
        f"{ROOT / 'etc' / 'rm.ini'}: configuration OK",
        f"  SIP listeners: UDP 127.0.0.1:{port}, TCP 127.0.0.1:{port}",
        "  tenants: Environment",
        "  gateway group local (tenant Environment, use-cti=0): 127.0.0.1:*",
        "  MCP group mcp (round-robin, port-capacity 0): 127.0.0.1:5090",
        "  IVR Profile default (tenant Environment): DNIS * -> file:///var/lib/ctic/default.vxml",
        f"  CDRs: SQLite {tmp_path / 'cdr.sqlite'}",
    ]
    assert not (tmp_path / "cdr.sqlite").exists()


def test_other_roles_fail_fast_on_their_listeners():
    """The CTIC's GED-125 tenant ports and the IVR Server simulator's GLI port."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        status, out = twistd("ctic", "--config", str(ROOT / "etc" / "ctic-icm.ini"),
                             "--set", f"[Tenant1]Ports={port}")
        assert_one_line_failure(status, out, f"[Tenant1] Ports = {port} (TCP 127.0.0.1:{port}): "
                                             "cannot listen: Address already in use")
        status, out = twistd("ivr-server-sim", "--config", str(ROOT / "etc" / "ivr-server-sim.ini"),
                             "--port", str(port))
        assert_one_line_failure(status, out, f"gli-server-address = 127.0.0.1:{port}: "
                                             "cannot listen: Address already in use")
        status, out = twistd("ctic", "--config", str(ROOT / "etc" / "ctic-genesys.ini"), "--port", str(port))
        assert_one_line_failure(status, out, f"[sip] tcp-port = {port} (TCP 127.0.0.1:{port}): "
                                             "cannot listen: Address already in use")
    status, out = twistd("ctic", "--config", str(ROOT / "etc" / "ctic-icm.ini"), "--set", "[CTIC]Mode=cisco")
    assert status == 1 and out.splitlines()[0].startswith("ctic: error: "), out
