# -*- test-case-name: tests.rm.test_rm_config -*-
"""
The Resource Manager's INI schema.

Layout (the section prefixes are ours; option names inside them keep the
Genesys spelling wherever the references document one):

- C{[rm]}: server options.  Genesys writes them C{rm.<option>}
  (C{rm.cti-unavailable-action}); here the section is C{rm} and the option is
  the rest of the name, the way C{gvp.policy.use-same-gateway} is the option
  C{use-same-gateway} of section C{gvp.policy}.
- C{[cdr]}: where CDRs go (ours).
- C{[tenant:NAME]}: a tenant (ours).
- C{[gateway-group:NAME]}, C{[ctic-group:NAME]}, C{[mcp-group:NAME]}: logical
  resource groups; GVP keeps LRGs as sections of the RM application (S9),
  with C{use-cti}, C{cti-unavailable-action}, C{cti-unavailable-respcode},
  C{fail-over-cti-handling} and C{remove-ruri-capability-on-fallback} as
  options of the section.
- C{[ivr-profile:NAME]}: an IVR Profile (tenant, DNIS mapping, VoiceXML page:
  ours), with its Genesys sections as C{[ivr-profile:NAME/gvp.policy]} and
  C{[ivr-profile:NAME/gvp.service-parameters]}.
"""

from __future__ import annotations

import re

from ctic.config import Option, Section, boolean, choice, integer, listof, number, string
from ctic.sip.service import sip_section

G = "genesys"


def action(text: str):
    """C{reject} | C{answer} | C{script;<service-type>;<URL>} (S9)."""
    low = text.strip()
    if low.lower() in ("reject", "answer"):
        return (low.lower(),)
    parts = low.split(";", 2)
    if len(parts) == 3 and parts[0].lower() == "script" and parts[1] and parts[2]:
        return ("script", parts[1], parts[2])
    raise ValueError("expected reject, answer or script;<service-type>;<URL>")


action.describe = "reject, answer or script;<service-type>;<URL>"


def respcodes(text: str):
    """C{none}/empty: an empty list; else SIP codes separated by C{;} (S9)."""
    if not text.strip() or text.strip().lower() == "none":
        return ()
    out = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or not 300 <= int(part) <= 699:
            raise ValueError(f"{part!r} is not a SIP failure code (300..699)")
        out.append(int(part))
    return tuple(out)


respcodes.describe = "none, or SIP response codes separated by ';'"


def optional_bool(text: str):
    if not text.strip():
        return None
    return boolean(text)


optional_bool.describe = "true/false (unset: not configured)"

_MEMBER = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?::(?P<port>\*|\d{1,5}))?(?:/(?P<cap>\d+))?$")


def member(text: str):
    """C{host[:port][/capacity]}; port C{*} (or none) matches any port."""
    m = _MEMBER.match(text.strip())
    if not m:
        raise ValueError("expected host[:port][/capacity]")
    host = m["host"].strip("[]")
    port = m["port"]
    if port in (None, "*"):
        port = None
    else:
        port = int(port)
        if not 1 <= port <= 65535:
            raise ValueError("port must be 1..65535")
    cap = int(m["cap"]) if m["cap"] else None
    return host, port, cap


member.describe = "host[:port][/capacity]"
members = listof(member)


def dnis_rules(text: str):
    """Exact numbers, ranges C{first-last}, patterns with C{*}/C{?}/C{x} (any digit), C{re:...}."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("re:"):
            try:
                out.append(("re", re.compile(part[3:])))
            except re.error as e:
                raise ValueError(f"bad regular expression {part[3:]!r}: {e}") from None
        elif re.fullmatch(r"\d+-\d+", part):
            lo, hi = part.split("-", 1)
            if len(lo) != len(hi) or int(lo) > int(hi):
                raise ValueError(f"range {part!r}: ends must have the same length, first <= last")
            out.append(("range", lo, hi))
        elif any(c in part for c in "*?xX"):
            out.append(("glob", part))
        elif re.fullmatch(r"[0-9A-Za-z+#.\-_]+", part):
            out.append(("exact", part))
        else:
            raise ValueError(f"{part!r} is not a number, range, pattern or re:...")
    return tuple(out)


dnis_rules.describe = "numbers, ranges a-b, patterns (* ? x) or re:REGEX, separated by ','"


def header_name(text: str):
    if not re.fullmatch(r"[A-Za-z0-9.!%*_+`'~\-]+", text):
        raise ValueError("expected a SIP header name")
    return text


header_name.describe = "SIP header name"


def service_parameter(text: str):
    """C{fixed,<value>} (docs/gvp-rm-ctic.rst §2.5: TransferOnCTI's value type is fixed); a bare value is fixed too (ours)."""
    kind, sep, value = text.partition(",")
    if sep and kind.strip().lower() == "fixed":
        return value.strip()
    if sep and kind.strip().lower() in ("sipreq", "sipreqcond", "sipreqsingle"):
        raise ValueError(f"value type {kind.strip()!r} is not supported; use fixed,<value>")
    return text.strip()


service_parameter.describe = "fixed,<value>"


def yes_no(text: str):
    """TransferOnCTI: Yes or No, value type fixed (docs/gvp-rm-ctic.rst §2.5)."""
    value = service_parameter(text)
    if value.lower() not in ("yes", "no"):
        raise ValueError("expected fixed,Yes or fixed,No")
    return value.capitalize()


yes_no.describe = "fixed,Yes or fixed,No"

SCHEMES = ("round-robin", "least-usage", "least-percent-usage")


def _monitoring(default_interval=10.0):
    return (
        Option("load-balance-scheme", choice(*SCHEMES), "round-robin",
               "round-robin, least-usage or least-percent-usage (name in circulation, unverified: ours)"),
        Option("port-capacity", integer(0), 0, "most calls the group takes at once; 0: no limit (ours)"),
        Option("monitor-method", choice("OPTIONS", "none"), "OPTIONS", "health probe method (ours)"),
        Option("monitor-interval", number(0.1), default_interval, "seconds between OPTIONS probes (ours)"),
        Option("monitor-timeout", number(0.1), 4.0, "seconds before a probe counts as failed (ours)"),
        Option("monitor-failure-threshold", integer(1), 3, "failed probes in a row that mark a member down (ours)"),
        Option("monitor-success-threshold", integer(1), 2, "good probes in a row that bring a member back (ours)"),
        Option("transport", choice("UDP", "TCP", "TLS"), "UDP", "transport to the members (ours)"),
    )


RM = Section("rm", (
    Option("sip-header-for-cti-dnis", header_name, None,
           "rm.sip-header-for-cti-dnis: header holding the DNIS on INVITEs from a CTIC "
           "(unset: the Request-URI user part)", vendor=G),
    Option("cti-unavailable-action", action, None,
           "rm.cti-unavailable-action: reject, answer or script;<service-type>;<URL>; "
           "unset: try the next CTIC", vendor=G),
    Option("cti-unavailable-respcode", respcodes, (),
           "rm.cti-unavailable-respcode: CTIC codes meaning the CTI link is down", vendor=G),
    Option("datanodes", choice("1", "1|2", "2|1"), "1", "gvp.rm.datanodes value to emit (ours)"),
    Option("session-timeout", number(1), 14400.0, "seconds before a session that never ended is closed (ours)"),
    Option("max-sessions", integer(1), 100000, "most sessions at once; more: 503 (ours)"),
), doc="RM server options")

CDR = Section("cdr", (
    Option("sink", choice("sqlite", "none"), "sqlite", "where CDRs go (ours)"),
    Option("sqlite-path", string, "var/rm-cdr.sqlite", "SQLite file for CDRs (ours)"),
    Option("batch-size", integer(1, 10000), 200, "most CDRs written in one transaction (ours)"),
), doc="CDR storage (ours)")

TENANT = Section("tenant:*", (
    Option("dbid-path", string, "1", "tenant DBID path for gvp.rm.tenant-id, e.g. 1.103.101 (ours)"),
    Option("default-ivr-profile", string, None, "IVR Profile for a DNIS that maps to none (ours)"),
), doc="tenants (ours)")

GATEWAY_GROUP = Section("gateway-group:*", (
    Option("members", members, (), "gateways: host[:port], port * or none = any (ours)", required=True),
    Option("tenant", string, None, "tenant owning the gateways (ours; default: the only tenant)"),
    Option("use-cti", choice("0", "1", "2"), "0", "0 no CTI; 1 CTI before mapping; 2 map, then CTI", vendor=G),
    Option("remove-ruri-capability-on-fallback", boolean, False,
           "true: ignore gvp.rm.resource-req on VoiceXML fallback after a CTIC 404", vendor=G),
), doc="gateway resource groups")

CTIC_GROUP = Section("ctic-group:*", (
    Option("members", members, (), "CTI Connectors: host:port[/capacity] (ours)", required=True),
    Option("tenant", string, None, "tenant served (one CTIC group per tenant) (ours)"),
    Option("fail-over-cti-handling", action, ("reject",),
           "when every CTIC failed, is down, or the group is at capacity", vendor=G),
    Option("cti-unavailable-action", action, None,
           "action for a listed CTIC code (unset: rm.cti-unavailable-action)", vendor=G),
    Option("cti-unavailable-respcode", respcodes, None,
           "codes meaning CTI is unavailable; none: retry on any error; unset: rm.cti-unavailable-respcode",
           vendor=G),
) + _monitoring(), doc="CTI Connector resource groups")

MCP_GROUP = Section("mcp-group:*", (
    Option("members", members, (), "Media Control Platforms: host:port[/capacity] (ours)", required=True),
    Option("capabilities", listof(string), (), "values of gvp.rm.resource-req this group satisfies (ours)"),
) + _monitoring(), doc="Media Control Platform resource groups")

PROFILE_POLICY = Section("ivr-profile:*/gvp.policy", (
    Option("cti-allow", optional_bool, None, "use-cti=2: false non-CTI; true or unset CTI", vendor=G),
    Option("use-same-gateway", choice("Always", "Never"), "Always",
           "CTIC-initiated outbound calls go to the gateway the call came from (Always is Genesys's default; "
           "Never is ours)", vendor=G),
), doc="IVR Profile policy")


class ParameterSection(Section):
    """A section whose options are named by the operator: C{<service-type>.<name>}."""

    def option(self, name):
        found = super().option(name)
        if found is not None:
            return found
        if "." in name.strip("."):
            return Option(name, service_parameter, None, "service parameter", vendor=G)
        return None


PROFILE_PARAMETERS = ParameterSection("ivr-profile:*/gvp.service-parameters", (
    Option("cti.DefaultAgent", service_parameter, None, "CTI service parameter", vendor=G),
    Option("cti.TransferOnCTI", yes_no, None,
           "CTI service parameter (Yes/No, fixed)", vendor=G),
), doc="IVR Profile service parameters: <service-type>.<name> = fixed,<value>")

PROFILE = Section("ivr-profile:*", (
    Option("tenant", string, None, "tenant owning the profile (ours; default: the only tenant)"),
    Option("dnis", dnis_rules, (), "DNIS that map to this profile (ours)"),
    Option("voicexml-url", string, "file:///var/lib/ctic/default.vxml", "VoiceXML page the MCP runs (ours)"),
    Option("service-type", string, "voicexml", "service type requested from the MCP (ours)"),
), doc="IVR Profiles")

SECTIONS = (
    sip_section(udp_port=5060, tcp_port=5060), RM, CDR, TENANT, GATEWAY_GROUP, CTIC_GROUP, MCP_GROUP,
    PROFILE_POLICY, PROFILE_PARAMETERS, PROFILE,
)
