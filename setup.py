from setuptools import find_packages, setup

# Metadata and dependencies live in setup.cfg.  The twistd plugin dropin is
# twisted/plugins/ctic_plugins.py; twisted.plugins is a namespace shared with
# Twisted, so it is listed by hand (it has, and must have, no __init__.py).
setup(
    packages=find_packages(include=["ctic", "ctic.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["ctic_plugins.py"]},
)
