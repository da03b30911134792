# -*- test-case-name: tests.rm.test_tap -*-
"""
C{twistd gvp-rm}: the Resource Manager.

A transaction-stateful, record-routing SIP proxy (L{ctic.sip.proxy.Proxy})
whose router is L{ctic.rm.router.RMRouter}: tenants, gateway / CTIC / MCP
resource groups, IVR Profiles, the CTI rules, OPTIONS health checks and CDRs
(SQLite by default).  The INI layout is described in L{ctic.rm.schema}.
"""

from __future__ import annotations


from ctic.config import Schema
from ctic.rm.schema import SECTIONS
from ctic.service import ConfigOptions, tune_gc

SCHEMA = Schema("gvp-rm", SECTIONS)


class Options(ConfigOptions):
    schema = SCHEMA
    defaultConfig = "etc/rm.ini"
    longdesc = "Run the GVP Resource Manager (SIP on UDP and TCP 5060 by default)."

    def check(self, config):
        from ctic.rm.model import build
        from ctic.sip.service import check_sip

        self.model = build(config)
        check_sip(config["sip"], config.path)


def makeService(options):
    from twisted.internet import reactor

    tune_gc()

    from ctic.rm.node import ResourceManagerService

    return ResourceManagerService(reactor, options.config, options.model)
