"""
GLI + GctiMsg codec throughput: NewCall and CallInfoResp round trips.

One round trip is the codec work of one call set-up exchange:
the client encodes NewCall into a GLI frame, the server decodes it, the
server encodes CallInfoResp into a frame, the client decodes it.  Run:

    python bench/ivrserver_codec.py [seconds]

Prints the rate (overall, median and best half-second window), the cost of
each step of a round trip and of user-data encode/decode; asserts nothing.
On a shared VM the figures move by a third from run to run: compare best
windows, or step costs, of runs made close together.
"""

from __future__ import annotations

import sys
import time
import timeit

from ctic.ivrserver import gli
from ctic.ivrserver import messages as m
from ctic.ivrserver.userdata import kvlist
from ctic.ivrserver.xmlcodec import Decoder, Encoder


def main(seconds: float = 3.0) -> None:
    client_enc, server_enc = Encoder(), Encoder(quote="'", newlines=False)
    client_dec, server_dec = Decoder(), Decoder()
    client_frames, server_frames = gli.GLIDecoder(), gli.GLIDecoder()
    new_call = m.NewCall(CallId="IAdapter1_11271805130007050004", CallControlMode="Network", Version="4.0",
                         CalledNum="3", DNIS="*3003", ANI="2225")
    info = m.CallInfoResp(CallId="IAdapter1_11271805130007050004", ANI="2225", DNIS="3003", CalledNum="3",
                          ConnId="0079020eaf04c034", TSCallId="2106", PortDN="3003", PortTrunk="0", OtherDN="3081",
                          LastEvent="EventEstablished")

    def round_trip():
        wire = gli.encode_frame(gli.DATA, client_enc.encode(new_call))
        (frame,) = server_frames.feed(wire)
        got = server_dec.decode(frame.payload)
        wire = gli.encode_frame(gli.DATA, server_enc.encode(info))
        (frame,) = client_frames.feed(wire)
        return got, client_dec.decode(frame.payload)

    assert round_trip() == (new_call, info)
    for _ in range(2000):
        round_trip()

    # Half-second windows: the median is the typical figure, the best is the
    # codec's cost with the least interference from other processes.
    windows, n, start = [], 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.5:
            for _ in range(500):
                round_trip()
            k += 500
        windows.append(k / (time.perf_counter() - t0))
        n += k
    elapsed = time.perf_counter() - start
    windows.sort()
    median, best = windows[len(windows) // 2], windows[-1]
    print(f"NewCall+CallInfoResp round trips: {n} in {elapsed:.2f} s on one core (target 30,000/s)")
    print(f"  overall {n / elapsed:,.0f}/s, median window {median:,.0f}/s, best window {best:,.0f}/s")
    print(f"  per round trip (best): {1e6 / best:.1f} us; per message (encode+frame+deframe+decode): "
          f"{1e6 / best / 2:.1f} us")

    # Per step of one round trip: each timed alone, best of several repeats
    # (the least disturbed figure), so their sum is about the best window's.
    nc_doc, info_doc = client_enc.encode(new_call), server_enc.encode(info)
    nc_wire, info_wire = gli.encode_frame(gli.DATA, nc_doc), gli.encode_frame(gli.DATA, info_doc)
    steps = (
        ("encode NewCall", lambda: client_enc.encode(new_call)),
        ("frame NewCall", lambda: gli.encode_frame(gli.DATA, nc_doc)),
        ("deframe NewCall", lambda: server_frames.feed(nc_wire)),
        ("decode NewCall", lambda: server_dec.decode(nc_doc)),
        ("encode CallInfoResp", lambda: server_enc.encode(info)),
        ("frame CallInfoResp", lambda: gli.encode_frame(gli.DATA, info_doc)),
        ("deframe CallInfoResp", lambda: client_frames.feed(info_wire)),
        ("decode CallInfoResp", lambda: client_dec.decode(info_doc)),
    )
    total = 0.0
    print("per step (best of 7 x 5,000):")
    for name, fn in steps:
        cost = _best(fn)
        total += cost
        print(f"  {name:22s} {cost:5.2f} us")
    print(f"  {'sum':22s} {total:5.2f} us ({1e6 / total:,.0f}/s)")

    udata = m.UDataSet(CallId="1", Action="Replace", RequestId="7",
                       UDataEx=kvlist({f"k{i}": f"v{i}" for i in range(10)}))
    udata_doc = client_enc.encode(udata)
    print("user data:")
    for name, fn in (
        ("encode UDataSet with 10 nodes", lambda: client_enc.encode(udata)),
        ("decode UDataSet with 10 nodes", lambda: server_dec.decode(udata_doc)),
    ):
        print(f"  {name:30s} {_best(fn):5.2f} us")


def _best(fn, number: int = 5000, repeat: int = 7) -> float:
    """Microseconds per call, best of C{repeat} runs of C{number} calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
