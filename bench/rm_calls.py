"""
Calls per second through the RM's non-CTI path, with CDRs on, side by side
with Sippy B2BUA.

    python bench/rm_calls.py [--seconds 4] [--rates 50,100,200,...] [--budget 240]

For each system: SIPp uac (gateway) -> system -> SIPp uas (MCP / static
route).  The offered rate steps up; at each step SIPp places rate*seconds
calls; a step passes when >= 99.9% of them succeed and the callers' p95
response time is at most 500 ms (as in bench/calls.py).  The sustained rate
is the highest passing step.  Both systems route to the same callee,
bench/scenarios/uas_answer.xml (SIPp's uas without the 180: Sippy relays a
180 after the 200 at times, which SIPp's uac counts as a failed call).  ctic's RM runs the shipped etc/rm.ini semantics
(gateway group 127.0.0.1 any port, use-cti=0, one MCP) on free ports with the
SQLite CDR sink; the CDR rows are counted after each step.  Sippy B2BUA
(PyPI ``sippy``) is installed with pip if missing; it is a bench-only
dependency.  Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sipp_load import ANSWER_UAS, PASS, bench_sippy, free_port, ramp, require_sipp, start_rm, start_uas, stop, wait_udp_bound  # noqa: E402


def bench_ctic(work, rates, seconds, deadline):
    rm_port, mcp_port = free_port(), free_port()
    db = work / "var" / "cdr.sqlite"
    uas = start_uas(work, mcp_port, ANSWER_UAS)
    rm = start_rm(work, rm_port, mcp_port)
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
        return ramp("ctic", work, rm_port, rates, seconds, deadline, cdr_rows, pid=rm.pid)
    finally:
        stop(rm)
        stop(uas)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of calls per step")
    parser.add_argument("--rates", default="25,50,100,150,200,250,300,400,500,600,800,1000",
                        help="offered rates to step through (calls/s)")
    parser.add_argument("--budget", type=float, default=240.0, help="wall-clock budget for the whole run, s")
    args = parser.parse_args()
    require_sipp()
    rates = [int(r) for r in args.rates.split(",")]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rm-bench-") as tmp:
        work = Path(tmp)
        print(f"non-CTI call path, {args.seconds:g}s per step, pass = {PASS:.1%} successful calls")
        half = start + args.budget / 2
        ctic = bench_ctic(work, rates, args.seconds, half)
        sippy = bench_sippy(work, rates, args.seconds, start + args.budget, ANSWER_UAS)
    print()
    print(f"ctic gvp-rm (CDRs to SQLite): sustained {ctic.sustained} calls/s")
    if sippy is not None:
        print(f"Sippy B2BUA:                  sustained {sippy.sustained} calls/s")
        if sippy.sustained:
            print(f"ratio ctic / sippy: {ctic.sustained / sippy.sustained:.2f}")
    print(f"(wall {time.monotonic() - start:.0f}s)")


if __name__ == "__main__":
    main()
