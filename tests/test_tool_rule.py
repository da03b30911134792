"""The C{requires_tool} rule: outside CI a missing tool skips, in CI it fails."""

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.support import need_tool


@pytest.mark.parametrize("tool", ["sipp", "tshark", "dumpcap"])
def test_missing_tool_fails_in_ci(monkeypatch, tool):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match=f"CI must install every outside tool: {tool} is not installed"):
        need_tool(tool)


def test_missing_tool_skips_outside_ci(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="sipp is not installed"):
        need_tool("sipp")
