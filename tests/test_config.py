"""INI configuration: types, errors that locate the fault, unknown-name warnings, patterns, required."""

from __future__ import annotations

import ipaddress

import pytest
from twisted.logger import globalLogPublisher

from ctic.config import (
    ConfigError, Option, Schema, Section, boolean, choice, hostport, integer, ip_address, listof,
    load, loads, network, number, port, rst_table,
)

SCHEMA = Schema("test-role", (
    Section("rm", (
        Option("port-capacity", integer(1, 1000), 100, "calls", vendor="genesys"),
        Option("monitor-interval", number(0.1), 5.0),
        Option("use-cti", boolean, False),
        Option("scheme", choice("round-robin", "least-percent-usage"), "round-robin"),
        Option("members", listof(hostport), []),
        Option("address", ip_address, None),
        Option("allowed", listof(network), []),
        Option("sip-port", port, 5060),
    )),
    Section("Tenant*", (Option("dbid", integer(), required=True),)),
    Section("cdr", (Option("path", default="x"),), required=False),
))


@pytest.fixture
def warnings():
    seen = []
    globalLogPublisher.addObserver(seen.append)
    yield seen
    globalLogPublisher.removeObserver(seen.append)


def test_types_and_defaults():
    c = loads("[rm]\nport-capacity = 250\nuse-cti = Yes\nscheme = Least-Percent-Usage\n"
              "members = 10.0.0.1:5060, [2001:db8::1]:5070\naddress = 2001:DB8::1\n"
              "allowed = 10.0.0.0/8, 192.0.2.7\nmonitor-interval = 0.5\n", SCHEMA)
    rm = c["RM"]
    assert rm["port-capacity"] == 250 and rm["PORT-CAPACITY"] == 250
    assert rm["use-cti"] is True and rm["scheme"] == "least-percent-usage"
    assert rm["members"] == [("10.0.0.1", 5060), ("2001:db8::1", 5070)]
    assert rm["address"] == "2001:db8::1"
    assert rm["allowed"] == [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.7/32")]
    assert rm["monitor-interval"] == 0.5 and rm["sip-port"] == 5060  # default
    assert c["cdr"]["path"] == "x"  # an absent section has its defaults


@pytest.mark.parametrize("line,reason", [
    ("port-capacity = 0", "must be at least 1"),
    ("port-capacity = 1001", "must be at most 1000"),
    ("port-capacity = ten", "expected an integer"),
    ("use-cti = maybe", "expected true/false"),
    ("scheme = random", "expected one of round-robin, least-percent-usage"),
    ("members = 10.0.0.1", "item 1"),
    ("members = 10.0.0.1:5060,,", "item 2 is empty"),
    ("address = 10.0.0.300", "expected an IPv4 or IPv6 address"),
    ("monitor-interval = nan", "finite"),
    ("sip-port = 70000", "at most 65535"),
])
def test_bad_value_names_file_section_option_value(line, reason):
    with pytest.raises(ConfigError) as info:
        loads(f"[rm]\n{line}\n", SCHEMA, "/etc/ctic/rm.ini")
    err = info.value
    option, value = (p.strip() for p in line.split("=", 1))
    assert (err.path, err.section, err.option, err.value) == ("/etc/ctic/rm.ini", "rm", option, value)
    assert reason in err.reason
    assert str(err).startswith(f"/etc/ctic/rm.ini [rm] {option} = {value!r}: ")


def test_unknown_option_stops_the_load_with_closest_name():
    with pytest.raises(ConfigError) as info:
        loads("[rm]\nport-capacty = 5\n", SCHEMA, "a.ini")
    assert str(info.value) == "a.ini [rm] port-capacty: unknown option; did you mean port-capacity?"


def test_unknown_section_stops_the_load_with_closest_name():
    with pytest.raises(ConfigError) as info:
        loads("[cdrr]\npath = y\n", SCHEMA, "a.ini")
    assert str(info.value) == "a.ini [cdrr]: unknown section; did you mean [cdr]?"
    with pytest.raises(ConfigError) as info:
        loads("[zzzzzz]\n", SCHEMA, "a.ini")
    assert str(info.value) == "a.ini [zzzzzz]: unknown section"


def test_lenient_unknown_option_warns_with_closest_name(warnings):
    c = loads("[rm]\nport-capacty = 5\n", SCHEMA, "a.ini", strict=False)
    assert c["rm"]["port-capacity"] == 100
    (event,) = [e for e in warnings if e.get("option") == "port-capacty"]
    assert event["closest"] == "port-capacity" and event["section"] == "rm" and event["path"] == "a.ini"
    assert event["log_level"].name == "warn"


def test_lenient_unknown_section_warns_with_closest_name(warnings):
    loads("[cdrr]\npath = y\n", SCHEMA, strict=False)
    (event,) = [e for e in warnings if e.get("section") == "cdrr"]
    assert event["closest"] == "cdr"
    loads("[zzzzzz]\n", SCHEMA, strict=False)
    (event,) = [e for e in warnings if e.get("section") == "zzzzzz"]
    assert event["closest"] is None


def test_overrides_are_validated_like_the_file():
    c = loads("[rm]\nport-capacity = 5\n", SCHEMA, "a.ini",
              overrides=[("rm", "port-capacity", "7"), ("cdr", "path", lambda old: (old or "") + "x.db")])
    assert c["rm"]["port-capacity"] == 7 and c["cdr"]["path"] == "x.db"
    with pytest.raises(ConfigError) as info:
        loads("", SCHEMA, "a.ini", overrides=[("rm", "port-capacity", "-1")])
    assert (info.value.section, info.value.option) == ("rm", "port-capacity")
    with pytest.raises(ConfigError, match="did you mean port-capacity"):
        loads("", SCHEMA, "a.ini", overrides=[("rm", "port-capcity", "1")])


def test_pattern_sections_and_required_option():
    c = loads("[Tenant1]\ndbid = 1\n[Tenant2]\ndbid = 2\n", SCHEMA)
    assert [s["dbid"] for s in c.matching("tenant*")] == [1, 2]
    with pytest.raises(ConfigError) as info:
        loads("[Tenant3]\n", SCHEMA, "t.ini")
    assert (info.value.section, info.value.option, info.value.reason) == ("Tenant3", "dbid", "option is required")


def test_required_section():
    schema = Schema("r", (Section("must", (), required=True), Section("T*", (), required=True)))
    with pytest.raises(ConfigError) as info:
        loads("[T1]\n", schema)
    assert info.value.section == "must"
    with pytest.raises(ConfigError) as info:
        loads("[must]\n", schema)
    assert "T*" in info.value.reason


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(str(tmp_path / "missing.ini"), SCHEMA)
    assert info.value.path.endswith("missing.ini") and "cannot read" in info.value.reason
    with pytest.raises(ConfigError) as info:
        loads("[rm]\nuse-cti = 1\nuse-cti = 0\n", SCHEMA, "d.ini")
    assert (info.value.section, info.value.option, info.value.reason) == ("rm", "use-cti", "option appears twice")
    with pytest.raises(ConfigError) as info:
        loads("[rm]\n[rm]\n", SCHEMA)
    assert info.value.reason == "section appears twice"
    with pytest.raises(ConfigError) as info:
        loads("no section header\n", SCHEMA)
    assert "not a valid INI file" in info.value.reason


def test_config_error_helper_and_table():
    c = loads("", SCHEMA, "x.ini")
    err = c.error("conflicts with use-cti", "rm", "scheme", "round-robin")
    assert str(err) == "x.ini [rm] scheme = 'round-robin': conflicts with use-cti"
    table = rst_table([SCHEMA])
    assert "``port-capacity``" in table and "Genesys" in table and "ours" in table and "(required)" in table


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.ini"
    path.write_bytes(b"[rm]\n; caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load(str(path), SCHEMA)
    assert info.value.path.endswith("latin1.ini") and "UTF-8" in info.value.reason
