"""
Calls per second through the RM's non-CTI path, with CDRs on, side by side
with Sippy B2BUA.

    python bench/rm_calls.py [--seconds 4] [--rates 50,100,200,...] [--budget 240]

For each system: SIPp uac (gateway) -> system -> SIPp uas (MCP / static
route).  The offered rate steps up; at each step SIPp places rate*seconds
calls; a step passes when >= 99.9% of them succeed.  The sustained rate is
the highest passing step.  ctic's RM runs the shipped etc/rm.ini semantics
(gateway group 127.0.0.1 any port, use-cti=0, one MCP) on free ports with the
SQLite CDR sink; the CDR rows are counted after each step.  Sippy B2BUA
(PyPI ``sippy``) is installed with pip if missing; it is a bench-only
dependency.  Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASS = 0.999


def free_port() -> int:
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


def run_step(work: Path, target_port: int, rate: int, seconds: float) -> tuple[int, int]:
    """One SIPp uac run; returns (successful, failed) calls."""
    calls = max(int(rate * seconds), 10)
    gw_port = free_port()
    stat = work / f"uac-{target_port}-{rate}.csv"
    cmd = ["sipp", "-sn", "uac", f"127.0.0.1:{target_port}", "-i", "127.0.0.1", "-p", str(gw_port),
           "-m", str(calls), "-r", str(rate), "-l", str(max(rate * 4, 200)), "-nostdin",
           "-timeout", f"{int(seconds * 3 + 15)}s", "-recv_timeout", "5000",
           "-trace_stat", "-stf", str(stat), "-fd", "1"]
    subprocess.run(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds * 3 + 30)
    ok = failed = 0
    if stat.exists():
        lines = stat.read_text().splitlines()
        if len(lines) >= 2:
            head = lines[0].split(";")
            last = lines[-1].split(";")
            row = dict(zip(head, last))
            ok = int(row.get("SuccessfulCall(C)", 0) or 0)
            failed = int(row.get("FailedCall(C)", 0) or 0)
    failed = max(failed, calls - ok)
    return ok, failed


def ramp(name, work, target_port, rates, seconds, deadline, after_step=None):
    # Warm-up (not counted): a few calls so start-up costs do not fail the first step.
    run_step(work, target_port, 5, 2)
    if after_step:
        after_step()
    best = 0
    results = []
    for rate in rates:
        if time.monotonic() > deadline:
            print(f"  {name}: time budget spent; stopping at {rate}/s")
            break
        ok, failed = run_step(work, target_port, rate, seconds)
        total = ok + failed
        frac = ok / total if total else 0.0
        extra = after_step() if after_step else ""
        print(f"  {name:6s} offered {rate:5d} calls/s: {ok}/{total} ok ({frac:.2%}){extra}", flush=True)
        results.append((rate, frac))
        if frac >= PASS:
            best = rate
        else:
            break
    return best


def bench_ctic(work, rates, seconds, deadline):
    rm_port, mcp_port = free_port(), free_port()
    db = work / "var" / "cdr.sqlite"
    text = (ROOT / "etc" / "rm.ini").read_text()
    text = text.replace("udp-port = 5060", f"udp-port = {rm_port}").replace("tcp-port = 5060", f"tcp-port = {rm_port}")
    text = text.replace("127.0.0.1:5090", f"127.0.0.1:{mcp_port}")
    text = text.replace("sqlite-path = var/rm-cdr.sqlite", f"sqlite-path = {db}")
    config = work / "rm.ini"
    config.write_text(text)
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(mcp_port), "-nostdin"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rm = subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                           "--pidfile=", "--logfile=" + str(work / "rm.log"), "gvp-rm", "--config", str(config)],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = [0]

    def cdr_rows():
        time.sleep(0.5)
        try:
            con = sqlite3.connect(str(db))
            n = con.execute("SELECT COUNT(*) FROM cdr").fetchone()[0]
            con.close()
        except sqlite3.Error:
            n = 0
        new, seen[0] = n - seen[0], n
        return f", {new} CDR rows"

    try:
        wait_udp_bound(rm_port, proc=rm)
        time.sleep(0.5)
        return ramp("ctic", work, rm_port, rates, seconds, deadline, cdr_rows)
    finally:
        stop(rm)
        stop(uas)


def ensure_sippy():
    exe = shutil.which("b2bua")
    if exe:
        return exe
    print("installing Sippy B2BUA (pip install sippy) for the comparison ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "sippy"], check=False)
    return shutil.which("b2bua") or str(Path(sys.executable).parent / "b2bua")


def bench_sippy(work, rates, seconds, deadline):
    exe = ensure_sippy()
    if not exe or not Path(exe).exists():
        print("  sippy: b2bua is not available; skipped")
        return None
    port, uas_port = free_port(), free_port()
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-nostdin"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b2b = subprocess.Popen([exe, "--sip_address=127.0.0.1", f"--sip_port={port}",
                            f"--static_route=127.0.0.1:{uas_port}", "--auth_enable=off", "--acct_enable=off",
                            "--foreground=on", f"--logfile={work / 'sippy.log'}"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_udp_bound(port, proc=b2b)
        time.sleep(0.5)
        return ramp("sippy", work, port, rates, seconds, deadline)
    finally:
        stop(b2b)
        stop(uas)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of calls per step")
    parser.add_argument("--rates", default="25,50,100,150,200,250,300,400,500,600,800,1000",
                        help="offered rates to step through (calls/s)")
    parser.add_argument("--budget", type=float, default=240.0, help="wall-clock budget for the whole run, s")
    args = parser.parse_args()
    if not shutil.which("sipp"):
        sys.exit("sipp is not installed (apt-get install sip-tester)")
    rates = [int(r) for r in args.rates.split(",")]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rm-bench-") as tmp:
        work = Path(tmp)
        print(f"non-CTI call path, {args.seconds:g}s per step, pass = {PASS:.1%} successful calls")
        half = start + args.budget / 2
        ctic = bench_ctic(work, rates, args.seconds, half)
        sippy = bench_sippy(work, rates, args.seconds, start + args.budget)
    print()
    print(f"ctic gvp-rm (CDRs to SQLite): sustained {ctic} calls/s")
    if sippy is not None:
        print(f"Sippy B2BUA:                  sustained {sippy} calls/s")
        if sippy:
            print(f"ratio ctic / sippy: {ctic / sippy:.2f}")
    print(f"(wall {time.monotonic() - start:.0f}s)")


if __name__ == "__main__":
    main()
