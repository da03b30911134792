"""
The RFC 4475 torture messages and their verdicts (from the corpus README),
shared by the codec, property and interop tests.
"""

from __future__ import annotations

from tests.support import RFC4475

# RFC 4475 §3.1.1 (valid), §3.2-§3.4 (well-formed, handled by the application).
VALID = (
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq",
    "semiuri", "transports", "mpart01", "unreason", "noreason",
)
SEMANTIC = (
    "badbranch", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01", "bcast",
    "zeromf", "cparam01", "cparam02", "regescrt", "sdp01", "inv2543",
)
# RFC 4475 §3.1.2, plus the application-level invalid ones (§3.3.1, §3.3.8,
# §3.3.9) and php-sip's extra test.dat.
INVALID = (
    "badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri", "lwsruri",
    "lwsstart", "trws", "escruri", "baddate", "regbadct", "badaspec", "baddn", "badvers",
    "mismatch01", "mismatch02", "bigcode", "insuf", "multi01", "mcl01", "test",
)
RESPONSES = ("unreason", "noreason", "bcast", "scalarlg", "bigcode")

# Invalid requests whose raw headers cannot build a full answer.
INCOMPLETE = {"insuf": ("via", "cseq"), "test": ("from", "to", "call-id")}

# What a stateless endpoint answers each well-formed request with
# (ctic.sip.responder): OPTIONS 200, an unknown scheme 416, an
# unsupported Require 420, anything else 501.
ANSWER = {
    "wsinv": 501, "intmeth": 501, "esc01": 501, "escnull": 501, "esc02": 501,
    "lwsdisp": 200, "longreq": 501, "dblreq": 501, "semiuri": 200, "transports": 200,
    "mpart01": 501, "badbranch": 200, "unkscm": 416, "novelsc": 416, "unksm2": 501,
    "bext01": 420, "invut": 501, "regaut01": 501, "zeromf": 200, "cparam01": 501,
    "cparam02": 501, "regescrt": 501, "sdp01": 501, "inv2543": 501,
}


def load(name: str) -> bytes:
    return (RFC4475 / f"{name}.dat").read_bytes()


def every_name():
    return sorted(p.stem for p in RFC4475.glob("*.dat"))
