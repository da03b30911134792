# -*- test-case-name: tests.rm.test_rm_config -*-
"""
The Resource Manager's configuration as plain data: tenants, resource groups
and IVR Profiles, built from a validated L{ctic.config.Config} with the
cross-section checks (unknown tenant, two CTIC groups for one tenant, a
gateway that belongs to two groups) raised as L{ctic.config.ConfigError}s
that name the file, section and option.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from ctic.config import Config


@dataclass(frozen=True)
class Member:
    """One physical resource: address, port (C{None}: any) and port capacity (C{None}: no limit)."""

    host: str
    port: int | None
    capacity: int | None = None

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port if self.port is not None else '*'}"


@dataclass(frozen=True)
class Tenant:
    name: str
    dbid_path: str = "1"
    default_ivr_profile: str | None = None


@dataclass(frozen=True)
class Monitoring:
    method: str = "OPTIONS"
    interval: float = 10.0
    timeout: float = 4.0
    failure_threshold: int = 3
    success_threshold: int = 2


@dataclass(frozen=True)
class GatewayGroup:
    name: str
    members: tuple[Member, ...]
    tenant: str
    use_cti: int = 0
    remove_ruri_capability_on_fallback: bool = False


@dataclass(frozen=True)
class ResourceGroup:
    """A CTIC or MCP group: members, balancing, capacity, monitoring."""

    kind: str  # "ctic" or "mcp"
    name: str
    members: tuple[Member, ...]
    scheme: str = "round-robin"
    port_capacity: int = 0
    transport: str = "UDP"
    monitoring: Monitoring = field(default_factory=Monitoring)
    tenant: str | None = None
    capabilities: tuple[str, ...] = ()
    fail_over_cti_handling: tuple = ("reject",)
    cti_unavailable_action: tuple | None = None
    cti_unavailable_respcode: tuple | None = None


@dataclass(frozen=True)
class IVRProfile:
    name: str
    tenant: str
    dnis: tuple = ()
    voicexml_url: str = ""
    service_type: str = "voicexml"
    cti_allow: bool | None = None
    use_same_gateway: str = "Always"
    service_parameters: tuple[tuple[str, str], ...] = ()

    def parameters(self, service_type: str) -> list[tuple[str, str]]:
        """The C{<service_type>.<name>} service parameters as (name, value)."""
        prefix = service_type.lower() + "."
        return [(k[len(prefix):], v) for k, v in self.service_parameters if k.lower().startswith(prefix)]

    @property
    def cti_parameters(self) -> list[tuple[str, str]]:
        return self.parameters("cti")


def _glob_regex(pattern: str):
    # 'x'/'X' is any digit, as in dial plans; * and ? as in shell patterns.
    text = fnmatch.translate(pattern.replace("x", "\0").replace("X", "\0"))
    return re.compile(text.replace("\0", "[0-9]"))


class DNISMap:
    """
    DNIS to IVR Profile, per tenant: exact numbers first, then ranges, then
    patterns in file order, then the tenant's default profile (ours).
    """

    def __init__(self, profiles, tenants):
        self._exact: dict[tuple[str, str], IVRProfile] = {}
        self._ranges: dict[str, list] = {}
        self._patterns: dict[str, list] = {}
        self._default: dict[str, IVRProfile] = {}
        by_name = {p.name: p for p in profiles}
        for p in profiles:
            for rule in p.dnis:
                if rule[0] == "exact":
                    self._exact.setdefault((p.tenant, rule[1]), p)
                elif rule[0] == "range":
                    self._ranges.setdefault(p.tenant, []).append((rule[1], rule[2], p))
                elif rule[0] == "glob":
                    self._patterns.setdefault(p.tenant, []).append((_glob_regex(rule[1]), p))
                else:
                    self._patterns.setdefault(p.tenant, []).append((rule[1], p))
        for t in tenants.values():
            if t.default_ivr_profile:
                self._default[t.name] = by_name[t.default_ivr_profile]

    def lookup(self, tenant: str, dnis: str | None) -> IVRProfile | None:
        if dnis:
            hit = self._exact.get((tenant, dnis))
            if hit is not None:
                return hit
            for lo, hi, p in self._ranges.get(tenant, ()):
                if len(dnis) == len(lo) and dnis.isdigit() and lo <= dnis <= hi:
                    return p
            for rx, p in self._patterns.get(tenant, ()):
                if rx.fullmatch(dnis):
                    return p
        return self._default.get(tenant)


@dataclass
class RMConfig:
    """Everything the routing core needs, checked for consistency."""

    tenants: dict[str, Tenant]
    gateway_groups: list[GatewayGroup]
    ctic_groups: dict[str, ResourceGroup]  # by tenant
    mcp_groups: list[ResourceGroup]
    profiles: dict[str, IVRProfile]
    sip_header_for_cti_dnis: str | None = None
    cti_unavailable_action: tuple | None = None
    cti_unavailable_respcode: tuple = ()
    datanodes: str = "1"
    session_timeout: float = 14400.0
    max_sessions: int = 100000
    dnis_map: DNISMap | None = None

    def __post_init__(self):
        if self.dnis_map is None:
            self.dnis_map = DNISMap(list(self.profiles.values()), self.tenants)

    def gateway_group_for(self, host: str, port: int) -> GatewayGroup | None:
        """The gateway group a request's source belongs to (exact port before any port)."""
        wildcard = None
        for g in self.gateway_groups:
            for m in g.members:
                if m.host == host:
                    if m.port == port:
                        return g
                    if m.port is None and wildcard is None:
                        wildcard = g
        return wildcard

    def map_profile(self, tenant: str, dnis: str | None) -> IVRProfile | None:
        return self.dnis_map.lookup(tenant, dnis)


def _name(section: str) -> str:
    return section.split(":", 1)[1].split("/", 1)[0]


def _members(values, with_capacity=True):
    out = []
    for host, port, cap in values["members"]:
        out.append(Member(host, port, cap if with_capacity else None))
    return tuple(out)


def build(config: Config) -> RMConfig:
    """The RM model from a validated config; cross-section errors raise ConfigError."""
    tenants: dict[str, Tenant] = {}
    for v in config.matching("tenant:*"):
        name = _name(v.name)
        tenants[name] = Tenant(name, v["dbid-path"], v["default-ivr-profile"])
    if not tenants:
        tenants["Environment"] = Tenant("Environment", "1")

    def tenant_of(v, option="tenant"):
        name = v["tenant"]
        if name is None:
            if len(tenants) == 1:
                return next(iter(tenants))
            raise config.error("required when more than one tenant is configured", v.name, option)
        if name not in tenants:
            raise config.error(f"no [tenant:{name}] section", v.name, option, name)
        return name

    gateways = []
    seen_gw: dict[tuple, str] = {}
    for v in config.matching("gateway-group:*"):
        ms = _members(v, with_capacity=False)
        for m in ms:
            key = (m.host, m.port)
            if key in seen_gw:
                raise config.error(f"{m.key} is already in [{seen_gw[key]}]", v.name, "members", m.key)
            seen_gw[key] = v.name
        gateways.append(GatewayGroup(_name(v.name), ms, tenant_of(v), int(v["use-cti"]),
                                     v["remove-ruri-capability-on-fallback"]))

    def monitoring(v):
        return Monitoring(v["monitor-method"], v["monitor-interval"], v["monitor-timeout"],
                          v["monitor-failure-threshold"], v["monitor-success-threshold"])

    def resource_members(v):
        ms = _members(v)
        for m in ms:
            if m.port is None:
                raise config.error("a resource member needs a port", v.name, "members", m.host)
        if v["load-balance-scheme"] == "least-percent-usage":
            for m in ms:
                if not m.capacity:
                    raise config.error("least-percent-usage needs a capacity on every member (host:port/N)",
                                       v.name, "members", m.key)
        return ms

    ctics: dict[str, ResourceGroup] = {}
    for v in config.matching("ctic-group:*"):
        if v.name.count("/"):
            continue
        tenant = tenant_of(v)
        if tenant in ctics:
            # "there can be only one CTI Connector Resource Group per tenant" (docs/gvp-rm-ctic.rst §2.6)
            raise config.error(f"tenant {tenant} already has [ctic-group:{ctics[tenant].name}]", v.name, "tenant")
        ctics[tenant] = ResourceGroup(
            "ctic", _name(v.name), resource_members(v), v["load-balance-scheme"], v["port-capacity"],
            v["transport"], monitoring(v), tenant,
            fail_over_cti_handling=v["fail-over-cti-handling"],
            cti_unavailable_action=v["cti-unavailable-action"],
            cti_unavailable_respcode=v["cti-unavailable-respcode"],
        )

    for g, v in zip(gateways, config.matching("gateway-group:*")):
        if g.use_cti and g.tenant not in ctics:
            raise config.error(f"use-cti={g.use_cti} needs a [ctic-group:...] for tenant {g.tenant}",
                               v.name, "use-cti", str(g.use_cti))

    mcps = []
    for v in config.matching("mcp-group:*"):
        mcps.append(ResourceGroup(
            "mcp", _name(v.name), resource_members(v), v["load-balance-scheme"], v["port-capacity"],
            v["transport"], monitoring(v), capabilities=tuple(v["capabilities"]),
        ))

    policy = {_name(v.name): v for v in config.matching("ivr-profile:*/gvp.policy")}
    params = {_name(v.name): v for v in config.matching("ivr-profile:*/gvp.service-parameters")}
    sub_sections = list(policy.values()) + list(params.values())
    profiles: dict[str, IVRProfile] = {}
    for v in config.matching("ivr-profile:*"):
        if "/" in v.name:
            continue
        name = _name(v.name)
        pol = policy.get(name)
        par = params.get(name)
        service_parameters = ()
        if par is not None:
            service_parameters = tuple((k, val) for k, val in par.items() if val is not None)
        profiles[name] = IVRProfile(
            name, tenant_of(v), v["dnis"], v["voicexml-url"], v["service-type"],
            pol["cti-allow"] if pol is not None else None,
            pol["use-same-gateway"] if pol is not None else "Always",
            service_parameters,
        )
    for v in sub_sections:
        if _name(v.name) not in profiles:
            raise config.error(f"no [ivr-profile:{_name(v.name)}] section for this one", v.name)
    for t in tenants.values():
        if t.default_ivr_profile and t.default_ivr_profile not in profiles:
            raise config.error(f"no [ivr-profile:{t.default_ivr_profile}] section",
                               f"tenant:{t.name}", "default-ivr-profile", t.default_ivr_profile)
        if t.default_ivr_profile and profiles[t.default_ivr_profile].tenant != t.name:
            raise config.error("that profile belongs to another tenant",
                               f"tenant:{t.name}", "default-ivr-profile", t.default_ivr_profile)

    rm = config["rm"]
    return RMConfig(
        tenants, gateways, ctics, mcps, profiles,
        sip_header_for_cti_dnis=rm["sip-header-for-cti-dnis"],
        cti_unavailable_action=rm["cti-unavailable-action"],
        cti_unavailable_respcode=rm["cti-unavailable-respcode"],
        datanodes=rm["datanodes"],
        session_timeout=rm["session-timeout"],
        max_sessions=rm["max-sessions"],
    )
