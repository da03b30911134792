# -*- test-case-name: tests.rm.test_tap -*-
"""
C{twistd gvp-rm}: the Resource Manager.

Today the RM runs the SIP transports with the stateless responder: OPTIONS
is answered 200, other requests 501, malformed ones 400.  Routing, resource
groups and CDRs arrive with the Resource Manager work.
"""

from __future__ import annotations

from twisted.application import service

from ctic.config import Schema
from ctic.service import ConfigOptions
from ctic.sip.responder import StatelessResponder
from ctic.sip.service import make_transport, sip_section

SCHEMA = Schema("gvp-rm", (sip_section(udp_port=5060, tcp_port=5060),))


class Options(ConfigOptions):
    schema = SCHEMA
    defaultConfig = "etc/rm.ini"
    longdesc = "Run the GVP Resource Manager (SIP on UDP and TCP 5060 by default)."


def makeService(options):
    from twisted.internet import reactor

    config = options.config
    top = service.MultiService()
    responder = StatelessResponder(server_name="ctic-gvp-rm")
    layer, transport_service = make_transport(reactor, config["sip"], responder, config.path)
    responder.transport = layer
    transport_service.setServiceParent(top)
    return top
