# twistd plugin dropin for ctic: one ServiceMaker per role, nothing else.
# Each role's Options and makeService live in the package (tap modules),
# imported only when that role is run.
from twisted.application.service import ServiceMaker

gvpRM = ServiceMaker(
    "ctic gvp-rm", "ctic.rm.tap", "GVP Resource Manager (SIP proxy in front of CTI Connectors)", "gvp-rm"
)
ctic = ServiceMaker(
    "ctic ctic", "ctic.connector.tap", "CTI Connector (ICM mode: GED-125 VRU side; tenant listeners for VRU-PGs)",
    "ctic"
)
vruPGSim = ServiceMaker(
    "ctic vru-pg-sim", "ctic.sim.vrupg.tap", "Cisco VRU-PG simulator (GED-125, duplex sides, call treatment)",
    "vru-pg-sim"
)
ivrServerSim = ServiceMaker(
    "ctic ivr-server-sim", "ctic.sim.ivrserver.tap", "Genesys IVR Server simulator (GLI/GctiMsg, for labs)", "ivr-server-sim"
)
mcpSim = ServiceMaker(
    "ctic mcp-sim", "ctic.sim.mcp.tap", "MCP (VoiceXML platform) simulator: answers calls, runs INFO/REFER steps",
    "mcp-sim"
)
