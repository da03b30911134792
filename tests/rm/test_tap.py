"""The gvp-rm twistd plugin: found by twistd, options, config errors as usage errors, a service tree."""

from __future__ import annotations

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


def test_make_service_builds_without_starting(tmp_path):
    path = tmp_path / "rm.ini"
    path.write_text("[sip]\nudp-port = 0\ntcp-port = off\n[cdr]\nsink = none\n")
    options = tap.Options()
    options.parseOptions(["--config", str(path)])
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
