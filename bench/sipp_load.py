"""
SIPp load stepping for the call benchmarks (bench/calls.py, bench/rm_calls.py).

One step is one SIPp built-in ``uac`` run at a fixed offered rate for a fixed
time; it reports successful and failed calls (SIPp's stat CSV) and the
INVITE-to-200 response times (``-trace_rtt``).  A ramp steps the offered rate
up until a step falls below the pass mark (99.9% of calls successful and,
ours, the caller's p95 response time within MAX_P95_MS),
optionally bisects once between the last pass and the first failure, and
reports the highest passing rate: the *sustained* rate.  Also here: the
SIPp ``uas`` callee, Sippy B2BUA as the comparison system, RSS of a process.
Nothing here asserts on time.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PASS = 0.999
# Ours: a step also fails when the caller's p95 INVITE->200 time exceeds this
# (ms).  Past T1 (500 ms) SIPp retransmits the INVITE: the system is queueing,
# not keeping up, even if every call still completes within the step.
MAX_P95_MS = 500.0


@dataclass
class Step:
    """One offered rate: what SIPp saw."""

    rate: int
    calls: int
    ok: int
    failed: int
    p50: float | None = None  # ms, INVITE -> 200 at the caller
    p95: float | None = None
    retransmissions: int = 0
    rss_kb: int | None = None  # of the system under test, right after the step
    max_p95: float | None = MAX_P95_MS

    @property
    def fraction(self) -> float:
        total = self.ok + self.failed
        return self.ok / total if total else 0.0

    @property
    def passed(self) -> bool:
        slow = self.max_p95 is not None and self.p95 is not None and self.p95 > self.max_p95
        return self.fraction >= PASS and not slow


@dataclass
class Ramp:
    """The steps of one system and the highest passing one."""

    name: str
    steps: list = field(default_factory=list)
    best: Step | None = None
    rss_kb: int | None = None

    @property
    def sustained(self) -> int:
        return self.best.rate if self.best else 0


# --- processes and ports -----------------------------------------------------------------

def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as t:
                t.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


def wait_udp_bound(port, timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing bound UDP {port}")


def stop(proc):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_rm(work: Path, rm_port: int, mcp_port: int, log_name: str = "rm.log") -> subprocess.Popen:
    """A gvp-rm process on the shipped etc/rm.ini semantics, on the given ports, CDRs in C{work}/var."""
    import os

    root = Path(__file__).resolve().parent.parent
    text = (root / "etc" / "rm.ini").read_text()
    text = text.replace("udp-port = 5060", f"udp-port = {rm_port}").replace("tcp-port = 5060", f"tcp-port = {rm_port}")
    text = text.replace("127.0.0.1:5090", f"127.0.0.1:{mcp_port}")
    text = text.replace("sqlite-path = var/rm-cdr.sqlite", f"sqlite-path = {work / 'var' / 'cdr.sqlite'}")
    config = work / "rm.ini"
    config.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                             "--pidfile=", "--logfile=" + str(work / log_name), "gvp-rm", "--config", str(config)],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss_kb(pid, field: str = "VmRSS") -> int | None:
    """Resident set size of a process (C{VmHWM}: its peak), in kB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def start_uas(work: Path, port: int, scenario: Path | None = None) -> subprocess.Popen:
    """The callee every system routes to: SIPp's built-in uas, or C{scenario}."""
    which = ["-sf", str(scenario)] if scenario else ["-sn", "uas"]
    proc = subprocess.Popen(["sipp", *which, "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_udp_bound(port, proc=proc)
    return proc


# --- one step, a ramp --------------------------------------------------------------------

def _percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


SCENARIOS = Path(__file__).resolve().parent / "scenarios"
# Our callee scenario: the built-in uas's calls without the 180 (see the file).
ANSWER_UAS = SCENARIOS / "uas_answer.xml"


def run_step(work: Path, target_port: int, rate: int, seconds: float, uac=("-sn", "uac"), local_port=None,
             extra=()) -> Step:
    """
    One SIPp uac run at C{rate} calls/s for C{seconds}: the built-in uac, or
    C{uac} (e.g. C{("-sf", scenario)}), from C{local_port} (default: any
    free port), with C{extra} SIPp arguments.
    """
    calls = max(int(rate * seconds), 10)
    step_dir = work / f"step-{target_port}-{rate}-{time.monotonic_ns()}"
    step_dir.mkdir()
    stat = step_dir / "stat.csv"
    cmd = ["sipp", *uac, f"127.0.0.1:{target_port}", "-i", "127.0.0.1", "-p", str(local_port or free_port()), *extra,
           "-m", str(calls), "-r", str(rate), "-l", str(max(rate * 4, 200)), "-d", "0", "-nostdin",
           "-timeout", f"{int(seconds * 3 + 15)}s", "-recv_timeout", "5000",
           "-trace_stat", "-stf", str(stat), "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
           "-trace_err", "-error_file", str(step_dir / "errors.log")]
    try:
        subprocess.run(cmd, cwd=step_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds * 3 + 30)
    except subprocess.TimeoutExpired:
        pass
    ok = failed = retrans = 0
    if stat.exists():
        lines = stat.read_text().splitlines()
        if len(lines) >= 2:
            row = dict(zip(lines[0].split(";"), lines[-1].split(";")))
            ok = int(row.get("SuccessfulCall(C)", 0) or 0)
            failed = int(row.get("FailedCall(C)", 0) or 0)
            retrans = int(row.get("Retransmissions(C)", 0) or 0)
    failed = max(failed, calls - ok)
    times = []
    for rtt in step_dir.glob("*_rtt.csv"):
        for line in rtt.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    times.append(float(parts[1]))
                except ValueError:
                    pass
    return Step(rate, calls, ok, failed, _percentile(times, 0.50), _percentile(times, 0.95), retrans)


def _ms(v):
    return "-" if v is None else f"{v:.0f}"


def ramp(name: str, work: Path, target_port: int, rates, seconds: float, deadline: float,
         after_step=None, pid=None, refine: int = 1, max_p95: float | None = MAX_P95_MS, step_args=None) -> Ramp:
    """
    Step the offered rate through C{rates} until a step fails, then bisect
    C{refine} times between the last pass and the first failure.
    C{after_step()} may return a string printed after each step;
    C{step_args} are L{run_step}'s keyword arguments.
    """
    step_args = step_args or {}
    result = Ramp(name)
    run_step(work, target_port, 5, 2, **step_args)  # warm-up, not counted
    if after_step:
        after_step()

    def one(rate):
        step = run_step(work, target_port, rate, seconds, **step_args)
        step.max_p95 = max_p95
        step.rss_kb = rss_kb(pid) if pid is not None else None
        extra = after_step() if after_step else ""
        print(f"  {name:10s} offered {rate:5d}/s: {step.ok}/{step.ok + step.failed} ok ({step.fraction:.2%}), "
              f"{step.failed} failed, {step.retransmissions} retrans, "
              f"rtt p50 {_ms(step.p50)} ms p95 {_ms(step.p95)} ms{extra}", flush=True)
        result.steps.append(step)
        if step.passed and (result.best is None or rate > result.best.rate):
            result.best = step
        return step.passed

    failed_at = None
    for rate in rates:
        if time.monotonic() > deadline:
            print(f"  {name}: time budget spent; stopping before {rate}/s")
            break
        if not one(rate):
            failed_at = rate
            break
    low = result.best.rate if result.best else 0
    for _ in range(refine):
        if failed_at is None or time.monotonic() > deadline:
            break
        mid = (low + failed_at) // 2
        if mid <= low or failed_at - low < max(10, low // 10):
            break
        if one(mid):
            low = mid
        else:
            failed_at = mid
    if pid is not None:
        result.rss_kb = rss_kb(pid, "VmHWM")
    return result


# --- Sippy B2BUA --------------------------------------------------------------------------

def ensure_sippy():
    """The C{b2bua} command of PyPI C{sippy}, installed with pip if missing (bench only)."""
    exe = shutil.which("b2bua")
    if exe:
        return exe
    print("installing Sippy B2BUA (pip install sippy) for the comparison ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "sippy"], check=False)
    return shutil.which("b2bua") or str(Path(sys.executable).parent / "b2bua")


@contextmanager
def sippy_b2bua(work: Path, target_port: int):
    """Run Sippy B2BUA routing every call to 127.0.0.1:C{target_port}; yields (process, port) or None."""
    exe = ensure_sippy()
    if not exe or not Path(exe).exists():
        print("  sippy: b2bua is not available; skipped")
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([exe, "--sip_address=127.0.0.1", f"--sip_port={port}",
                             f"--static_route=127.0.0.1:{target_port}", "--auth_enable=off", "--acct_enable=off",
                             "--foreground=on", f"--logfile={work / 'sippy.log'}"],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_udp_bound(port, proc=proc)
        time.sleep(0.5)
        yield proc, port
    finally:
        stop(proc)


def bench_sippy(work: Path, rates, seconds: float, deadline: float, uas_scenario: Path | None = None,
                max_p95: float | None = MAX_P95_MS) -> Ramp | None:
    """Sippy B2BUA between SIPp uac and uas, stepped like our own systems."""
    uas_port = free_port()
    uas = start_uas(work, uas_port, uas_scenario)
    try:
        with sippy_b2bua(work, uas_port) as running:
            if running is None:
                return None
            proc, port = running
            return ramp("sippy", work, port, rates, seconds, deadline, pid=proc.pid, max_p95=max_p95)
    finally:
        stop(uas)


def require_sipp():
    if not shutil.which("sipp"):
        sys.exit("sipp is not installed (apt-get install sip-tester)")
