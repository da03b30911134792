"""
Wait until a SIP server answers OPTIONS over UDP with a final response:
``python3 .ci/options_ping.py HOST PORT TIMEOUT [PID]``.  Exit 0 on an
answer, 1 on time-out or when process PID (the server) has exited.  Standard library only (it runs before ctic is installed).
"""

import os
import socket
import sys
import time
import uuid


def options(host: str, port: int, local: tuple) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:ci@{local[0]}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@ci\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def alive(pid: str | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return True


def main(host: str, port: str, timeout: str, pid: str | None = None) -> int:
    deadline = time.monotonic() + float(timeout)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            if not alive(pid):
                print(f"ci: the server (pid {pid}) exited before answering OPTIONS")
                return 1
            s.sendto(options(host, int(port), s.getsockname()), (host, int(port)))
            try:
                answer = s.recv(65535)
            except OSError:
                time.sleep(0.5)
                continue
            status = answer.split(b"\r\n", 1)[0].decode("latin-1")
            if status.startswith("SIP/2.0 ") and not status.startswith("SIP/2.0 1"):
                print(f"ci: {host}:{port} answered OPTIONS: {status}")
                return 0
    print(f"ci: {host}:{port} did not answer OPTIONS within {timeout} s")
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
