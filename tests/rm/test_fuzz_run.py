"""
A fuzz run against a real gvp-rm (the shipped etc/rm.ini on free ports, MCP
group capacity 3): 3,000 mutated datagrams over UDP and 200 mutated streams
over TCP.  The process keeps serving (a valid OPTIONS is answered), and its
log has no Traceback, "Unhandled Error" or critical line.
"""

from __future__ import annotations

import json
import socket
import time

from tests.rm.test_rm_interop import shipped_config
from tests.sip.corpus import GATEWAY_INVITE, mutations
from tests.support import free_port, twistd

DATAGRAMS = 3000
STREAMS = 200
# The outside campaign's finding: a byte in a name-addr URI that a lenient
# first parse let through (then the router reserved an MCP slot and the
# forward failed).
BAD_URIS = (b"127.0.0.1\xff:47001", b"127.0.0.1\x00:47001", b"127.0.0.1\x01:47001", b"127.0.0.\xb1:47001")


def options_answered(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        local = s.getsockname()[1]
        s.sendto(
            f"OPTIONS sip:rm@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKok\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:rm@127.0.0.1>\r\n"
            f"Call-ID: ok@fuzz\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".encode(), ("127.0.0.1", port))
        return s.recv(65535).startswith(b"SIP/2.0 200 ")


def test_fuzz_run_leaves_no_traceback_and_keeps_serving(tmp_path):
    rm_port = free_port()
    config = shipped_config(tmp_path, rm_port, free_port())
    config.write_text(config.read_text().replace("[mcp-group:mcp]\n", "[mcp-group:mcp]\nport-capacity = 3\n"))
    with twistd("gvp-rm", "--config", str(config), ready_port=rm_port) as rm:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            for i, host in enumerate(BAD_URIS):
                bad = GATEWAY_INVITE.replace(b"Call-ID: fuzz-1", b"Call-ID: bad-%d" % i)
                bad = bad.replace(b"branch=z9hG4bK-fuzz-1", b"branch=z9hG4bK-bad-%d" % i)
                udp.sendto(bad.replace(b"<sip:4155550101@127.0.0.1:47001>;tag", b"<sip:4155550101@" + host + b">;tag"),
                           ("127.0.0.1", rm_port))
            for i, data in enumerate(mutations(DATAGRAMS, seed=1)):
                udp.sendto(data, ("127.0.0.1", rm_port))
                if i % 200 == 199:
                    time.sleep(0.05)  # stay under the kernel queue; this is a fuzz run, not a flood
        for data in mutations(STREAMS, seed=2):
            with socket.create_connection(("127.0.0.1", rm_port), timeout=2) as s:
                s.sendall(data)
        assert options_answered(rm_port)
        time.sleep(0.5)
        assert rm.poll() is None
        lines = rm.log_path.read_text().splitlines()
    bad = [line for line in lines if "Traceback" in line or "Unhandled Error" in line
           or json.loads(line).get("level") == "critical"]
    assert not bad, "\n".join(bad[:5])
