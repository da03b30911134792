"""
Calls per second on the Genesys CTI path, behind mode, against Sippy B2BUA on
the plain path, in the same run:

    SIPp uac (from the Genesys tenant's gateway port) -> gvp-rm (etc/rm-cti.ini)
      -> ctic (etc/ctic-genesys.ini) <-> ivr-server-sim -> gvp-rm -> SIPp uas (the MCP)
    SIPp uac -> Sippy b2bua -> SIPp uas

    python bench/cti_calls.py [--seconds 3] [--rates 25,50,...] [--budget 240] [--ports 1000]

Every CTI call is a NewCall, Ringing/Established, CallInfoReq, UDataGetAll
and EndCall on IVR Server besides its five SIP hops through the RM; each
call uses its own IVR port (``--ports`` behind-mode ports, the Request-URI
user is the port number, taken in turn from a SIPp injection file).  A step
passes with >= 99.9% successful calls and a caller p95 INVITE->200 within
500 ms (bench/sipp_load.py); "refused" counts calls the CTIC could not give
to IVR Server (the RM then answers them without CTI, so SIPp counts them as
successful: read a step with refusals as a failed one).  Prints the
sustained rates and the ratio.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from sipp_load import (  # noqa: E402
    ANSWER_UAS, MAX_P95_MS, PASS, SCENARIOS, bench_sippy, free_port, ramp, require_sipp, start_uas, stop,
    wait_udp_bound,
)

ETC = ROOT / "etc"


def twistd(work: Path, name: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
         f"--logfile={work / (name + '.log')}", *args],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sim_config(work: Path, port: int, ports: int) -> Path:
    """An IVR Server simulator with C{ports} behind-mode ports that ring and answer at once."""
    lines = ["[gli_server_group_1]", f"gli-server-address = 127.0.0.1:{port}", "[ivr-server-sim]",
             "ring-delay = 0", "answer-delay = 0"]
    for n in range(1, ports + 1):
        lines += [f"[Port{n}]", f"port = {n}", "mode = behind", f"dn = {40000 + n}", f"ani = 41555{n:05d}",
                  "dnis = 8005550100", "user-data = Language=EN; Segment=Gold"]
    path = work / "ivr-server-sim.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def refused(work: Path) -> int:
    log = work / "ctic.log"
    return log.read_text(errors="replace").count("Refused CTI call") if log.exists() else 0


def bench_cti(work: Path, rates, seconds, deadline, max_p95, ports: int):
    rm, ctic, sim, mcp, gw = (free_port() for _ in range(5))
    inf = work / "ports.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in range(1, ports + 1)))
    procs = [start_uas(work, mcp, ANSWER_UAS)]
    try:
        procs.append(twistd(work, "ivr-server-sim", "ivr-server-sim", "--config", str(sim_config(work, sim, ports))))
        time.sleep(1.0)
        procs.append(twistd(work, "rm", "gvp-rm", "--config", str(ETC / "rm-cti.ini"), "--port", str(rm),
                            "--set", f"[cdr]sqlite-path={work / 'cdr.sqlite'}",
                            "--set", f"[gateway-group:genesys-gw]members=127.0.0.1:{gw}",
                            "--set", f"[ctic-group:genesys-ctic]members=127.0.0.1:{ctic}",
                            "--set", "[ctic-group:genesys-ctic]monitor-method=none",
                            "--set", f"[mcp-group:mcp]members=127.0.0.1:{mcp}"))
        ctic_proc = twistd(work, "ctic", "ctic", "--config", str(ETC / "ctic-genesys.ini"), "--port", str(ctic),
                           "--set", f"[ivr-server]server=127.0.0.1:{sim}", "--set", "[genesys]port-map=",
                           "--set", f"[genesys]resource-manager=127.0.0.1:{rm}")
        procs.append(ctic_proc)
        for port, proc in ((rm, procs[2]), (ctic, ctic_proc)):
            wait_udp_bound(port, proc=proc)
        time.sleep(1.0)  # the CTIC logs in to IVR Server
        seen = [refused(work)]

        def after_step():
            now = refused(work)
            count, seen[0] = now - seen[0], now
            return f", {count} refused by the CTIC"

        return ramp("cti-genesys", work, rm, rates, seconds, deadline, after_step=after_step, pid=ctic_proc.pid,
                    max_p95=max_p95,
                    step_args={"uac": ("-sf", str(SCENARIOS / "uac_field0.xml")), "local_port": gw,
                               "extra": ("-inf", str(inf))})
    finally:
        for proc in reversed(procs):
            stop(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of calls per step")
    parser.add_argument("--rates", default="25,50,100,150,200,250,300,400,500,600,800",
                        help="offered rates to step through (calls/s)")
    parser.add_argument("--budget", type=float, default=240.0, help="wall-clock budget for the whole run, s")
    parser.add_argument("--max-p95", type=float, default=MAX_P95_MS, help="caller p95 bound, ms (0: none)")
    parser.add_argument("--ports", type=int, default=1000, help="behind-mode IVR ports on the simulator")
    args = parser.parse_args()
    require_sipp()
    rates = [int(r) for r in args.rates.split(",")]
    max_p95 = args.max_p95 or None
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cti-bench-") as tmp:
        work = Path(tmp)
        print(f"Genesys CTI path (behind mode) vs Sippy B2BUA on the plain path, {args.seconds:g}s per step, "
              f"pass = {PASS:.1%} successful calls" + (f" and p95 <= {max_p95:g} ms" if max_p95 else ""))
        cti = bench_cti(work, rates, args.seconds, start + args.budget * 0.6, max_p95, args.ports)
        sippy = bench_sippy(work, rates, args.seconds, start + args.budget, ANSWER_UAS, max_p95)
    print()
    for r in (cti, sippy):
        b = r.best
        print(f"{r.name:12s} sustained {r.sustained:5d}/s"
              + (f", p50 {b.p50:.0f} ms, p95 {b.p95:.0f} ms" if b and b.p50 is not None else ""))
    if sippy.sustained:
        print(f"cti-genesys / sippy (plain path): {cti.sustained / sippy.sustained:.2f}x (target >= 2x)")
    print(f"(wall {time.monotonic() - start:.0f}s)")


if __name__ == "__main__":
    main()
