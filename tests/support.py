"""
Shared test helpers: tool detection, free loopback ports, running a twistd
role as a real process, and the no-leaked-timer check.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RFC4475 = DATA / "rfc4475"
IVR_WIRE = DATA / "ivr-server-wire"


def in_ci() -> bool:
    """CI sets CI=true; there every outside tool must be present."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def requires_tool(name: str):
    """
    Mark a test that needs an outside tool.  Outside CI a missing tool skips
    the test with the reason; in CI (which installs them all) it fails it
    (tests/conftest.py applies the mark).
    """
    return pytest.mark.requires_tool(name)


def need_tool(name: str) -> str:
    """
    The path of an outside tool, from inside a running test: when it is
    missing, skip the test (outside CI) or fail it (in CI).
    """
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install it)"
        if in_ci():
            pytest.fail(f"CI must install every outside tool: {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def check_tools(item) -> None:
    """The C{requires_tool} rule for one collected test."""
    for mark in item.iter_markers("requires_tool"):
        need_tool(*mark.args)


def free_port(kind=socket.SOCK_STREAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (probed, then released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def assert_no_pending_calls(clock):
    """Fail if a timer is left on a task.Clock (Buildbot's assert_no_remaining_calls)."""
    pending = [c for c in clock.getDelayedCalls() if c.active()]
    assert not pending, f"leaked DelayedCalls: {pending!r}"


def wait_for_port(port: int, udp: bool = False, timeout: float = 10.0, proc=None):
    """Wait until a TCP port accepts connections (UDP: until the port is bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        if udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return
        else:
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} not ready after {timeout}s")


@contextlib.contextmanager
def twistd(*args: str, ready_port: int | None = None, ready_udp: bool = False, cwd=None, timeout=15.0):
    """
    Run C{twistd -n --pidfile= <args>} as a real process with JSON logs,
    yield it, and stop it with SIGTERM.  Its log is at C{proc.log_path}.
    """
    cwd = Path(cwd or ROOT)
    logdir = Path(os.environ.get("CTIC_TEST_LOGS", "/tmp/ctic-test-logs"))
    logdir.mkdir(parents=True, exist_ok=True)
    log_path = logdir / f"twistd-{args[0]}-{os.getpid()}-{time.monotonic_ns()}.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
        "-n", "--pidfile=", "--logger=ctic.log.jsonObserver", *args,
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    proc.log_path = log_path
    try:
        if ready_port is not None:
            wait_for_port(ready_port, udp=ready_udp, timeout=timeout, proc=proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
