"""The GVP Resource Manager role (C{twistd gvp-rm})."""
