"""
Genesys IVR Server's XML interface ("IVR SDK XML"): GLI framing, GctiMsg
messages, and the IVR-side client the CTI Connector uses.

Facts come from docs/ivr-server-xml.rst, which modules cite by section
(C{docs/ivr-server-xml.rst §1.2}); where the sources are silent the
behaviour is ours, configurable, and documented as ours there and in the
README ("IVR Server XML").

Layers, bottom up:

- L{ctic.ivrserver.gli}: the 6-byte GLI header (Sans-IO).
- L{ctic.ivrserver.userdata}: C{Node}/C{List} key-value trees.
- L{ctic.ivrserver.messages}: every GctiMsg message as a typed object.
- L{ctic.ivrserver.xmlcodec}: messages to and from XML documents (lxml).
  L{ctic.ivrserver.xmlwrite} (strict writer) and L{ctic.ivrserver.xmlread}
  (tolerant, entity-safe lxml reader) are its two halves.
- L{ctic.ivrserver.link}: one GLI connection: framing, XML, keep-alives,
  message events (Twisted protocol, thin).
- L{ctic.ivrserver.client}: the resilient IVR-side client and its call API.
"""
