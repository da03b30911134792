"""
C{twistd -n ctic --config etc/ctic-icm.ini}: the CTI Connector.

One instance runs in one mode (C{[CTIC] Mode}).  Modes live in a table,
L{MODES}: a mode is a module with a service class taking C{(config,
reactor)}: C{icm} (GED-125 VRU-PG listeners, L{ctic.connector.icm}) and
C{genesys} (a B2BUA between the RM and IVR Server,
L{ctic.connector.genesys}).  The sections of the other mode are accepted
and ignored, so one file may hold both.
"""

from __future__ import annotations

import re

from ctic import config as cfg
from ctic.config import Option, Schema, Section
from ctic.icm import constants as C
from ctic.connector.genesys import SECTIONS as GENESYS_SECTIONS
from ctic.service import SIPRoleOptions, tune_gc


def _mask(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError("expected an integer such as 0x03FF") from None
    if not 0 <= value <= 0xFFFF:
        raise ValueError("must fit 16 bits (CallVarsMask is a USHORT)")
    return value


_mask.describe = "integer (0x prefix for hex)"


def _feature(text: str) -> str:
    if text not in C.FEATURE_BY_NAME:
        raise ValueError("expected one of " + ", ".join(C.FEATURE_BY_NAME))
    return text


_feature.describe = "FEATURE_* name"


def _dnis_indicator(text: str) -> str:
    if text == "ScriptID" or re.fullmatch(r"CallVariable([1-9]|10)", text):
        return text
    raise ValueError("expected ScriptID or CallVariable1..CallVariable10")


_dnis_indicator.describe = "ScriptID or CallVariableN"

MODES = {
    "icm": ("ctic.connector.icm", "ICMConnector"),
    "genesys": ("ctic.connector.genesys", "GenesysConnector"),
}

SCHEMA = Schema("ctic", (
    Section("CTIC", (
        Option("Mode", cfg.choice("icm", "genesys"), "icm",
               "Which CTI system this instance serves (one mode per instance, as in GVP)"),
    )),
    Section("ICMC", (
        Option("enablePreRouting", cfg.boolean, False,
               "The DNIS is not passed to GVP when the call is presented; it comes from a Call "
               "Variable or the ScriptID of the first RUN_SCRIPT_REQ", vendor="genesys"),
        Option("DNISIndicator", _dnis_indicator, "ScriptID",
               "Where the DNIS comes from with enablePreRouting (value spelling is ours)",
               vendor="genesys"),
        Option("MinVersion", cfg.integer(0), 1, "Lowest OPEN_REQ VersionNumber accepted"),
        Option("MaxVersion", cfg.integer(0), 99, "Highest OPEN_REQ VersionNumber accepted"),
        Option("IdleTimeoutUnits", cfg.choice("auto", "seconds", "milliseconds"), "auto",
               "How to read OPEN_REQ IdleTimeout; auto = seconds unless above 3600"),
        Option("ServiceFeatures", cfg.listof(_feature),
               ["FEATURE_RUN_SCRIPT", "FEATURE_CONNECT", "FEATURE_CANCEL", "FEATURE_RELEASE"],
               "INIT_SERVICE_CTRL_DATA ServiceFeatures bits we advertise"),
        Option("CallVarsMask", _mask, 0x03FF, "REGISTER_VARIABLES CallVarsMask"),
        Option("ECCVariables", cfg.listof(cfg.string), [],
               "ECC variable names registered (tags 1..n), e.g. user.foo"),
        Option("TrunkGroups", cfg.listof(cfg.integer(0, 65535)), [],
               "TrunkGroupIDs reported in INIT_SERVICE_CTRL_TRKGRP"),
        Option("Services", cfg.listof(cfg.integer(0)), [],
               "ServiceIDs reported in INIT_SERVICE_CTRL_SERVICE and SERVICE_STATUS"),
        Option("VRUHeartbeat", cfg.boolean, False,
               "Also send HEARTBEAT_REQ after IdleTimeout/4 of our own silence"),
        Option("NulTerminateStrings", cfg.boolean, True, "Send strings with a trailing NUL"),
        Option("AcceptStringsWithoutNul", cfg.boolean, True, "Accept received strings without a NUL"),
        Option("MaxMessageSize", cfg.integer(12, 16 * 1024 * 1024), 65536,
               "Largest GED-125 message accepted (bytes, header included)"),
        Option("MaxCallVariableLength", cfg.integer(1, 254), 40, "CallVariable1..10 length limit"),
        Option("SupersedeOnNewOpen", cfg.boolean, True,
               "An OPEN_REQ from the other duplex side terminates the existing session"),
        Option("FailoverHold", cfg.number(0), 10.0,
               "Seconds dialogues wait for a new PG session after the active one is lost"),
        Option("MaxHeldMessages", cfg.integer(0), 1000, "Messages held per PG while no session is ready"),
        Option("InstructionTimeout", cfg.number(0.1), 10.0,
               "Seconds without an ICM instruction before DIALOGUE_FAILURE_EVENT E_TIMEOUT"),
        Option("SendSeqNoStart", cfg.integer(0, 1), 0, "First SendSeqNo of each dialogue"),
        Option("MaxDialogues", cfg.integer(1), 10000, "Dialogues per VRU-PG"),
    )),
    Section("Tenant*", (
        Option("Ports", cfg.listof(cfg.port), required=True,
               doc="Listener ports, one per VRU-PG (both duplex sides connect to it)", vendor="genesys"),
        Option("Address", cfg.ip_address, "127.0.0.1", "Address the tenant's listeners bind"),
        Option("AllowedPeers", cfg.listof(cfg.network), [],
               "PG addresses allowed to open sessions (empty: any)"),
    )),
) + GENESYS_SECTIONS)


class Options(SIPRoleOptions):
    schema = SCHEMA
    defaultConfig = "etc/ctic-icm.ini"
    portHelp = "Genesys mode: SIP port for UDP and TCP, overriding [sip] udp-port and tcp-port (ours)"

    def check(self, config):
        mode = config["CTIC"]["Mode"]
        if mode not in MODES:
            raise config.error(f"this build has no {mode} mode yet (available: {', '.join(MODES)})",
                               "CTIC", "Mode", mode)
        if mode == "icm":
            tenants = config.matching("Tenant*")
            if not tenants:
                raise config.error("ICM mode needs at least one [TenantN] section")
            seen = {}
            for section in tenants:
                for port in section["Ports"]:
                    key = (section["Address"], port)
                    if key in seen:
                        raise config.error(f"port {port} is also used by [{seen[key]}]", section.name, "Ports")
                    seen[key] = section.name
            icmc = config["ICMC"]
            if icmc["MinVersion"] > icmc["MaxVersion"]:
                raise config.error("MinVersion is above MaxVersion", "ICMC")
        if mode == "genesys":
            super().check(config)  # the [sip] checks

    def summary(self, config):
        out = [f"mode: {config['CTIC']['Mode']}"]
        if config["CTIC"]["Mode"] == "genesys":
            from ctic.sip.service import listeners_summary

            ivr, g = config["ivr-server"], config["genesys"]
            out.append(listeners_summary(config["sip"]))
            out.append("IVR Server: {}:{}".format(*ivr["server"])
                       + (" (backup {}:{})".format(*ivr["backup-server"]) if ivr["backup-server"] else "")
                       + f" as {ivr['client-name']}")
            out.append(f"{g['mode']} mode; leg B to the RM at {g['resource-manager'][0]}:{g['resource-manager'][1]}")
            return out
        for section in config.matching("Tenant*"):
            out.append(f"tenant {section.name}: GED-125 listeners "
                       + ", ".join(f"TCP {section['Address']}:{p}" for p in section["Ports"])
                       + (f"; peers {', '.join(map(str, section['AllowedPeers']))}" if section["AllowedPeers"] else ""))
        return out


def makeService(options):
    import importlib

    from twisted.internet import reactor

    tune_gc()

    module, name = MODES[options.config["CTIC"]["Mode"]]
    return getattr(importlib.import_module(module), name)(options.config, reactor)
