# -*- test-case-name: tests.sim.test_mcp_tap -*-
"""
C{twistd -n mcp-sim --config etc/mcp-sim.ini}: the MCP (VoiceXML
platform) simulator, SIP on UDP and TCP 127.0.0.1:5090 by default.

Every section and option here is ours: Genesys documents no configuration
for a media-server stand-in.  C{[sip]} is the section every SIP role shares
(L{ctic.sip.service}); C{[mcp-sim]} holds the simulator's behaviour;
each C{[app:NAME]} is one application, chosen by DNIS, whose C{steps} follow
the grammar in L{ctic.sim.mcp.app}.
"""

from __future__ import annotations

from ctic.config import Option, Schema, Section, boolean, choice, integer, listof, number, string
from ctic.service import SIPRoleOptions, tune_gc
from ctic.sim.mcp.app import App, AppTable, parse_steps
from ctic.sip.service import sip_section


def optional_boolean(text: str):
    return None if text.lower() in ("", "default") else boolean(text)


optional_boolean.describe = "boolean, or default ([mcp-sim])"


def optional_number(text: str):
    return None if text.lower() in ("", "default") else number(0)(text)


optional_number.describe = "number >= 0, or default ([mcp-sim])"


def busy_status(text: str) -> int:
    return int(choice("486", "503")(text))


busy_status.describe = "486 or 503"


SCHEMA = Schema("mcp-sim", (
    sip_section(udp_port=5090, tcp_port=5090),
    Section("mcp-sim", (
        Option("user", string, "mcp", "user part of our Contact, From and Referred-By"),
        Option("max-calls", integer(1), 10000, "most calls at once; more are refused with busy-status"),
        Option("busy-status", busy_status, 486,
               "answer past max-calls: 486 Busy Here, or 503 with Retry-After"),
        Option("ringing", boolean, True, "send 180 Ringing before the answer"),
        Option("answer-delay", number(0), 0.0, "seconds from the INVITE to the 200 OK"),
        Option("max-call-duration", number(0), 3600.0,
               "seconds an answered call may last before we send BYE; 0: no limit"),
        Option("info-timeout", number(0.01), 10.0,
               "seconds a data step waits for the CTIC's UserDataResp INFO (Composer's maxtime)"),
        Option("transfer-timeout", number(0.01), 32.0,
               "seconds a transfer may take (final NOTIFY, or the INVITE's answer)"),
        Option("getdata-format", choice("keys", "keynames"), "keys",
               "GetData body: keys (Action=GetData&A=&B=) or keynames (Keyname1=A&...&Action=GetData)"),
        Option("dnis-from", choice("auto", "request-uri", "to"), "auto",
               "where the DNIS is read; auto: the Request-URI user, or the To user when that is "
               "a GVP service name (dialog, annc, conf, ivr)"),
        Option("transfer-domain", string, None,
               "host[:port] of Refer-To and of the transfer INVITE's Request-URI "
               "(default: the address the call came from, the RM)"),
        Option("media-port", integer(1, 65535), 40000, "RTP port written in our SDP (no media is sent)"),
        Option("results-kept", integer(0), 1000, "data results kept in memory for inspection"),
    ), doc="The simulator's behaviour (ours)"),
    Section("app:*", (
        Option("dnis", listof(string), required=True,
               doc="DNIS values that run this application; * and ? patterns allowed (* any)"),
        Option("steps", parse_steps, (), "the application: steps separated by ';' (README, MCP simulator)"),
        Option("answer-status", integer(200, 699), 200, "200 answers; any other final status rejects the call"),
        Option("ringing", optional_boolean, None, "send 180 first (default: [mcp-sim] ringing)"),
        Option("answer-delay", optional_number, None, "seconds before the answer (default: [mcp-sim])"),
    ), doc="One application per section, chosen by DNIS (ours)"),
))


def build(config):
    """(L{Settings}, L{AppTable}) from a loaded Config; the cross-option checks."""
    from dataclasses import fields

    from ctic.sim.mcp.agent import Settings

    sim = config["mcp-sim"]
    settings = Settings(**{f.name: sim[f.name.replace("_", "-")] for f in fields(Settings)})
    apps = []
    table = AppTable()
    for sec in config.matching("app:*"):
        name = sec.name.split(":", 1)[1]
        if not sec["dnis"]:
            raise config.error("no DNIS: the application would never run", sec.name, "dnis")
        status = sec["answer-status"]
        if 200 < status < 300:
            raise config.error("answer-status: only 200 answers; use 300..699 to reject", sec.name,
                               "answer-status", str(status))
        app = App(name, tuple(sec["dnis"]), sec["steps"], status, sec["ringing"], sec["answer-delay"])
        for dnis in app.dnis:
            other = table.owner(dnis)
            if other is not None:
                raise config.error(f"DNIS {dnis} is already in [app:{other.name}]", sec.name, "dnis", dnis)
        apps.append(app)
        table = AppTable(apps)
    return settings, table


class Options(SIPRoleOptions):
    schema = SCHEMA
    defaultConfig = "etc/mcp-sim.ini"
    longdesc = "Run the MCP (VoiceXML platform) simulator (SIP on UDP and TCP 5090 by default)."

    def check(self, config):
        super().check(config)
        self.settings, self.apps = build(config)

    def summary(self, config):
        from ctic.sip.service import listeners_summary

        s = self.settings
        out = [listeners_summary(config["sip"]),
               f"max-calls {s.max_calls} (then {s.busy_status}), 180 Ringing {'on' if s.ringing else 'off'}, "
               f"answer-delay {s.answer_delay:g}s, max-call-duration {s.max_call_duration:g}s"]
        for app in self.apps.apps:
            steps = "; ".join(str(step) for step in app.steps) or "(no steps)"
            answer = "" if app.answer_status == 200 else f" (rejects with {app.answer_status})"
            out.append(f"app {app.name}: DNIS {', '.join(app.dnis)}{answer}: {steps}")
        if not self.apps.apps:
            out.append("no [app:NAME]: every call is answered 404")
        return out


def makeService(options):
    from twisted.internet import reactor

    tune_gc()

    from ctic.sim.mcp.service import MCPSimService

    return MCPSimService(reactor, options.config, options.settings, options.apps)
