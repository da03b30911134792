"""
An IVR Server simulator (C{twistd -n ivr-server-sim}): a lab tool that
speaks the GLI/GctiMsg interface like Genesys IVR Server 8.1, with a
directory of IVR ports, a routing table, simulated agents and fault
injection.  See L{ctic.sim.ivrserver.tap} for its configuration.
"""
