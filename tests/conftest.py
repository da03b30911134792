"""
Project-wide test rules: outside tools are required in CI (see
tests/support.py), and no test may leave timers, transactions, dialogs,
calls or RM sessions behind (see tests/leaks.py).
"""

import pytest

from tests.leaks import MARKERS, LeakTracker, global_reactor_pending, reason_of
from tests.support import check_tools


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_tool(name): the test runs an outside tool (skip outside CI, fail in CI)")
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", text)


def pytest_runtest_setup(item):
    check_tools(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.leak_check_call_failed = report.failed


@pytest.fixture(autouse=True)
def no_leftovers(request, monkeypatch):
    """Fail the test if it leaves active DelayedCalls or open protocol state behind."""
    item = request.node
    allow_calls = reason_of(item, "allow_pending_calls")
    allow_open = reason_of(item, "allow_open_state")
    tracker = LeakTracker(monkeypatch)
    yield tracker
    reactor_left = global_reactor_pending(cancel=True)
    if getattr(item, "leak_check_call_failed", True):
        return  # the test's own failure is the news; do not bury it
    found = []
    if allow_open is None:
        found += tracker.open_state()
    if allow_calls is None and allow_open is None:
        found += tracker.pending_calls() + reactor_left
    if found:
        pytest.fail("the test left state behind:\n  " + "\n  ".join(found), pytrace=False)
