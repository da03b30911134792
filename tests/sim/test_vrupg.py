"""The VRU-PG simulator's configuration: treatment steps, options, errors that name the option."""

import pytest
from twisted.python import usage

from ctic.config import ConfigError, loads
from ctic.connector.tap import SCHEMA as CTIC_SCHEMA, Options as CticOptions
from ctic.sim.vrupg.tap import SCHEMA, Options, pg_settings, treatments
from ctic.sim.vrupg.treatment import parse_steps, pick, Treatment


def test_steps_parse_and_reject_with_position():
    steps = parse_steps("run GetDigits CallVariable1=a ECC:user.x=1; delay 2; connect 5001 TransferHint=1")
    assert [s.verb for s in steps] == ["run", "delay", "connect"]
    assert steps[0].fields == {"CallVariable1": "a", "ECC:user.x": "1"}
    for bad, words in [("dance", "unknown verb"), ("run", "needs an argument"), ("delay soon", "seconds"),
                       ("fail E_NOPE", "unknown error code"), ("run X Colour=red", "unknown field"),
                       # these used to pass and raise inside the running simulator instead
                       ("run X CallVariable11=a", "CallVariable1..CallVariable10"),
                       ("run X CallVariableX=a", "CallVariable1..CallVariable10"),
                       ("connect 1 LabelType=normal", "LabelType must be a number"),
                       ("connect 1 TransferHint=yes", "TransferHint must be a number"),
                       ("release now", "numeric cause")]:
        with pytest.raises(ValueError, match=words):
            parse_steps("release; " + bad)


def test_pick_prefers_exact_numbers():
    a = Treatment("a", ["*"], [])
    b = Treatment("b", ["12345"], [])
    assert pick([a, b], ["999", "12345"]) is b
    assert pick([a, b], ["999"]) is a
    assert pick([b], ["999"]) is None


def test_shipped_config_and_bad_values(tmp_path):
    o = Options()
    o.parseOptions(["--config", "etc/vru-pg-sim.ini"])
    s = pg_settings(o.config["PG1"])
    assert s.sides == {"A": ("127.0.0.1", 9001), "B": ("127.0.0.1", 9001)}
    assert not pg_settings(o.config["PG2"]).nul_terminate
    assert len(treatments(o.config)) == 3
    with pytest.raises(ConfigError) as e:
        loads("[PG1]\nSideA = 127.0.0.1:9001\nInject = explode@3\n", SCHEMA, "x.ini")
    assert (e.value.section, e.value.option) == ("PG1", "Inject")
    with pytest.raises(ConfigError) as e:
        loads("[PG1]\nSideA = 127.0.0.1:9001\n[Treatment9]\nDialedNumbers=1\nSteps = hop\n", SCHEMA)
    assert e.value.option == "Steps"
    ini = tmp_path / "none.ini"
    ini.write_text("[Treatment1]\nDialedNumbers = *\nSteps = release\n")
    with pytest.raises(usage.UsageError, match="PGn"):
        Options().parseOptions(["--config", str(ini)])


def test_ctic_config_errors(tmp_path):
    with pytest.raises(ConfigError) as e:
        loads("[ICMC]\nDNISIndicator = Header\n[Tenant1]\nPorts=9001\n", CTIC_SCHEMA)
    assert e.value.option == "DNISIndicator"
    ini = tmp_path / "dup.ini"
    ini.write_text("[Tenant1]\nPorts = 9001\n[Tenant2]\nPorts = 9001\n")
    with pytest.raises(usage.UsageError, match="also used by"):
        CticOptions().parseOptions(["--config", str(ini)])
    ini.write_text("[CTIC]\nMode = icm\n")
    with pytest.raises(usage.UsageError, match="TenantN"):
        CticOptions().parseOptions(["--config", str(ini)])
