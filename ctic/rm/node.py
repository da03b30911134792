# -*- test-case-name: tests.rm.test_rm_interop -*-
"""
The Resource Manager as a Twisted service: SIP transports, the proxy core
with the RM router, OPTIONS health monitoring and the CDR sink.  The reactor
is passed in (only C{tap.makeService} imports the global one).
"""

from __future__ import annotations

import itertools
import os

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from ctic.rm.cdr import MemorySink, SQLiteSink
from ctic.rm.resources import HealthMonitor, options_request
from ctic.rm.router import RMRouter
from ctic.rm.session import SessionTable
from ctic.sip.proxy import Proxy
from ctic.sip.service import make_transport
from ctic.sip.transaction import Timers

log = Logger(namespace="ctic.rm")


def make_sink(reactor, cdr_values, base_dir="."):
    if cdr_values["sink"] == "none":
        return MemorySink(keep=False)
    path = cdr_values["sqlite-path"]
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return SQLiteSink(reactor, path, batch_size=cdr_values["batch-size"])


class ResourceManagerService(service.MultiService):
    """Everything one RM node runs."""

    name = "gvp-rm"

    def __init__(self, reactor, config, model, sink=None):
        super().__init__()
        self.reactor = reactor
        self.config = config
        self.model = model
        sip = config["sip"]
        self.sink = sink if sink is not None else make_sink(reactor, config["cdr"])
        self.layer, transport_service = make_transport(reactor, sip, None, config.path)
        transport_service.setServiceParent(self)
        self.sessions = SessionTable(reactor, self.sink, model.session_timeout)
        self.router = RMRouter(reactor, model, self.sessions)
        self.proxy = Proxy(reactor, self.layer, self.router, timers=Timers(sip["t1"], sip["t2"], sip["t4"]),
                           name="ctic-gvp-rm")
        self.proxy.txns.max_transactions = sip["max-transactions"]
        self.router.is_us = self.proxy.is_us
        self._probe_ids = itertools.count(1)
        self.health = HealthMonitor(reactor, self._probe, self.router.groups)

    def _probe(self, peer):
        host, port = self.proxy.txns.local_address(peer.transport)
        n = next(self._probe_ids)
        req = options_request(peer, host, port, f"rm-probe-{n}-{id(self)}@{host}", f"p{n}")
        return self.proxy.txns.request(req, peer)

    def startService(self):
        super().startService()
        self.health.start()
        log.info("Resource Manager started: {gw} gateway groups, {ctic} CTIC groups, {mcp} MCP groups, "
                 "{profiles} IVR Profiles", gw=len(self.model.gateway_groups), ctic=len(self.model.ctic_groups),
                 mcp=len(self.model.mcp_groups), profiles=len(self.model.profiles))

    @defer.inlineCallbacks
    def stopService(self):
        self.health.stop()
        yield super().stopService()
        self.sessions.close()
        yield self.sink.close()
