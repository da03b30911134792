"""
GED-125 codec throughput per message type, on one core.

    python bench/ged125_codec.py [--seconds 1.0]

Prints decodes/s and encodes/s and the cost per message.  Target (issue 4):
at least 200,000 decodes per second of NEW_CALL and RUN_SCRIPT_REQ.  Never
asserts on time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ctic.icm import constants as C  # noqa: E402
from ctic.icm.codec import Codec, base, sc  # noqa: E402


def samples():
    new_call = (sc(C.NEW_CALL, 1001, 0, TrunkGroupID=1, TrunkNumber=5, ServiceID=0)
                .add(C.TAG_DialedNumber, "8005551212").add(C.TAG_ANI, "4085551234")
                .add(C.TAG_DNIS, "5551212").add(C.TAG_CallGUID, "0123456789abcdef0123456789abcdef"))
    run_script = (sc(C.RUN_SCRIPT_REQ, 1001, 1, InvokeID=7).add(C.TAG_ScriptID, "GetDigits")
                  .add(C.TAG_ScriptConfiguration, "maxdigits=4").add(C.TAG_CallVariable1, "hello")
                  .add(C.call_variable_tag(2), "world").add(C.TAG_ECC_VAR_VALUE, (1, "account-42")))
    return {
        "NEW_CALL": new_call,
        "RUN_SCRIPT_REQ": run_script,
        "RUN_SCRIPT_RESULT": sc(C.RUN_SCRIPT_RESULT, 1001, 1, InvokeID=7, ResultCode=1)
        .add(C.TAG_CED, "1234").add(C.call_variable_tag(3), "x"),
        "CONNECT": sc(C.CONNECT, 1001, 2, LabelType=1).add(C.TAG_Label, "5001"),
        "EVENT_REPORT": sc(C.EVENT_REPORT, 1001, 2, EventID=C.ANSWER),
        "HEARTBEAT_REQ": base(C.HEARTBEAT_REQ, InvokeID=9),
        "OPEN_REQ": base(C.OPEN_REQ, InvokeID=1, VersionNumber=16, IdleTimeout=120),
    }


def rate(fn, arg, seconds):
    n = 0
    batch = 2000
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn(arg)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    codec = Codec()
    print(f"{'message':<20} {'bytes':>5} {'decodes/s':>12} {'us/decode':>10} {'encodes/s':>12} {'us/encode':>10}")
    for name, msg in samples().items():
        wire = codec.encode(msg)
        d = rate(codec.decode, wire, args.seconds)
        e = rate(codec.encode, msg, args.seconds)
        print(f"{name:<20} {len(wire):>5} {d:>12,.0f} {1e6 / d:>10.2f} {e:>12,.0f} {1e6 / e:>10.2f}")
    buffer = codec.frame_buffer()
    stream = b"".join(codec.encode(m) for m in samples().values()) * 100
    frames = rate(lambda data: [codec.decode(f) for f in buffer.feed(data)], stream, args.seconds)
    print(f"framing+decode of a {len(stream)}-byte stream of {7 * 100} messages: "
          f"{frames * 700:,.0f} messages/s")
    print("target: >= 200,000 decodes/s of NEW_CALL and RUN_SCRIPT_REQ on one core")


if __name__ == "__main__":
    main()
