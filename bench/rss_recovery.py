"""
Does gvp-rm's memory come back after abuse?  RSS of a real gvp-rm (shipped
etc/rm.ini semantics) at a warmed baseline, right after a burst of mutated
SIP datagrams (the RFC 4475 corpus and a gateway INVITE, seeded), after the
transaction timers have run out, and after many TCP connect/close cycles.

    python bench/rss_recovery.py [--datagrams 30000] [--cycles 40000] [--settle 40]

It prints figures and never asserts.  Run from the repository root.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from sipp_load import free_port, rss_kb, start_rm, stop, wait_udp_bound  # noqa: E402
from tests.sip.corpus import mutations  # noqa: E402


def options(port: int, local: int, n: int) -> bytes:
    return (f"OPTIONS sip:rm@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKw{n}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:w@127.0.0.1>;tag=1\r\nTo: <sip:rm@127.0.0.1>\r\n"
            f"Call-ID: warm-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=30000)
    parser.add_argument("--cycles", type=int, default=40000)
    parser.add_argument("--settle", type=float, default=40.0, help="seconds to wait for timers (Timer B/F: 32 s)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ctic-rss-"))
    rm_port = free_port()
    rm = start_rm(work, rm_port, free_port())
    try:
        wait_udp_bound(rm_port, proc=rm)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            local = udp.getsockname()[1]
            for n in range(2000):  # warm the process: imports, caches, the allocator
                udp.sendto(options(rm_port, local, n), ("127.0.0.1", rm_port))
                if n % 100 == 99:
                    time.sleep(0.02)
            time.sleep(2)
            base = rss_kb(rm.pid)
            print(f"baseline (warmed)              {base / 1024:8.1f} MiB")
            started = time.monotonic()
            for i, data in enumerate(mutations(args.datagrams)):
                udp.sendto(data, ("127.0.0.1", rm_port))
                if i % 200 == 199:
                    time.sleep(0.02)
            burst = rss_kb(rm.pid)
            print(f"after {args.datagrams} fuzz datagrams    {burst / 1024:8.1f} MiB"
                  f"   (+{(burst - base) / 1024:.1f}; {time.monotonic() - started:.1f} s)")
        time.sleep(args.settle)
        settled = rss_kb(rm.pid)
        print(f"after {args.settle:.0f} s (timers expired)   {settled / 1024:8.1f} MiB   (+{(settled - base) / 1024:.1f})")
        started = time.monotonic()
        for _ in range(args.cycles):
            with socket.create_connection(("127.0.0.1", rm_port), timeout=2):
                pass
        time.sleep(2)
        churn = rss_kb(rm.pid)
        print(f"after {args.cycles} TCP connect/close   {churn / 1024:8.1f} MiB   (+{(churn - base) / 1024:.1f};"
              f" {time.monotonic() - started:.1f} s)")
        print(f"peak                           {rss_kb(rm.pid, 'VmHWM') / 1024:8.1f} MiB")
    finally:
        stop(rm)


if __name__ == "__main__":
    main()
