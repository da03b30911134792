"""
C{twistd -n vru-pg-sim --config etc/vru-pg-sim.ini}: simulated VRU-PGs
connecting to a VRU.  Every option name here is ours.
"""

from __future__ import annotations

from twisted.application import service

from ctic import config as cfg
from ctic.config import Option, Schema, Section
from ctic.service import ConfigOptions, tune_gc
from ctic.sim.vrupg.pg import MALFORMED, PGSettings
from ctic.sim.vrupg.treatment import Treatment, parse_steps


def _injection(text: str):
    kind, sep, when = text.partition("@")
    if not sep or kind not in MALFORMED:
        raise ValueError(f"expected <kind>@<seconds> with kind one of {', '.join(MALFORMED)}")
    try:
        return float(when), kind
    except ValueError:
        raise ValueError("expected <kind>@<seconds>") from None


_injection.describe = "kind@seconds"

SCHEMA = Schema("vru-pg-sim", (
    Section("PG*", (
        Option("SideA", cfg.hostport, required=True, doc="VRU listener side A connects to"),
        Option("SideB", cfg.hostport, None, "VRU listener side B connects to (duplex PG); empty: simplex"),
        Option("Version", cfg.integer(0), 16, "OPEN_REQ VersionNumber"),
        Option("IdleTimeout", cfg.integer(1), 120, "OPEN_REQ IdleTimeout (seconds); heartbeat every 1/4"),
        Option("Strings", cfg.choice("nul", "no-nul"), "nul", "Send strings NUL-terminated or not"),
        Option("FailoverEvery", cfg.number(0), 0.0,
               "Seconds between scripted failovers to the standby side (0: only when a side is lost)"),
        Option("FailoverMode", cfg.choice("supersede", "drop"), "supersede",
               "supersede: the standby sends OPEN_REQ; drop: the active side closes its connection"),
        Option("Inject", cfg.listof(_injection), [], "Malformed frames to send, e.g. truncated@30"),
        Option("ReleaseCause", cfg.integer(0), 0, "RELEASE Cause sent by 'release' steps"),
    )),
    Section("Treatment*", (
        Option("DialedNumbers", cfg.listof(cfg.string), required=True,
               doc="Dialed numbers (or DNIS / CorrelationID) this treatment plays; * for any"),
        Option("Steps", parse_steps, required=True, doc="What ICM does (ctic.sim.vrupg.treatment)"),
    )),
))


def pg_settings(section) -> PGSettings:
    sides = {"A": section["SideA"]}
    if section["SideB"] is not None:
        sides["B"] = section["SideB"]
    return PGSettings(name=section.name, sides=sides, version=section["Version"],
                      idle_timeout=section["IdleTimeout"], nul_terminate=section["Strings"] == "nul",
                      failover_every=section["FailoverEvery"], failover_mode=section["FailoverMode"],
                      inject=section["Inject"], release_cause=section["ReleaseCause"])


def treatments(config) -> list[Treatment]:
    return [Treatment(s.name, s["DialedNumbers"], s["Steps"]) for s in config.matching("Treatment*")]


class Options(ConfigOptions):
    schema = SCHEMA
    defaultConfig = "etc/vru-pg-sim.ini"

    def check(self, config):
        if not config.matching("PG*"):
            raise config.error("at least one [PGn] section is required")

    def summary(self, config):
        return [f"PG {s.name}: side A -> {s['SideA'][0]}:{s['SideA'][1]}"
                + (f", side B -> {s['SideB'][0]}:{s['SideB'][1]}" if s["SideB"] else " (simplex)")
                for s in config.matching("PG*")] + [f"treatment {t.name}" for t in config.matching("Treatment*")]


def makeService(options):
    from twisted.internet import reactor

    tune_gc()

    from ctic.sim.vrupg.protocol import SimPGService

    top = service.MultiService()
    plays = treatments(options.config)
    for section in options.config.matching("PG*"):
        SimPGService(pg_settings(section), plays, reactor).setServiceParent(top)
    return top
