from setuptools import Extension, find_packages, setup

# Metadata and dependencies live in setup.cfg.  The twistd plugin dropin is
# twisted/plugins/ctic_plugins.py; twisted.plugins is a namespace shared with
# Twisted, so it is listed by hand (it has, and must have, no __init__.py).
# ctic.sip._speedups is an optional C fast path for the SIP parser: when it
# cannot be built, the pure-Python parser is used.
setup(
    packages=find_packages(include=["ctic", "ctic.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["ctic_plugins.py"]},
    ext_modules=[Extension("ctic.sip._speedups", ["ctic/sip/_speedups.c"], optional=True)],
)
