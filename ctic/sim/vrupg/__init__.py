"""
A VRU Peripheral Gateway simulator (C{twistd -n vru-pg-sim}): connects to a
VRU (ctic in ICM mode, or any other), opens GED-125 sessions, and plays
configurable call treatment per dialed number.  Duplex PGs with side A and
side B and scripted failover; NUL or no-NUL strings; malformed-frame
injection.  A lab tool, built on the same codec as the VRU side.
"""
