"""
The proxy core on real sockets (127.0.0.1 only) between two SIPp instances:
the built-in C{uac} and C{uas} scenarios over UDP and TCP (one connection,
and one per call), a lossy run (C{-lost 5} at both ends) in which every call
still completes, CANCEL before answer, and BYE from the callee's side.

The proxy runs in this process on the real reactor (trial TestCase); SIPp
runs as child processes.  Every SIPp call must succeed, and afterwards the
proxy holds no unfinished request context.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from ctic.sip.proxy import Forward, Proxy
from ctic.sip.transport import Peer, TransportLayer
from tests.support import free_port, requires_tool

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
SIPP = shutil.which("sipp") or "sipp"


class SIPpRouter:
    """
    Everything new goes to the UAS.  SIPp's built-in uac ignores Record-Route
    and sends ACK and BYE to our own address: those go to the UAS too; other
    in-dialog requests follow Route / Request-URI (loose routing).
    """

    def __init__(self, uas: Peer):
        self.uas = uas
        self.is_us = None
        self.counts = {"request": 0, "ack": 0}

    def route_request(self, request, ctx):
        self.counts["request"] += 1
        if not ctx.in_dialog or self.is_us(request.uri):
            return Forward(peer=self.uas)
        return None

    def on_ack(self, ack):
        self.counts["ack"] += 1
        return self.uas if self.is_us(ack.uri) else None


class _Child(protocol.ProcessProtocol):
    """A SIPp we started and stop ourselves, by its own process transport."""

    def __init__(self):
        self.ended = defer.Deferred()
        self.output = b""

    def outReceived(self, data):
        self.output = (self.output + data)[-4000:]

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


def _sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@requires_tool("sipp")
class ProxyBetweenSIPp(unittest.TestCase):
    timeout = 90

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="ctic-proxy-interop-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start_proxy(self, transport: str, uas_port: int):
        self.layer = TransportLayer(reactor)
        port = free_port()
        if transport == "UDP":
            self.layer.listen_udp(port, "127.0.0.1")
        else:
            self.layer.listen_udp(port, "127.0.0.1")
            self.layer.listen_tcp(port, "127.0.0.1")
        self.router = SIPpRouter(Peer(transport, "127.0.0.1", uas_port))
        self.proxy = Proxy(reactor, self.layer, self.router)
        self.router.is_us = self.proxy.is_us
        return port

    @defer.inlineCallbacks
    def stop_proxy(self):
        unfinished = [(ctx.call_id, ctx.client and ctx.client.state) for ctx in self.proxy.contexts.values()
                      if not ctx.finished]
        # Completed transactions still wait out Timers D/I/J/K/L/M: end them
        # now so the reactor is clean for the next test.
        for txn in list(self.proxy.txns.client.values()) + list(self.proxy.txns.server.values()):
            txn.terminate()
        for ctx in list(self.proxy.contexts.values()):
            if ctx.timer_c is not None:
                ctx.timer_c.cancel()
        yield self.layer.stop()
        yield _sleep(0.1)  # let closed TCP connections report connectionLost
        # No call may be left half done.
        self.assertEqual(unfinished[:5], [])

    def spawn_uas(self, scenario, port, transport, extra=()):
        child = _Child()
        args = [SIPP, *scenario, "-i", "127.0.0.1", "-p", str(port), "-t", transport,
                "-nostdin", "-l", "1000", "-max_socket", "1000", *extra]
        proc = reactor.spawnProcess(child, SIPP, args, env=dict(os.environ), path=str(self.tmp))
        child.proc = proc
        return child

    @defer.inlineCallbacks
    def stop_uas(self, child):
        if child.ended.called:
            return
        child.proc.signalProcess("TERM")
        timeout = reactor.callLater(5, lambda: child.ended.called or child.proc.signalProcess("KILL"))
        yield child.ended
        if timeout.active():
            timeout.cancel()

    @defer.inlineCallbacks
    def run_uac(self, scenario, proxy_port, transport, calls, rate, extra=(), timeout=30):
        stat = self.tmp / f"uac-{id(scenario)}-{transport}.csv"
        args = [*scenario, f"127.0.0.1:{proxy_port}", "-i", "127.0.0.1", "-p", str(free_port()),
                "-t", transport, "-m", str(calls), "-r", str(rate), "-l", "1000", "-d", "0", "-max_socket", "1000",
                "-nostdin", "-timeout", f"{timeout}s", "-timeout_error",
                "-trace_stat", "-stf", str(stat), "-fd", "1", *extra]
        out, err, code = yield getProcessOutputAndValue(SIPP, args, env=dict(os.environ), path=str(self.tmp))
        rows = list(csv.DictReader(stat.read_text().splitlines(), delimiter=";")) if stat.exists() else []
        return code, rows[-1] if rows else {}, (out + err)[-3000:].decode(errors="replace")

    @defer.inlineCallbacks
    def call_run(self, uac, uas, transport="UDP", mode="u1", calls=300, rate=150, lost=None, timeout=30):
        uas_port = free_port()
        proxy_port = self.start_proxy(transport, uas_port)
        extra = ("-lost", str(lost)) if lost else ()
        uas_child = self.spawn_uas(uas, uas_port, mode, extra)
        try:
            yield _sleep(0.5)  # SIPp binds its port
            code, last, output = yield self.run_uac(uac, proxy_port, mode, calls, rate, extra, timeout)
        finally:
            yield self.stop_uas(uas_child)
            yield self.stop_proxy()
        detail = f"sipp exit {code}; stats {last}; output:\n{output}\nuas:\n{uas_child.output[-1500:]!r}"
        self.assertEqual(int(last.get("TotalCallCreated", -1)), calls, detail)
        self.assertEqual(int(last.get("SuccessfulCall(C)", -1)), calls, detail)
        self.assertEqual(int(last.get("FailedCall(C)", -1)), 0, detail)
        self.assertEqual(code, 0, detail)

    # --- the built-in scenarios, caller hangs up ---------------------------------------

    @defer.inlineCallbacks
    def test_builtin_uac_uas_over_udp(self):
        yield self.call_run(("-sn", "uac"), ("-sn", "uas"), "UDP", "u1", calls=500, rate=250)
        self.assertEqual(self.router.counts["ack"], 500)

    def test_builtin_uac_uas_over_tcp_one_connection(self):
        return self.call_run(("-sn", "uac"), ("-sn", "uas"), "TCP", "t1", calls=300, rate=150)

    def test_builtin_uac_uas_over_tcp_connection_per_call(self):
        return self.call_run(("-sn", "uac"), ("-sn", "uas"), "TCP", "tn", calls=200, rate=100)

    def test_lossy_udp_every_call_completes(self):
        # 5 % of messages lost at each SIPp end: retransmissions (Timers A and
        # E, SIPp's own) and absorption must still complete every call.  The
        # UAS is the built-in one without its 180 (see uas_lossy.xml for why).
        return self.call_run(("-sn", "uac"), ("-sf", str(SCENARIOS / "uas_lossy.xml")), "UDP", "u1",
                             calls=200, rate=20, lost=5, timeout=45)

    # --- CANCEL before answer, BYE from the callee ----------------------------------------

    def test_cancel_before_answer(self):
        return self.call_run(("-sf", str(SCENARIOS / "cancel_uac.xml")), ("-sf", str(SCENARIOS / "cancel_uas.xml")),
                             "UDP", "u1", calls=100, rate=100)

    def test_cancel_before_answer_over_tcp(self):
        return self.call_run(("-sf", str(SCENARIOS / "cancel_uac.xml")), ("-sf", str(SCENARIOS / "cancel_uas.xml")),
                             "TCP", "t1", calls=100, rate=100)

    def test_bye_from_the_callee(self):
        return self.call_run(("-sf", str(SCENARIOS / "bye_uac.xml")), ("-sf", str(SCENARIOS / "bye_uas.xml")),
                             "UDP", "u1", calls=100, rate=100)
