"""
The CTI Connector role (C{twistd -n ctic}).  One instance runs in one mode, as
in GVP: C{icm} (GED-125 VRU side, L{ctic.connector.icm}) or, later,
C{genesys} (IVR Server).  L{ctic.connector.tap} picks the mode.
"""
