"""Project-wide test rules: outside tools are required in CI (see tests/support.py)."""

from tests.support import check_tools


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_tool(name): the test runs an outside tool (skip outside CI, fail in CI)")


def pytest_runtest_setup(item):
    check_tools(item)
