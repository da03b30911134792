"""
ctic: an open, Twisted-based CTI Connector and Resource Manager for voice
platforms.  See README.rst for the roles and how to run them.
"""

__version__ = "0.1.0"
