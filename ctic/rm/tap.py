# -*- test-case-name: tests.rm.test_tap -*-
"""
C{twistd gvp-rm}: the Resource Manager.

A transaction-stateful, record-routing SIP proxy (L{ctic.sip.proxy.Proxy})
whose router is L{ctic.rm.router.RMRouter}: tenants, gateway / CTIC / MCP
resource groups, IVR Profiles, the CTI rules, OPTIONS health checks and CDRs
(SQLite by default).  The INI layout is described in L{ctic.rm.schema}.
"""

from __future__ import annotations


from ctic.config import Schema
from ctic.rm.schema import SECTIONS
from ctic.service import SIPRoleOptions, tune_gc

SCHEMA = Schema("gvp-rm", SECTIONS)


class Options(SIPRoleOptions):
    schema = SCHEMA
    defaultConfig = "etc/rm.ini"
    longdesc = "Run the GVP Resource Manager (SIP on UDP and TCP 5060 by default)."

    def check(self, config):
        from ctic.rm.model import build

        self.model = build(config)
        super().check(config)
        check_cdr(config)
        check_routes(config, self.model)

    def summary(self, config):
        return rm_summary(config, self.model)


def check_cdr(config) -> None:
    """The CDR file's directory must exist or be creatable, and be writable, before anything starts."""
    import os

    cdr = config["cdr"]
    if cdr["sink"] != "sqlite":
        return
    path = cdr["sqlite-path"]
    directory = os.path.dirname(os.path.abspath(path))
    existing = directory
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if os.path.exists(path) and not (os.path.isfile(path) and os.access(path, os.R_OK | os.W_OK)):
        raise config.error("CDR file is not a writable file", "cdr", "sqlite-path", path)
    if not os.path.isdir(existing):
        raise config.error(f"{existing} is not a directory: CDRs could not be saved", "cdr", "sqlite-path", path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise config.error(f"directory {existing} is not writable: CDRs could not be saved",
                           "cdr", "sqlite-path", path)


def check_routes(config, model) -> None:
    """Every tenant has somewhere to send a call: an MCP group, and an IVR Profile for its DNIS."""
    if not model.mcp_groups:
        raise config.error("no [mcp-group:NAME] section: every call would be answered 503")
    for tenant in model.tenants.values():
        if not any(p.tenant == tenant.name for p in model.profiles.values()):
            raise config.error(f"tenant {tenant.name} has no [ivr-profile:NAME]: every call would be answered 404",
                               f"tenant:{tenant.name}")


def rm_summary(config, model) -> list[str]:
    """What C{twistd gvp-rm --check} prints: listeners, tenants, groups with members, profiles, CDRs."""
    from ctic.sip.service import listeners_summary

    out = [listeners_summary(config["sip"]),
           f"tenants: {', '.join(model.tenants)}"]
    for g in model.gateway_groups:
        out.append(f"gateway group {g.name} (tenant {g.tenant}, use-cti={g.use_cti}): "
                   + ", ".join(m.key for m in g.members))
    for tenant, g in model.ctic_groups.items():
        out.append(f"CTIC group {g.name} (tenant {tenant}, {g.scheme}): " + ", ".join(m.key for m in g.members))
    for g in model.mcp_groups:
        out.append(f"MCP group {g.name} ({g.scheme}, port-capacity {g.port_capacity}): "
                   + ", ".join(m.key for m in g.members))
    for p in model.profiles.values():
        dnis = config[f"ivr-profile:{p.name}"].raw.get("dnis", "").strip() or "-"
        out.append(f"IVR Profile {p.name} (tenant {p.tenant}): DNIS {dnis} -> {p.voicexml_url}")
    cdr = config["cdr"]
    out.append("CDRs: " + (f"SQLite {cdr['sqlite-path']}" if cdr["sink"] == "sqlite" else "not kept"))
    return out


def makeService(options):
    from twisted.internet import reactor

    tune_gc()

    from ctic.rm.node import ResourceManagerService

    return ResourceManagerService(reactor, options.config, options.model)
