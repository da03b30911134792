"""
Cisco ICM GED-125 (the VRU interface), VRU side.

- L{ctic.icm.constants}: message, sub-type, tag, status and feature numbers
  with the names ``docs/ged125.rst`` gives them.
- L{ctic.icm.codec}: Sans-IO encoder/decoder for every message.
- L{ctic.icm.session}: one PG connection's session state machine.
- L{ctic.icm.dialogue}: Service Control dialogues and the call-logic API.
- L{ctic.icm.link}: one VRU-PG (a listener port): duplex sides, takeover.
- L{ctic.icm.listener}: Twisted protocol, per-tenant listener services.
- L{ctic.icm.events}: message events for ladder views.
"""
