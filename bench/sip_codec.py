"""
SIP codec throughput: parse and serialise a typical GVP INVITE (SDP, GVP
headers, R-URI parameters) and a 200 OK; parse + read every hot header field
(what a proxy does); and twisted.protocols.sip's parser on the same INVITE
for scale.  Prints messages per second, best of several repeats, for the
parser in use (the C fast path ctic.sip._speedups when built) and, for the
parse cases, for the pure-Python path too.

    python bench/sip_codec.py [--repeats 7] [--number 20000]
"""

from __future__ import annotations

import argparse
import timeit

from ctic.sip import parser
from ctic.sip.parser import parse_datagram

INVITE = (
    "INVITE sip:8005551212@mcp1.example.com:5070;gvp-tenant-id=Environment;voicexml=http://apps.example.com/ivr.vxml;"
    "ccxml=false;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-524287-1---a5bc1e7a6b0c0f3d;rport\r\n"
    "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhds;received=10.0.0.2\r\n"
    "Max-Forwards: 69\r\n"
    "Record-Route: <sip:10.0.0.5:5060;lr>\r\n"
    "Contact: <sip:4085551234@10.0.0.2:5060;transport=udp>\r\n"
    'To: "IVR" <sip:8005551212@gvp.example.com>\r\n'
    'From: "Caller" <sip:4085551234@10.0.0.2:5060>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710@10.0.0.2\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n"
    "Supported: timer, replaces\r\n"
    "User-Agent: Cisco-SIPGateway/IOS-15.x\r\n"
    "X-Genesys-GVP-Session-ID: 7A0B6C3D-1E2F-4A5B-8C9D-0E1F2A3B4C5D;gvp.rm.datanodes=1;gvp.rm.tenant-id=1\r\n"
    "X-Genesys-CallUUID: 01ABCDEF23456789\r\n"
    "Session-Expires: 1800\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n"
)
SDP = (
    "v=0\r\no=CiscoSystemsSIP-GW-UserAgent 5612 8142 IN IP4 10.0.0.2\r\ns=SIP Call\r\n"
    "c=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 16384 RTP/AVP 0 8 101\r\nc=IN IP4 10.0.0.2\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE_BYTES = (INVITE.format(length=len(SDP)) + SDP).encode()
OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-524287-1---a5bc1e7a6b0c0f3d;rport=5060;received=10.0.0.5\r\n"
    "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhds;received=10.0.0.2\r\n"
    "Record-Route: <sip:10.0.0.5:5060;lr>\r\n"
    'To: "IVR" <sip:8005551212@gvp.example.com>;tag=a6c85cf\r\n'
    'From: "Caller" <sip:4085551234@10.0.0.2:5060>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710@10.0.0.2\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:mcp@10.0.0.9:5070>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n"
).format(length=len(SDP)).encode() + SDP.encode()


def read_hot_fields(msg):
    """Everything a proxy reads on a request: the structured hot headers, URIs included."""
    uri = msg.uri
    _ = uri.host, uri.user, uri.params
    for v in msg.via:
        _ = v.branch, v.host, v.port, v.received, v.rport
    _ = msg.from_.tag, msg.from_.uri.host, msg.to.tag, msg.to.uri.user
    _ = msg.call_id, msg.cseq.seq, msg.cseq.method, msg.max_forwards
    for na in msg.route + msg.record_route + msg.contact:
        _ = na.uri.host, na.uri.params
    return msg


def rate(fn, repeats, number):
    best = min(timeit.repeat(fn, repeat=repeats, number=number))
    return number / best, best / number * 1e6


def twisted_parse():
    from twisted.protocols import sip

    def parse():
        parser = sip.MessagesParser(lambda m: None)
        parser.dataReceived(INVITE_BYTES)
        parser.dataDone()

    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--number", type=int, default=20000)
    args = ap.parse_args()
    invite = parse_datagram(INVITE_BYTES)
    ok = parse_datagram(OK)
    cases = [
        ("INVITE parse", lambda: parse_datagram(INVITE_BYTES)),
        ("INVITE parse + read hot fields", lambda: read_hot_fields(parse_datagram(INVITE_BYTES))),
        ("INVITE serialise", lambda: bytes(invite)),
        ("200 OK parse", lambda: parse_datagram(OK)),
        ("200 OK serialise", lambda: bytes(ok)),
        ("twisted.protocols.sip INVITE parse", twisted_parse()),
    ]
    accel = parser._accel
    print(f"parser: {parser.IMPLEMENTATION}"
          + ("" if accel else " (ctic.sip._speedups not built, or CTIC_PURE_PYTHON set)"))
    if accel is not None and accel(INVITE_BYTES, 65535, 128, False) is None:
        print("warning: the C fast path declines this INVITE; figures are the Python path's")
    print(f"INVITE {len(INVITE_BYTES)} bytes, 200 OK {len(OK)} bytes; best of {args.repeats} x {args.number}")
    for name, fn in cases:
        number = args.number // 4 if name.startswith("twisted") else args.number
        per_s, us = rate(fn, args.repeats, number)
        print(f"{name:<46} {per_s:>10,.0f} msg/s {us:>8.2f} us/msg")
    if accel is not None:
        parser._accel = None  # the pure-Python path, for comparison
        try:
            for name, fn in cases:
                if "parse" in name and not name.startswith("twisted"):
                    per_s, us = rate(fn, args.repeats, args.number // 4)
                    print(f"{name + ' (pure Python)':<46} {per_s:>10,.0f} msg/s {us:>8.2f} us/msg")
        finally:
            parser._accel = accel

if __name__ == "__main__":
    main()
