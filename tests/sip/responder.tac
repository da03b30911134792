# twistd -n -y tests/sip/responder.tac: the SIP transports with the stateless
# responder as a real process, configured from the [sip] section of the INI
# file named by $CTIC_SIP_RESPONDER_CONFIG (interop tests only).
import os

from twisted.application import service
from twisted.internet import reactor

from ctic.config import Schema, load
from ctic.sip.responder import StatelessResponder
from ctic.sip.service import make_transport, sip_section

path = os.environ["CTIC_SIP_RESPONDER_CONFIG"]
config = load(path, Schema("sip-responder", (sip_section(),)))
application = service.Application("sip-responder")
responder = StatelessResponder(server_name="ctic-test-responder")
layer, transport_service = make_transport(reactor, config["sip"], responder, path)
responder.transport = layer
transport_service.setServiceParent(application)
