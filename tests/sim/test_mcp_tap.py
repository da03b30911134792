"""The mcp-sim twistd plugin: found by twistd, the shipped file, mistakes as one usage error, a service tree."""

from __future__ import annotations

import pytest
from twisted.application import service
from twisted.plugin import getPlugins
from twisted.python import usage

from ctic.sim.mcp import tap
from tests.support import ROOT

SHIPPED = ROOT / "etc" / "mcp-sim.ini"


def test_plugin_is_registered():
    makers = {m.tapname: m for m in getPlugins(service.IServiceMaker)}
    assert makers["mcp-sim"].options is tap.Options


def test_shipped_config():
    options = tap.Options()
    options.parseOptions(["--config", str(SHIPPED)])
    sip = options.config["sip"]
    assert (sip["listen-address"], sip["udp-port"], sip["tcp-port"]) == ("127.0.0.1", 5090, 5090)
    assert [a.name for a in options.apps.apps] == ["userdata", "bridge", "default"]
    assert options.apps.select("8005550199").steps[-1].method == "invite"
    assert options.apps.select("anything").name == "default"
    assert options.settings.busy_status == 486 and options.settings.ringing


def test_port_overrides_udp_and_tcp():
    options = tap.Options()
    options.parseOptions(["--config", str(SHIPPED), "--port", "5190"])
    assert (options.config["sip"]["udp-port"], options.config["sip"]["tcp-port"]) == (5190, 5190)


def usage_error(tmp_path, text):
    path = tmp_path / "mcp-sim.ini"
    path.write_text(text)
    with pytest.raises(usage.UsageError) as info:
        tap.Options().parseOptions(["--config", str(path)])
    return str(info.value).replace(str(path), "mcp-sim.ini")


@pytest.mark.parametrize("text, message", [
    ("[app:a]\ndnis = *\nsteps = wait 1; dance\n",
     "mcp-sim.ini [app:a] steps = 'wait 1; dance': step 2 ('dance'): unknown step 'dance'"),
    ("[app:a]\nsteps = hangup\n", "mcp-sim.ini [app:a] dnis: option is required"),
    ("[app:a]\ndnis = 100\n[app:b]\ndnis = 200, 100\n",
     "mcp-sim.ini [app:b] dnis = '100': DNIS 100 is already in [app:a]"),
    ("[app:a]\ndnis = *\nanswer-status = 202\n", "mcp-sim.ini [app:a] answer-status = '202': answer-status: only 200"),
    ("[mcp-sim]\nbusy-status = 480\n", "mcp-sim.ini [mcp-sim] busy-status = '480': expected one of 486, 503"),
    ("[mcp-sim]\nanswer-dealy = 1\n", "mcp-sim.ini [mcp-sim] answer-dealy: unknown option; did you mean answer-delay?"),
])
def test_configuration_mistakes_stop_the_start(tmp_path, text, message):
    assert usage_error(tmp_path, text).startswith(message)


def test_make_service_builds_without_starting():
    options = tap.Options()
    options.parseOptions(["--config", str(SHIPPED), "--set", "[sip]udp-port=0", "--set", "[sip]tcp-port=off"])
    svc = tap.makeService(options)
    assert service.IService.providedBy(svc) and not svc.running
    assert svc.counters.as_dict()["answered"] == 0
