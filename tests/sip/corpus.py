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
    """
    Every message of the corpus.  A missing or incomplete corpus is an error,
    never a shorter parameter list: every message this module gives a
    verdict must be there.
    """
    names = sorted(p.stem for p in RFC4475.glob("*.dat"))
    missing = sorted(set(VALID + SEMANTIC + INVALID) - set(names))
    if missing:
        raise FileNotFoundError(f"RFC 4475 corpus in {RFC4475} lacks {missing}")
    return names


# A gateway's INVITE as the RM sees it (shipped etc/rm.ini semantics).
GATEWAY_INVITE = (
    b"INVITE sip:8005550100@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:47001;branch=z9hG4bK-fuzz-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Fuzz\" <sip:4155550101@127.0.0.1:47001>;tag=f1\r\n"
    b"To: <sip:8005550100@127.0.0.1:5060>\r\n"
    b"Call-ID: fuzz-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:4155550101@127.0.0.1:47001>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def mutations(count: int, seed: int = 4475):
    """
    C{count} seeded byte mutations of the corpus and of L{GATEWAY_INVITE}:
    bit flips, NUL/control/0xFF bytes, truncations, duplicated spans, each
    with a fresh branch and Call-ID so no two are retransmissions.  Used by
    the fuzz-run test and bench/rss_recovery.py.
    """
    import random

    rng = random.Random(seed)
    seeds = [load(n) for n in VALID + SEMANTIC + INVALID] + [GATEWAY_INVITE] * 20
    for i in range(count):
        data = bytearray(rng.choice(seeds))
        data = bytearray(bytes(data).replace(b"z9hG4bK", b"z9hG4bK%dx" % i, 1).replace(b"Call-ID: ", b"Call-ID: %d" % i, 1))
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(5)
            at = rng.randrange(len(data))
            if kind == 0:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                data[at] = rng.choice((0, 1, 0x1B, 0x7F, 0xFF, 0x80))
            elif kind == 2:
                del data[at:]
                if not data:
                    data = bytearray(b"\r\n")
            elif kind == 3:
                end = min(len(data), at + rng.randint(1, 64))
                data[at:at] = data[at:end] * rng.randint(1, 8)
            else:
                data.insert(at, rng.randrange(256))
        yield bytes(data[:65000])
