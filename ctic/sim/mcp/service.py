# -*- test-case-name: tests.sim.test_mcp_interop -*-
"""
The MCP simulator as a Twisted service: the C{[sip]} listeners and the
simulator's user agent on them.  The reactor is passed in (only
C{tap.makeService} imports the global one).
"""

from __future__ import annotations

from twisted.application import service
from twisted.logger import Logger

from ctic.sim.mcp.agent import MCPSim
from ctic.sip.service import make_transport
from ctic.sip.transaction import Timers

log = Logger(namespace="ctic.sim.mcp")


class MCPSimService(service.MultiService):
    """Everything one C{mcp-sim} runs; C{counters} says what happened so far."""

    name = "mcp-sim"

    def __init__(self, reactor, config, settings, apps):
        super().__init__()
        sip = config["sip"]
        self.layer, transport_service = make_transport(reactor, sip, None, config.path)
        transport_service.setServiceParent(self)
        self.sim = MCPSim(reactor, self.layer, settings, apps, timers=Timers(sip["t1"], sip["t2"], sip["t4"]),
                          max_transactions=sip["max-transactions"])
        self.apps = apps

    @property
    def counters(self):
        return self.sim.counters

    def startService(self):
        super().startService()
        log.info("MCP simulator started: {count} applications ({names})", count=len(self.apps.apps),
                 names=", ".join(a.name for a in self.apps.apps))

    def stopService(self):
        log.info("MCP simulator stopping with {active} calls in progress: {counters}", active=self.sim.active,
                 counters=self.sim.counters.as_dict())
        return super().stopService()
