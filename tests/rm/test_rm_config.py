"""The RM's INI: shipped defaults, the model, and errors naming file, section and option."""

from __future__ import annotations

import pytest

from ctic.config import ConfigError, load, loads
from ctic.rm.model import build
from ctic.rm.tap import SCHEMA
from tests.rm.harness import BASE, ctic_group, gateway_group
from tests.support import ROOT


def model(text):
    return build(loads(text, SCHEMA, "rm-test.ini"))


def test_shipped_rm_ini():
    cfg = load(str(ROOT / "etc" / "rm.ini"), SCHEMA)
    m = build(cfg)
    assert (cfg["sip"]["udp-port"], cfg["sip"]["tcp-port"]) == (5060, 5060)
    [gw] = m.gateway_groups
    assert gw.use_cti == 0 and gw.members[0].host == "127.0.0.1" and gw.members[0].port is None
    assert m.gateway_group_for("127.0.0.1", 40000) is gw
    [mcp] = m.mcp_groups
    assert [(x.host, x.port) for x in mcp.members] == [("127.0.0.1", 5090)]
    assert m.map_profile("Environment", "anything").name == "default"
    assert cfg["cdr"]["sqlite-path"].startswith("var/")
    assert m.ctic_groups == {}


def test_commented_examples_in_shipped_ini_are_valid():
    text = (ROOT / "etc" / "rm.ini").read_text()
    lines = []
    in_examples = False
    for line in text.splitlines():
        if line.startswith("; --- examples"):
            in_examples = True
        if in_examples and line.startswith(";") and not line.startswith(";;"):
            body = line[1:]
            if body.startswith("[") or "=" in body and not body.startswith(" "):
                line = body
        lines.append(line)
    m = build(loads("\n".join(lines), SCHEMA, "examples.ini"))
    assert m.ctic_groups["Environment"].scheme == "least-percent-usage"
    assert sorted(g.use_cti for g in m.gateway_groups) == [0, 1, 2]
    assert m.profiles["default"].cti_parameters == [("DefaultAgent", "5000"), ("TransferOnCTI", "Yes")]


def test_model_values():
    m = model(BASE + gateway_group(2, "remove-ruri-capability-on-fallback = true") + ctic_group(
        "load-balance-scheme = least-usage\nport-capacity = 10\nfail-over-cti-handling = script;voicexml;http://x/y"
        "\ncti-unavailable-respcode = 500;503\ncti-unavailable-action = answer") + "[rm]\ndatanodes = 2|1\n")
    g = m.ctic_groups["Environment"]
    assert g.scheme == "least-usage" and g.port_capacity == 10
    assert g.fail_over_cti_handling == ("script", "voicexml", "http://x/y")
    assert g.cti_unavailable_respcode == (500, 503) and g.cti_unavailable_action == ("answer",)
    assert m.gateway_groups[0].remove_ruri_capability_on_fallback is True
    assert m.datanodes == "2|1"
    assert m.map_profile("Environment", "5550099").name == "sales"
    assert m.map_profile("Environment", "5550100").name == "fallback"


@pytest.mark.parametrize("text, section, option", [
    (BASE + gateway_group(7), "gateway-group:gw", "use-cti"),
    (BASE + gateway_group(1), "gateway-group:gw", "use-cti"),  # no CTIC group for the tenant
    (BASE + gateway_group(1) + ctic_group("load-balance-scheme = fastest"), "ctic-group:ctic", "load-balance-scheme"),
    (BASE + gateway_group(1) + ctic_group("fail-over-cti-handling = script;voicexml"), "ctic-group:ctic",
     "fail-over-cti-handling"),
    (BASE + gateway_group(1) + ctic_group("cti-unavailable-respcode = 200"), "ctic-group:ctic",
     "cti-unavailable-respcode"),
    (BASE + gateway_group(1) + ctic_group("load-balance-scheme = least-percent-usage"), "ctic-group:ctic", "members"),
    (BASE + gateway_group(1) + ctic_group(members="10.0.0.9"), "ctic-group:ctic", "members"),
    (BASE + "[ivr-profile:x]\ndnis = 9-1\n", "ivr-profile:x", "dnis"),
    (BASE + "[ivr-profile:x]\ntenant = nobody\n", "ivr-profile:x", "tenant"),
    (BASE + "[ivr-profile:sales/gvp.policy]\ncti-allow = maybe\n", "ivr-profile:sales/gvp.policy", "cti-allow"),
    (BASE + "[ivr-profile:x]\n[ivr-profile:x/gvp.service-parameters]\ncti.TransferOnCTI = fixed,Maybe\n",
     "ivr-profile:x/gvp.service-parameters", "cti.TransferOnCTI"),
    (BASE + "[rm]\nsip-header-for-cti-dnis = X Bad\n", "rm", "sip-header-for-cti-dnis"),
    (BASE + "[tenant:Other]\n", "ivr-profile:sales", "tenant"),  # two tenants: profiles must say which
])
def test_errors_name_file_section_option(text, section, option):
    with pytest.raises(ConfigError) as e:
        model(text)
    assert (e.value.path, e.value.section, e.value.option) == ("rm-test.ini", section, option), str(e.value)
    assert "rm-test.ini" in str(e.value)


def test_two_ctic_groups_for_one_tenant_is_an_error():
    text = BASE + gateway_group(1) + ctic_group() + "[ctic-group:other]\nmembers = 10.0.0.50:5070\n"
    with pytest.raises(ConfigError) as e:
        model(text)
    assert e.value.section == "ctic-group:other" and e.value.option == "tenant"
