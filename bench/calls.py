"""
End-to-end calls per second: SIPp uac -> system -> SIPp uas, for ctic's
proxy core (static router), ctic's B2BUA core (static call logic) and Sippy
B2BUA, with the same stepped SIPp load.

    python bench/calls.py [--seconds 3] [--rates 100,200,...] [--budget 300]
                          [--systems proxy,b2bua,sippy] [--profile b2bua --profile-rate 300]

Each system gets a share of the wall-clock budget; its offered rate steps up
until fewer than 99.9% of a step's calls succeed (see bench/sipp_load.py).
Printed per system: sustained rate, failed calls at that rate, INVITE->200
response time p50/p95 at the caller (SIPp -trace_rtt, 1 ms resolution), RSS
of the system under test after that step and its peak over the run; then our
rate over Sippy's.  A step passes with >= 99.9% successful calls and (ours,
--max-p95) a caller p95 within 500 ms: past T1 the caller retransmits, i.e.
the system is queueing rather than keeping up.  ctic runs
over UDP in its own process (``--serve``), with the GC tuning every role
uses.  ``--profile SYSTEM`` instead runs one step at ``--profile-rate`` with
cProfile in that process and prints the top costs.  Asserts nothing.
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
    MAX_P95_MS, PASS, ANSWER_UAS, bench_sippy, free_port, ramp, require_sipp, run_step, start_uas, stop, wait_udp_bound,
)


# --- the system under test, as its own process -------------------------------------------------

class StaticRouter:
    """
    Proxy router: every request, and every ACK, to the one target.  SIPp's
    built-in uac and uas ignore Record-Route and Contact, so in-dialog
    requests come back addressed to us and cannot be routed by Request-URI.
    """

    def __init__(self, peer):
        from ctic.sip.proxy import Forward

        self.peer = peer
        self.forward = Forward(peer=peer)

    def route_request(self, request, ctx):
        return self.forward

    def on_ack(self, ack):
        return self.peer


class StaticLogic:
    """B2BUA call logic: connect every call to the one target."""

    def __init__(self, uri):
        self.uri = uri

    def new_call(self, call):
        call.connect(self.uri)


def serve(kind: str, port: int, target: int, profile: str | None) -> None:
    import signal

    from twisted.internet import reactor
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner
    from twisted.logger import textFileLogObserver

    from ctic.service import tune_gc
    from ctic.sip.b2bua import B2BUA
    from ctic.sip.proxy import Proxy
    from ctic.sip.transport import Peer, TransportLayer

    log_file = open(Path(os.environ.get("CTIC_BENCH_LOG", os.devnull)), "a")
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(
        textFileLogObserver(log_file), [LogLevelFilterPredicate(LogLevel.warn)])], redirectStandardIO=False)
    layer = TransportLayer(reactor, None)
    layer.listen_udp(port, "127.0.0.1")
    layer.listen_tcp(port, "127.0.0.1")
    if kind == "proxy":
        Proxy(reactor, layer, StaticRouter(Peer("UDP", "127.0.0.1", target)))
    else:
        B2BUA(reactor, layer, StaticLogic(f"sip:service@127.0.0.1:{target}"))
    tune_gc()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.run(installSignalHandlers=False)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)


def start_sut(work: Path, kind: str, target: int, profile: str | None = None):
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, "--port", str(port),
           "--target", str(target)]
    if profile:
        cmd += ["--profile-out", profile]
    env = dict(os.environ, PYTHONPATH=str(ROOT), CTIC_BENCH_LOG=str(work / f"{kind}.log"))
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_udp_bound(port, proc=proc)
    time.sleep(0.3)
    return proc, port


def bench_ctic(kind, work, rates, seconds, deadline, max_p95):
    uas_port = free_port()
    uas = start_uas(work, uas_port, ANSWER_UAS)
    proc = None
    try:
        proc, port = start_sut(work, kind, uas_port)
        return ramp(f"ctic-{kind}", work, port, rates, seconds, deadline, pid=proc.pid, max_p95=max_p95)
    finally:
        stop(proc)
        stop(uas)


def profile_ctic(kind, work, rate, seconds):
    import pstats

    uas_port = free_port()
    uas = start_uas(work, uas_port, ANSWER_UAS)
    out = str(work / f"{kind}.prof")
    proc = None
    try:
        proc, port = start_sut(work, kind, uas_port, profile=out)
        step = run_step(work, port, rate, seconds)
        print(f"ctic-{kind} under cProfile at {rate}/s: {step.ok}/{step.ok + step.failed} ok, "
              f"p50 {step.p50} ms, p95 {step.p95} ms")
    finally:
        stop(proc)
        stop(uas)
    stats = pstats.Stats(out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(20)


def _ms(v):
    return "-" if v is None else f"{v:.0f} ms"


def report(results):
    print()
    print(f"{'system':14s} {'sustained':>10s} {'failed':>7s} {'p50':>7s} {'p95':>7s} {'RSS there':>10s} {'peak RSS':>9s}")
    for r in results:
        if r is None:
            continue
        b = r.best
        peak = f"{r.rss_kb / 1024:.0f} MiB" if r.rss_kb else "-"
        there = f"{b.rss_kb / 1024:.0f} MiB" if b and b.rss_kb else "-"
        print(f"{r.name:14s} {r.sustained:>8d}/s {b.failed if b else '-':>7} {_ms(b.p50 if b else None):>7s} "
              f"{_ms(b.p95 if b else None):>7s} {there:>10s} {peak:>9s}")
    by = {r.name: r for r in results if r is not None}
    sippy = by.get("sippy")
    if sippy and sippy.sustained:
        for name in ("ctic-b2bua", "ctic-proxy"):
            if name in by:
                print(f"{name} / sippy: {by[name].sustained / sippy.sustained:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of calls per step")
    parser.add_argument("--rates", default="50,100,200,300,400,500,600,700,800,1000,1200,1500,2000",
                        help="offered rates to step through (calls/s)")
    parser.add_argument("--budget", type=float, default=300.0, help="wall-clock budget for the whole run, s")
    parser.add_argument("--max-p95", type=float, default=MAX_P95_MS,
                        help="a step also fails above this caller p95 INVITE->200 time, ms (0: no bound)")
    parser.add_argument("--systems", default="proxy,b2bua,sippy", help="which systems to measure")
    parser.add_argument("--profile", choices=("proxy", "b2bua"), help="profile one ctic core instead")
    parser.add_argument("--profile-rate", type=int, default=300)
    # internal: run a ctic core as the system under test
    parser.add_argument("--serve", choices=("proxy", "b2bua"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.target, args.profile_out)
        return
    require_sipp()
    rates = [int(r) for r in args.rates.split(",")]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="calls-bench-") as tmp:
        work = Path(tmp)
        if args.profile:
            profile_ctic(args.profile, work, args.profile_rate, args.seconds)
            return
        systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        max_p95 = args.max_p95 or None
        print(f"SIPp uac -> system -> SIPp uas over UDP, {args.seconds:g}s per step, "
              f"pass = {PASS:.1%} successful calls" + (f" and p95 <= {max_p95:g} ms" if max_p95 else ""))
        results = []
        for i, system in enumerate(systems):
            share = start + args.budget * (i + 1) / len(systems)
            if system == "sippy":
                results.append(bench_sippy(work, rates, args.seconds, share, ANSWER_UAS, max_p95))
            else:
                results.append(bench_ctic(system, work, rates, args.seconds, share, max_p95))
    report(results)
    print(f"(wall {time.monotonic() - start:.0f}s)")


if __name__ == "__main__":
    main()
