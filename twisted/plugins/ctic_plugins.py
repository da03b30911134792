# twistd plugin dropin for ctic: one ServiceMaker per role, nothing else.
# Each role's Options and makeService live in the package (tap modules),
# imported only when that role is run.
from twisted.application.service import ServiceMaker

gvpRM = ServiceMaker(
    "ctic gvp-rm", "ctic.rm.tap", "GVP Resource Manager (SIP proxy in front of CTI Connectors)", "gvp-rm"
)
