"""
Slowloris on SIP over TCP against a real gvp-rm (the shipped etc/rm.ini on
free ports): 1,100 connections that trickle one byte every 2 s, reconnecting
whenever they are closed, for 50 s.  40 s into it, a new TCP client's OPTIONS
must be answered 200 within a second.  The defences are the message deadline
(tcp-message-deadline) and closing the slowest connection when a cap is
reached (max-connections, max-connections-per-source).
"""

from __future__ import annotations

import selectors
import socket
import time

from tests.rm.test_rm_interop import shipped_config
from tests.support import free_port, twistd

TRICKLERS = 1100
DURATION = 50.0
PROBE_AT = 40.0
TRICKLE = b"OPTIONS sip:rm@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKslow\r\n"


def probe(port: int) -> tuple[bytes, float]:
    """One well-behaved client: connect, send OPTIONS, time the answer."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        local = s.getsockname()
        s.sendall(
            f"OPTIONS sip:rm@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:{local[1]};branch=z9hG4bKprobe{local[1]}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:rm@127.0.0.1>\r\n"
            f"Call-ID: probe-{local[1]}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and time.monotonic() - started < 1.0:
            chunk = s.recv(65535)
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - started


class Tricklers:
    """
    Non-blocking sockets that each send one byte of TRICKLE every 2 s; a
    socket the server closed is opened again at the next tick.
    """

    def __init__(self, port: int, count: int):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.socks: dict[socket.socket, int] = {}
        self.reconnects = 0
        self.to_reopen = 0
        for _ in range(count):
            self.open()

    def open(self):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.socks[s] = 0
        self.selector.register(s, selectors.EVENT_READ)

    def close(self, s):
        self.selector.unregister(s)
        del self.socks[s]
        s.close()

    def tick(self):
        """Reopen the sockets the server closed; send the next byte on every socket."""
        for _ in range(self.to_reopen):
            self.open()
        self.reconnects += self.to_reopen
        self.to_reopen = 0
        for s in list(self.socks):
            offset = self.socks[s]
            try:
                s.send(TRICKLE[offset % len(TRICKLE):][:1])
                self.socks[s] = offset + 1
            except OSError:
                self.close(s)
                self.to_reopen += 1

    def drain(self, timeout: float):
        """Read what the server sends; a closed socket is reopened."""
        for key, _ in self.selector.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(65535)
            except OSError:
                data = b""
            if not data:
                self.close(s)
                self.to_reopen += 1

    def stop(self):
        for s in list(self.socks):
            self.close(s)
        self.selector.close()


def test_slowloris_does_not_keep_a_new_tcp_client_out(tmp_path):
    rm_port = free_port()
    config = shipped_config(tmp_path, rm_port, free_port())
    with twistd("gvp-rm", "--config", str(config), ready_port=rm_port) as rm:
        tricklers = Tricklers(rm_port, TRICKLERS)
        try:
            start = time.monotonic()
            next_tick = start
            answer, elapsed = b"", None
            while time.monotonic() - start < DURATION:
                now = time.monotonic()
                if now >= next_tick:
                    tricklers.tick()
                    next_tick = now + 2.0
                if elapsed is None and now - start >= PROBE_AT:
                    answer, elapsed = probe(rm_port)
                tricklers.drain(min(0.2, max(0.0, next_tick - time.monotonic())))
        finally:
            tricklers.stop()
        log = rm.log_path.read_text()
        assert rm.poll() is None, log[-2000:]
    assert answer.startswith(b"SIP/2.0 200 "), (answer, log[-3000:])
    assert elapsed < 1.0
    assert tricklers.reconnects > 0  # the RM did close trickling connections
    assert "to make room: slow message" in log
    assert "Traceback" not in log and "Unhandled Error" not in log
