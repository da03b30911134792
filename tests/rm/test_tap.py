"""The gvp-rm twistd plugin: found by twistd, options, config errors as usage errors, a service tree."""

from __future__ import annotations

import os

import pytest
from twisted.application import service
from twisted.plugin import getPlugins
from twisted.python import usage

from ctic.rm import tap
from tests.support import ROOT


def test_plugin_is_registered():
    makers = {m.tapname: m for m in getPlugins(service.IServiceMaker)}
    assert "gvp-rm" in makers
    assert makers["gvp-rm"].options is tap.Options


def test_shipped_config_loads():
    options = tap.Options()
    options.parseOptions(["--config", str(ROOT / "etc" / "rm.ini")])
    sip = options.config["sip"]
    assert (sip["udp-port"], sip["tcp-port"], sip["tls-port"]) == (5060, 5060, None)


def test_bad_value_is_a_usage_error_naming_the_place(tmp_path):
    path = tmp_path / "rm.ini"
    path.write_text("[sip]\nudp-port = 99999\n")
    with pytest.raises(usage.UsageError) as info:
        tap.Options().parseOptions(["--config", str(path)])
    assert str(info.value) == f"{path} [sip] udp-port = '99999': must be at most 65535"


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(usage.UsageError) as info:
        tap.Options().parseOptions(["--config", str(tmp_path / "nope.ini")])
    assert "cannot read" in str(info.value)


def test_make_service_builds_without_starting():
    options = tap.Options()
    options.parseOptions(["--config", str(ROOT / "etc" / "rm.ini"), "--set", "[sip]udp-port=0",
                          "--set", "[sip]tcp-port=off", "--set", "[cdr] sink = none"])
    svc = tap.makeService(options)
    assert service.IService.providedBy(svc) and not svc.running


def test_tls_mistakes_are_usage_errors_naming_the_option(tmp_path):
    """Checked in Options, before the service is built: no traceback from twistd."""
    from twisted.python import usage

    from ctic.rm.tap import Options

    base = (ROOT / "etc" / "rm.ini").read_text()
    cases = [("tls-port = 5061\n", "tls-port"), ("tls-port = 5061\ntls-certificate = /nonexistent.pem\n", "tls-certificate")]
    for extra, option in cases:
        path = tmp_path / "rm.ini"
        path.write_text(base.replace("[sip]\n", "[sip]\n" + extra, 1).replace("tls-port = off\n", ""))
        with pytest.raises(usage.UsageError) as e:
            Options().parseOptions(["--config", str(path)])
        assert f"[sip] {option}" in str(e.value) and str(path) in str(e.value)


def usage_error(tmp_path, text, *args):
    path = tmp_path / "rm.ini"
    path.write_text(text)
    with pytest.raises(usage.UsageError) as info:
        tap.Options().parseOptions(["--config", str(path), *args])
    return str(info.value).replace(str(path), "rm.ini")


SHIPPED = (ROOT / "etc" / "rm.ini").read_text()


@pytest.mark.parametrize("edit, message", [
    (("udp-port = 5060", "udp-prot = 5060"), "rm.ini [sip] udp-prot: unknown option; did you mean udp-port?"),
    (("[mcp-group:mcp]", "[mcp-grup:mcp]"), "rm.ini [mcp-grup:mcp]: unknown section; did you mean [mcp-group:mcp]?"),
    (("listen-address = 127.0.0.1", "listen-address = 127.0.0.256"),
     "rm.ini [sip] listen-address = '127.0.0.256': expected an IPv4 or IPv6 address"),
    (("members = 127.0.0.1:5090", "members = 127.0.0.1:5090\ntenant = Nobody"),
     "rm.ini [mcp-group:mcp] tenant: unknown option"),
    (("default-ivr-profile = default", "default-ivr-profile = missing"),
     "rm.ini [tenant:Environment] default-ivr-profile = 'missing': no [ivr-profile:missing] section"),
])
def test_configuration_mistakes_stop_the_start(tmp_path, edit, message):
    old, new = edit
    assert old in SHIPPED
    assert usage_error(tmp_path, SHIPPED.replace(old, new, 1)).startswith(message)


def test_every_tenant_needs_somewhere_to_send_calls(tmp_path):
    no_mcp = SHIPPED.replace("[mcp-group:mcp]\nmembers = 127.0.0.1:5090\n", "[mcp-group:mcp]\n", 1)
    no_mcp = no_mcp[:no_mcp.index("[mcp-group:mcp]")] + no_mcp[no_mcp.index("[ivr-profile:default]"):]
    assert usage_error(tmp_path, no_mcp) == "rm.ini: no [mcp-group:NAME] section: every call would be answered 503"
    two = SHIPPED + "\n[tenant:Other]\ndbid-path = 2\n"
    two = two.replace("[gateway-group:local]\n", "[gateway-group:local]\ntenant = Environment\n")
    two = two.replace("[ivr-profile:default]\n", "[ivr-profile:default]\ntenant = Environment\n")
    assert usage_error(tmp_path, two) == "rm.ini [tenant:Other]: tenant Other has no [ivr-profile:NAME]: " \
                                         "every call would be answered 404"


def test_unwritable_cdr_path_stops_the_start(tmp_path):
    (tmp_path / "file").write_text("")
    text = SHIPPED.replace("sqlite-path = var/rm-cdr.sqlite", f"sqlite-path = {tmp_path}/file/sub/cdr.sqlite")
    assert usage_error(tmp_path, text) == (f"rm.ini [cdr] sqlite-path = '{tmp_path}/file/sub/cdr.sqlite': "
                                           f"{tmp_path}/file is not a directory: CDRs could not be saved")
    if os.geteuid() != 0:  # root may write anywhere: the permission check only bites for others
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
        text = SHIPPED.replace("sqlite-path = var/rm-cdr.sqlite", f"sqlite-path = {blocked}/cdr.sqlite")
        assert usage_error(tmp_path, text).endswith(f"directory {blocked} is not writable: CDRs could not be saved")


def test_cdr_path_that_is_a_directory_stops_the_start(tmp_path):
    text = SHIPPED.replace("sqlite-path = var/rm-cdr.sqlite", f"sqlite-path = {tmp_path}")
    assert usage_error(tmp_path, text) == f"rm.ini [cdr] sqlite-path = '{tmp_path}': CDR file is not a writable file"


def test_lenient_turns_unknown_names_into_warnings(tmp_path):
    path = tmp_path / "rm.ini"
    path.write_text(SHIPPED.replace("udp-port = 5060", "udp-prot = 5070", 1))
    options = tap.Options()
    options.parseOptions(["--config", str(path), "--lenient"])
    assert options.config["sip"]["udp-port"] == 5060


def test_port_and_set_override_the_file():
    options = tap.Options()
    options.parseOptions(["--config", str(ROOT / "etc" / "rm.ini"), "--port", "5160", "--set", "[sip]tcp-port=off"])
    sip = options.config["sip"]
    assert (sip["udp-port"], sip["tcp-port"]) == (5160, None)
    with pytest.raises(usage.UsageError, match="expected \\[section\\]option=value"):
        tap.Options().parseOptions(["--config", str(ROOT / "etc" / "rm.ini"), "--set", "sip.udp-port=1"])
    with pytest.raises(usage.UsageError, match="--port '0': must be at least 1"):
        tap.Options().parseOptions(["--config", str(ROOT / "etc" / "rm.ini"), "--port", "0"])
