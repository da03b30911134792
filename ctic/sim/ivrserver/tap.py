"""
C{twistd -n ivr-server-sim --config etc/ivr-server-sim.ini}: the IVR Server simulator.

Option names that Genesys documents for IVR Server keep their names
(C{gli-server-address}, C{gli-client-list}, C{gli-keep-alive-interval},
C{gli-keep-alive-tries}, C{target-encoding}, C{dtd-file}, C{flow-control},
C{wait-for-ringing}, C{Router Timeout}); the sections that hold the last
four, and everything else, are ours.
"""

from __future__ import annotations

from ctic.config import Option, Schema, Section, boolean, choice, hostport, integer, listof, number, string
from ctic.ivrserver import gli
from ctic.service import ConfigOptions, tune_gc
from ctic.sim.ivrserver.model import Agent, Port, Route, SimModel, pairs, user_data

G = "genesys"

SCHEMA = Schema("ivr-server-sim", (
    Section("gli_server_group_1", (
        Option("gli-server-address", listof(hostport), [("127.0.0.1", 3021)],
               "Address(es) the GLI listener binds", vendor=G),
        Option("gli-client-list", listof(string), [],
               "Clients allowed (host or host:port, * any port); empty: anyone", vendor=G),
        Option("gli-keep-alive-interval", number(), -1.0,
               "Seconds between server keep-alives when idle; -1 disables", vendor=G),
        Option("gli-keep-alive-tries", integer(1), 1,
               "Silent intervals before the server closes a link", vendor=G),
    ), doc="The GLI listener, as in the TServer_IVR application"),
    Section("XmlSap", (
        Option("target-encoding", choice("ISO-8859-1", "UTF-8"), "ISO-8859-1",
               "Encoding of the XML the server sends", vendor=G),
        Option("dtd-file", string, "IServer.dtd", "DTD name written in the DOCTYPE", vendor=G),
    )),
    Section("ivr-server-sim", (
        Option("server-version", string, "IVR Server:8.1.001.01 (ctic ivr-server-sim)",
               "LoginResp IServerVer"),
        Option("client-names", listof(string), [],
               "IVR object names (LoginReq ClientName) the server knows; others get NoSuchClient; empty: any"),
        Option("flow-control", boolean, False, "Start with FlowControl On", vendor=G),
        Option("init-in-progress", number(0), 0.0,
               "Seconds after (re)start during which logins get Status=InitInProgress"),
        Option("wait-for-ringing", number(0), 60.0,
               "Seconds a Behind call waits for Ringing before EndCall Timeout", vendor=G),
        Option("Router Timeout", number(0), 4.0, "Seconds URS may take before default routing", vendor=G),
        Option("ring-delay", number(0), 0.0, "Behind ports: seconds from NewCall to Ringing"),
        Option("answer-delay", number(0), 0.0, "Seconds from Ringing (or Dialing) to Established"),
        Option("unknown-dest", choice("answer", "busy", "error"), "answer",
               "How a transfer destination that is not an [Agent*] behaves"),
        Option("t-servers", listof(string), ["TServer_IVR"], "T-Servers reported in MonitorInfo"),
        Option("statistics", pairs, {}, "Statistic values for PeekStatReq/GetStatReq: name=value;..."),
        Option("access-numbers", pairs, {}, "AccessNumGet answers by Location: location=number;..."),
        Option("max-message-size", integer(64, gli.MAX_PAYLOAD), gli.MAX_PAYLOAD, "Largest XML payload, bytes"),
    ), doc="The simulator itself (ours)"),
    Section("faults", (
        Option("reply-delay", number(0), 0.0, "Seconds before every reply"),
        Option("drop-link-after", integer(0), 0, "Close a link after this many messages from it; 0: never"),
        Option("error-frame-after", integer(0), 0, "Send a GLI Error frame after this many messages; 0: never"),
        Option("write-chunk", integer(0), 0, "Write frames in pieces of this many bytes; 0: whole frames"),
    ), doc="Fault injection (ours)"),
    Section("Port*", (
        Option("port", string, required=True, doc="IVR port number (NewCall CalledNum)"),
        Option("mode", choice("front", "behind"), "behind", "In-Front virtual switch or premise switch"),
        Option("dn", string, None, "PortDN (default: the port number)"),
        Option("ani", string, None, "ANI the premise T-Server reports (default: generated)"),
        Option("dnis", string, None, "DNIS the premise T-Server reports (default: the DN)"),
        Option("conn-id", string, None, "ConnId (default: generated)"),
        Option("uuid", string, None, "UUID (default: generated)"),
        Option("other-dn", string, None, "OtherDN in CallInfoResp"),
        Option("user-data", user_data, (), "Data attached to the call: key=value;..."),
        Option("ring", boolean, True, "False: never ring (EndCall Timeout after wait-for-ringing)"),
        Option("hangup-after", number(0), 0.0, "Caller hangs up this many seconds after Established; 0: never"),
    ), doc="The directory: one section per IVR port (ours)"),
    Section("Route*", (
        Option("route-dn", string, required=True, doc="Routing point DN (RouteRequest RouteDN)"),
        Option("result", choice("route", "default", "timeout", "error"), "route", "What URS does"),
        Option("dest", string, None, "RouteResponse Dest"),
        Option("route-type", choice(*("Normal", "Reroute", "RerouteAttended", "RerouteConferenced")), "Normal",
               "RouteResponse RouteType for result=route"),
        Option("delay", number(0), 0.0, "Seconds before the answer"),
        Option("network", boolean, False, "Also a Network-mode route DN (NewCall CalledNum)"),
        Option("extensions", user_data, (), "RouteResponse ExtnsEx: key=value;..."),
    ), doc="The routing table (ours)"),
    Section("Agent*", (
        Option("dn", string, required=True, doc="Agent DN (transfer DestDN)"),
        Option("behaviour", choice("answer", "busy", "error"), "answer", "How the agent answers"),
        Option("tlib-error", string, "1183", "CallError TlibErrCode when behaviour=error"),
        Option("delay", number(0), 0.0, "Seconds before the agent answers"),
    ), doc="Simulated agents for transfers (ours)"),
))


def build(config):
    """The simulator's model, faults and listener settings from a loaded Config."""
    from ctic.sim.ivrserver.server import Faults

    sim = config["ivr-server-sim"]
    ports = {}
    for sec in config.matching("Port*"):
        p = Port(sec["port"], sec["mode"], sec["dn"], sec["ani"], sec["dnis"], sec["conn-id"], sec["uuid"],
                 sec["other-dn"], sec["user-data"], sec["ring"], sec["hangup-after"])
        if p.port in ports:
            raise config.error("IVR port appears twice", sec.name, "port", p.port)
        ports[p.port] = p
    routes = {}
    for sec in config.matching("Route*"):
        r = Route(sec["route-dn"], sec["result"], sec["dest"], sec["route-type"], sec["delay"], sec["network"],
                  sec["extensions"])
        if r.result == "route" and not r.dest:
            raise config.error("result=route needs a dest", sec.name, "dest")
        routes[r.route_dn] = r
    agents = {sec["dn"]: Agent(sec["dn"], sec["behaviour"], sec["tlib-error"], sec["delay"])
              for sec in config.matching("Agent*")}
    model = SimModel(
        server_version=sim["server-version"], client_names=tuple(sim["client-names"]),
        flow_control=sim["flow-control"], init_in_progress=sim["init-in-progress"],
        wait_for_ringing=sim["wait-for-ringing"], router_timeout=sim["Router Timeout"],
        ring_delay=sim["ring-delay"], answer_delay=sim["answer-delay"], unknown_dest=sim["unknown-dest"],
        t_servers=tuple(sim["t-servers"]), ports=ports, routes=routes, agents=agents,
        statistics=dict(sim["statistics"]), access_numbers=dict(sim["access-numbers"]),
    )
    f = config["faults"]
    faults = Faults(f["reply-delay"], f["drop-link-after"], f["error-frame-after"], f["write-chunk"])
    return model, faults


class Options(ConfigOptions):
    schema = SCHEMA
    defaultConfig = "etc/ivr-server-sim.ini"
    portHelp = "GLI listening port, overriding the port of [gli_server_group_1] gli-server-address (ours)"

    def port_overrides(self, port):
        def replace(text):
            hosts = [hostport(part)[0] for part in (text or "127.0.0.1:3021").split(",") if part.strip()]
            return ", ".join(f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts)

        return [("gli_server_group_1", "gli-server-address", replace)]

    def check(self, config):
        build(config)

    def summary(self, config):
        model, _ = build(config)
        return ["GLI listeners: " + ", ".join(f"TCP {h}:{p}" for h, p in config["gli_server_group_1"]["gli-server-address"]),
                f"{len(model.ports)} IVR ports, {len(model.routes)} routes, {len(model.agents)} agents"]


def makeService(options):
    from twisted.internet import reactor

    tune_gc()

    from ctic.sim.ivrserver.server import IVRServerSim, SimService

    config = options.config
    model, faults = build(config)
    gli_group = config["gli_server_group_1"]
    xml = config["XmlSap"]
    sim = IVRServerSim(
        reactor, model, faults, encoding=xml["target-encoding"], dtd_file=xml["dtd-file"],
        keepalive_interval=gli_group["gli-keep-alive-interval"], keepalive_tries=gli_group["gli-keep-alive-tries"],
        max_payload=config["ivr-server-sim"]["max-message-size"], client_list=gli_group["gli-client-list"],
    )
    return SimService(reactor, sim, gli_group["gli-server-address"])
