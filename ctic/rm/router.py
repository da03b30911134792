# -*- test-case-name: tests.rm.test_rm_routing -*-
"""
The Resource Manager's routing brain: a L{ctic.sip.proxy} router.

Plain Python: it takes requests, responses and the proxy's request context
and returns L{Forward}/L{Reject} decisions; time comes from an injected
clock.  The rules, and where each comes from (§n = docs/gvp-rm-ctic.rst §n,
which restates the GVP CTI Connector documentation):

- A call is a CTI call when it comes from a gateway resource whose group has
  C{use-cti} other than 0 (§2.1).  C{use-cti=0}: map the DNIS to an IVR
  Profile, send to an MCP.  C{use-cti=1}: to a CTIC, no mapping yet.
  C{use-cti=2}: map first; C{cti-allow=false} is non-CTI, true or unset is
  CTI, and the profile's CTI service parameters go to the CTIC as
  Request-URI parameters (§2.1).
- To a CTIC: C{X-Genesys-GVP-Session-ID} with C{gvp.rm.datanodes},
  C{gvp.rm.cti-call=1}, and C{gvp.rm.tenant-id} only when C{use-cti=2}
  (§2.2, §4.1).
- An INVITE from a CTIC: C{gvp.ctic.outbound} non-zero is outbound (to the
  gateway the call came from, C{use-same-gateway}); otherwise inbound: the
  DNIS comes from the header named by C{rm.sip-header-for-cti-dnis} (else the
  Request-URI user part), the call is mapped if it was not, C{gvp.rm.tenant-id}
  is added, and the 200 OK back to the CTIC carries
  C{X-Genesys-GVP-CTI-Params} when the mapping happened then (§4.3).
- An INVITE from an MCP (a new call) goes to the CTIC of its CTI session
  (which places it with C{gvp.ctic.outbound=1}), else to the gateway of its
  session, with the CTI service parameters as Request-URI parameters; so
  does a REFER from an MCP inside a CTI session (§2.8).
- A CTIC's failure: a code in C{cti-unavailable-respcode} applies
  C{cti-unavailable-action} (group, else C{rm.}); a 404 falls back to a
  VoiceXML resource (C{gvp.rm.resource-req} unless
  C{remove-ruri-capability-on-fallback}); anything else tries the next CTIC;
  none left, all down or the group at capacity applies
  C{fail-over-cti-handling} (§2.7).  Ours: a listed code is checked before
  the 404 fallback, and a listed code with no action set anywhere tries the
  next CTIC, as the GVP CTI Connector documentation says
  (§2.7) for an unset C{rm.cti-unavailable-action}.
"""

from __future__ import annotations

import random

from twisted.logger import Logger

from ctic.rm.headers import CDR, CTI_PARAMS, SESSION_ID, CDRHeader, SessionID, format_pairs, new_guid, tenant_id
from ctic.rm.resources import GroupState
from ctic.sip.headers import NameAddr
from ctic.sip.proxy import Forward, Reject
from ctic.sip.transport import uri_peer
from ctic.sip.uri import SIPURI, param_value, unescape, uri_user

log = Logger(namespace="ctic.rm.router")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE, PRACK"
CONSUMED_PARAMS = ("gvp.ctic.outbound", "gvp.rm.resource-req", "gvp-tenant-id", "transport", "lr", "maddr")


def header_dnis(value: str) -> str | None:
    """A DNIS from a header: the user part of a URI in it, or the text itself."""
    text = value.strip()
    if "sip:" in text or "sips:" in text or "tel:" in text or "<" in text:
        try:
            return uri_user(NameAddr.parse(text).uri)
        except Exception:
            return None
    return text or None


class RMRouter:
    """Routes calls among gateways, CTICs and MCPs; keeps sessions; writes CDRs."""

    def __init__(self, clock, config, sessions, rng=None):
        self.clock = clock
        self.config = config
        self.sessions = sessions
        sessions.on_end = self._release
        self.rng = rng or random.Random()
        self.ctic_groups = {t: GroupState(g) for t, g in config.ctic_groups.items()}
        self.mcp_groups = [GroupState(g) for g in config.mcp_groups]
        self.counts = {"forwarded": 0, "rejected": 0}
        # Set by the node to the proxy's own test (a URI that names this RM).
        self.is_us = lambda uri: False

    @property
    def groups(self):
        return list(self.ctic_groups.values()) + self.mcp_groups

    # --- classification --------------------------------------------------------

    def _ctic_member(self, host, port):
        for gs in self.ctic_groups.values():
            m = gs.member_for(host, port)
            if m is not None:
                return gs, m
        return None, None

    def _mcp_member(self, host, port):
        for gs in self.mcp_groups:
            m = gs.member_for(host, port)
            if m is not None:
                return m
        return None

    @staticmethod
    def _addresses(request):
        """
        The addresses a request's sender may be known by, for telling CTICs
        and MCPs from gateways (ours): the source host:port, then the top
        Via's sent-by and the Contact's host:port, which carry the listening
        port of a peer that sends over TCP from an ephemeral port.  An
        advertised address counts only on the source's own IP address, so
        no peer can pass for another host's resource.
        """
        src = request.source
        host, seen = src.host, src.port
        yield host, seen
        via = request.top_via
        if via is not None and via.host == host and (via.port or 5060) != seen:
            seen = via.port or 5060
            yield host, seen
        for contact in request.contact[:1]:
            uri = getattr(contact, "uri", None)
            if getattr(uri, "host", None) == host and (uri.port or 5060) not in (seen, src.port):
                yield host, uri.port or 5060

    # --- requests -----------------------------------------------------------------

    def route_request(self, request, ctx):
        if ctx.in_dialog:
            return self._in_dialog(request, ctx)
        method = request.method
        if method == "OPTIONS":
            return Reject(200, headers={"Allow": ALLOW, "Accept": "application/sdp"})
        if method != "INVITE":
            return Reject(405, headers={"Allow": ALLOW})
        src = request.source
        for host, port in self._addresses(request):
            gs, m = self._ctic_member(host, port)
            if m is not None:
                return self._from_ctic(request, ctx, gs)
            if self._mcp_member(host, port) is not None:
                return self._from_mcp(request, ctx)
        group = self.config.gateway_group_for(src.host, src.port)
        if group is not None:
            return self._from_gateway(request, ctx, group)
        log.warn("Rejected INVITE {call_id} from {peer}: not a configured resource", call_id=request.call_id,
                 peer=str(src))
        return self._reject(403, "Not a configured resource")

    def _reject(self, status, reason=None, headers=None):
        self.counts["rejected"] += 1
        return Reject(status, reason, headers or {})

    def _new_session(self, request, tenant, **kw):
        if len(self.sessions) >= self.config.max_sessions:
            return None
        sid = SessionID.parse(request.headers.get(SESSION_ID) or "")
        guid = new_guid(self.rng)
        if sid is not None and sid.guid not in self.sessions.by_guid:
            guid = sid.guid  # keep an upstream GVP session id (ours)
        return self.sessions.create(guid, tenant, **kw)

    def _from_gateway(self, request, ctx, group):
        tenant = group.tenant
        ani = uri_user(request.from_.uri) if request.from_ else None
        dnis = uri_user(request.uri)
        session = self._new_session(request, tenant, use_cti=group.use_cti, gateway_group=group,
                                    gateway_peer=request.source, ani=ani, dnis=dnis)
        if session is None:
            return self._reject(503, "Too many sessions")
        self.sessions.add_leg(session, request.call_id, "gateway", request.source, request)
        ctx.data["session"] = session
        if group.use_cti == 1:
            session.cti = True
            log.info("CTI call {call_id} from gateway group [{group}] (use-cti=1): to a CTIC before mapping",
                     call_id=request.call_id, group=group.name)
            return self._to_ctic(request, ctx, session)
        profile = self.config.map_profile(tenant, dnis)
        if profile is None:
            log.info("No IVR Profile for DNIS {dnis} of tenant {tenant}", dnis=dnis, tenant=tenant)
            return self._reject(404, "No IVR Profile for this DNIS")
        session.profile = profile
        if group.use_cti == 2 and profile.cti_allow is not False:
            session.cti = True
            log.info("CTI call {call_id} mapped to {profile} (use-cti=2, cti-allow={allow})",
                     call_id=request.call_id, profile=profile.name, allow=profile.cti_allow)
            return self._to_ctic(request, ctx, session)
        return self._to_mcp(request, ctx, session)

    # --- to a CTIC ----------------------------------------------------------------

    def _session_id(self, session, cti: bool, with_tenant: bool) -> str:
        sid = SessionID(session.guid, {"gvp.rm.datanodes": self.config.datanodes})
        if cti:
            sid.params["gvp.rm.cti-call"] = "1"
        if with_tenant and session.profile is not None:
            t = self.config.tenants.get(session.profile.tenant)
            sid.params["gvp.rm.tenant-id"] = tenant_id(t.dbid_path if t else "1", session.profile.name)
        return str(sid)

    def _record_route(self):
        # §2.2: RM's Record-Route carries gvp.rm.datanodes, '|' as %7C inside a URI.
        return {"gvp.rm.datanodes": self.config.datanodes.replace("|", "%7C")}

    def _to_ctic(self, request, ctx, session, status=None):
        gs = self.ctic_groups.get(session.tenant)
        tried = ctx.data.setdefault("ctic_tried", set())
        m = gs.pick(exclude=tried) if gs is not None else None
        if m is None:
            why = "at capacity" if gs is not None and gs.at_capacity else (
                "all down" if gs is not None and gs.all_down else "every CTIC tried")
            log.warn("No CTIC for {call_id} ({why}): fail-over-cti-handling", call_id=request.call_id, why=why)
            action = gs.group.fail_over_cti_handling if gs is not None else ("reject",)
            return self._cti_action(request, ctx, session, action, status, "fail-over-cti-handling")
        tried.add(m.member.key)
        GroupState.acquire(m)
        session.ctic = m
        session.ctic_key = m.member.key
        ctx.data["kind"] = "to-ctic"
        params = {k: v for k, v in request.uri.params.items() if k.lower() not in CONSUMED_PARAMS}
        if session.use_cti == 2 and session.profile is not None:
            for name, value in session.profile.cti_parameters:
                params[name] = param_value(value)
        uri = SIPURI(m.member.host, user=getattr(request.uri, "user", None), port=m.member.port, params=params)
        if m.peer.transport != "UDP":
            uri.params["transport"] = m.peer.transport.lower()
        log.info("INVITE {call_id} to CTIC {member} of [{group}] ({scheme}, usage {usage})",
                 call_id=request.call_id, member=m.member.key, group=m.group.name, scheme=m.group.scheme,
                 usage=m.usage)
        self.sessions.routed(session, request.call_id, "CTIC", m, "next CTIC" if status else "CTI call", status)
        self.counts["forwarded"] += 1
        return Forward(peer=m.peer, uri=uri,
                       headers={SESSION_ID: self._session_id(session, True, session.use_cti == 2)},
                       record_route=self._record_route())

    def _release_ctic(self, session):
        if session.ctic is not None:
            GroupState.release(session.ctic)
            session.ctic = None

    def _ctic_failed(self, response, ctx, session):
        """§2.7: what to do about a CTIC's failure response to the initial INVITE."""
        request = ctx.request
        status = response.status
        gs = self.ctic_groups.get(session.tenant)
        self._release_ctic(session)
        group = gs.group
        codes = group.cti_unavailable_respcode
        if codes is None:
            codes = self.config.cti_unavailable_respcode
        log.info("CTIC {member} answered {status} to {call_id}", member=session.ctic_key, status=status,
                 call_id=request.call_id)
        if status in codes:
            action = group.cti_unavailable_action or self.config.cti_unavailable_action
            if action is not None:
                return self._cti_action(request, ctx, session, action, status, "cti-unavailable-action")
        elif status == 404:
            return self._vxml_fallback(request, ctx, session)
        return self._to_ctic(request, ctx, session, status)

    def _cti_action(self, request, ctx, session, action, status, option):
        """C{reject} | C{answer} | C{script;<service-type>;<URL>}."""
        session.extra["rm.cti-failure"] = f"{option}={';'.join(action)}"
        if action[0] == "reject":
            log.info("Rejecting {call_id} by {option}", call_id=request.call_id, option=option)
            return self._reject(status or 503)
        session.cti = False
        if action[0] == "answer":
            if session.profile is None:
                session.profile = self.config.map_profile(session.tenant, session.dnis)
            if session.profile is None:
                return self._reject(404, "No IVR Profile for this DNIS")
            log.info("Answering {call_id} as a non-CTI call by {option}", call_id=request.call_id, option=option)
            return self._to_mcp(request, ctx, session)
        _, service_type, url = action
        if session.profile is None:
            session.profile = self.config.map_profile(session.tenant, session.dnis)
        log.info("Script {service_type} {url} for {call_id} by {option}", service_type=service_type, url=url,
                 call_id=request.call_id, option=option)
        return self._to_mcp(request, ctx, session, script=(service_type, url))

    def _vxml_fallback(self, request, ctx, session):
        """A CTIC 404: VoiceXML resource, capability per remove-ruri-capability-on-fallback (§2.7)."""
        session.cti = False
        session.extra["rm.cti-failure"] = "404-vxml-fallback"
        if session.profile is None:
            session.profile = self.config.map_profile(session.tenant, session.dnis)
        if session.profile is None:
            return self._reject(404, "No IVR Profile for this DNIS")
        group = session.gateway_group
        use_cap = not (group is not None and group.remove_ruri_capability_on_fallback)
        log.info("CTIC 404 for {call_id}: VoiceXML fallback (gvp.rm.resource-req {used})",
                 call_id=request.call_id, used="used" if use_cap else "ignored")
        return self._to_mcp(request, ctx, session, use_capability=use_cap)

    # --- to an MCP ----------------------------------------------------------------

    def _pick_mcp(self, capability):
        groups = self.mcp_groups
        if capability:
            groups = [g for g in groups if capability in g.group.capabilities]
        for gs in groups:
            m = gs.pick()
            if m is not None:
                return m
        return None

    def _to_mcp(self, request, ctx, session, use_capability=True, script=None):
        capability = request.uri.params.get("gvp.rm.resource-req") if use_capability else None
        m = self._pick_mcp(unescape(capability) if capability else None)
        if m is None:
            log.warn("No MCP for {call_id} (capability {cap})", call_id=request.call_id, cap=capability)
            return self._reject(503, "No media resource available")
        if session.mcp is not None:
            GroupState.release(session.mcp)
        GroupState.acquire(m)
        session.mcp = m
        session.mcp_key = m.member.key
        ctx.data["kind"] = "to-mcp"
        params = {k: v for k, v in request.uri.params.items() if k.lower() not in CONSUMED_PARAMS}
        profile = session.profile
        if script is not None:
            service_type, url = script
            # NETANN (RFC 4240): annc + play=; anything else as a dialog + voicexml= (ours).
            if service_type.lower() in ("annc", "announcement"):
                user, params["play"] = "annc", param_value(url)
            else:
                user, params["voicexml"] = "dialog", param_value(url)
        else:
            user = "dialog"
            params["voicexml"] = param_value(profile.voicexml_url)
            for name, value in profile.parameters(profile.service_type):
                params[name] = param_value(value)
        uri = SIPURI(m.member.host, user=user, port=m.member.port, params=params)
        if m.peer.transport != "UDP":
            uri.params["transport"] = m.peer.transport.lower()
        log.info("INVITE {call_id} to MCP {member} for profile {profile}", call_id=request.call_id,
                 member=m.member.key, profile=profile.name if profile else None)
        self.sessions.routed(session, request.call_id, "MCP", m,
                             session.extra.get("rm.cti-failure") or ("CTI call" if session.cti else "IVR Profile"))
        self.counts["forwarded"] += 1
        return Forward(peer=m.peer, uri=uri, headers={SESSION_ID: self._session_id(session, session.cti, True)},
                       record_route=self._record_route())

    # --- from a CTIC --------------------------------------------------------------

    def _from_ctic(self, request, ctx, gs):
        sid = SessionID.parse(request.headers.get(SESSION_ID) or "")
        session = self.sessions.by_guid.get(sid.guid) if sid is not None else None
        outbound = request.uri.params.get("gvp.ctic.outbound")
        if outbound not in (None, "", "0"):
            return self._ctic_outbound(request, ctx, session)
        if session is None:
            session = self._new_session(request, gs.group.tenant, use_cti=0, cti=True)
            if session is None:
                return self._reject(503, "Too many sessions")
        ctx.data["session"] = session
        self.sessions.add_leg(session, request.call_id, "ctic-mcp", request.source, request)
        dnis = None
        name = self.config.sip_header_for_cti_dnis
        if name:
            value = request.headers.get(name)
            if value is not None:
                dnis = header_dnis(str(value))
        if dnis is None:
            dnis = uri_user(request.uri)
        session.dnis = dnis or session.dnis
        if request.from_ is not None:
            session.ani = uri_user(request.from_.uri) or session.ani
        if session.profile is None:
            profile = self.config.map_profile(session.tenant, session.dnis)
            if profile is None:
                log.info("No IVR Profile for CTIC DNIS {dnis}", dnis=session.dnis)
                return self._reject(404, "No IVR Profile for this DNIS")
            session.profile = profile
            ctx.data["mapped_now"] = True
            log.info("Mapped CTI call {guid} to {profile} from the CTIC's INVITE (DNIS {dnis})",
                     guid=session.guid, profile=profile.name, dnis=session.dnis)
        return self._to_mcp(request, ctx, session)

    def _gateway_target(self, request, session):
        """Where an outbound call goes: the session's gateway, else a gateway the Request-URI names."""
        same = session.profile.use_same_gateway if session is not None and session.profile else "Always"
        if session is not None and session.gateway_peer is not None and same == "Always":
            return session.gateway_peer
        uri = request.uri
        host, port = getattr(uri, "host", None), getattr(uri, "port", None) or 5060
        if host is not None:
            group = self.config.gateway_group_for(host, port)
            if group is not None:
                return uri_peer(uri)
        return None

    def _ctic_outbound(self, request, ctx, session):
        peer = self._gateway_target(request, session)
        if peer is None:
            return self._reject(404, "No gateway for this outbound call")
        if session is not None:
            ctx.data["session"] = session
            self.sessions.add_leg(session, request.call_id, "ctic-outbound", peer, request)
        uri = request.uri.copy()
        uri.params.pop("gvp.ctic.outbound", None)
        log.info("CTIC outbound INVITE {call_id} to gateway {peer}", call_id=request.call_id, peer=str(peer))
        ctx.data["kind"] = "outbound"
        self.counts["forwarded"] += 1
        return Forward(peer=peer, uri=uri, record_route=self._record_route())

    # --- from an MCP --------------------------------------------------------------

    def _from_mcp(self, request, ctx):
        """
        An MCP's new INVITE.  In a CTI session whose CTIC is known it goes to
        that CTIC ("Outbound Calls": the RM routes the MCP's outbound calls
        to the CTI Connector; docs/gvp-rm-ctic.rst: requests from the MCP go
        to the CTIC that set the call up), which places it on the network
        with C{gvp.ctic.outbound=1}; otherwise to the session's gateway.
        Either way the CTI service parameters (C{DefaultAgent},
        C{TransferOnCTI}) ride as Request-URI parameters.
        """
        sid = SessionID.parse(request.headers.get(SESSION_ID) or "")
        session = self.sessions.by_guid.get(sid.guid) if sid is not None else None
        to_ctic = session is not None and session.cti and session.ctic is not None
        peer = session.ctic.peer if to_ctic else self._gateway_target(request, session)
        if peer is None:
            return self._reject(404, "No gateway for this outbound call")
        uri = request.uri.copy()
        if to_ctic:
            uri.host, uri.port = session.ctic.member.host, session.ctic.member.port
        if session is not None:
            ctx.data["session"] = session
            self.sessions.add_leg(session, request.call_id, "mcp-outbound", peer, request)
            if session.cti and session.profile is not None:
                for name, value in session.profile.cti_parameters:
                    uri.params[name] = param_value(value)
        log.info("MCP outbound INVITE {call_id} to {kind} {peer}", call_id=request.call_id,
                 kind="CTIC" if to_ctic else "gateway", peer=str(peer))
        ctx.data["kind"] = "outbound"
        self.counts["forwarded"] += 1
        headers = {SESSION_ID: request.headers.get(SESSION_ID)} if to_ctic else {}
        return Forward(peer=peer, uri=uri, headers=headers, record_route=self._record_route())

    # --- in dialog ----------------------------------------------------------------

    def _in_dialog(self, request, ctx):
        session = self.sessions.for_call_id(request.call_id)
        if session is None:
            return None
        ctx.data["session"] = session
        method = request.method
        src = request.source
        direct = self._not_record_routed(request, session)
        if method == "BYE":
            _, m = self._ctic_member(src.host, src.port)
            if m is not None:
                value = request.headers.get(CDR)
                if value is not None:
                    session.merge_cdr(CDRHeader.parse(str(value)))
        elif method == "REFER" and session.cti and session.profile is not None:
            if self._mcp_member(src.host, src.port) is not None and session.profile.cti_parameters:
                uri = request.uri.copy()
                for name, value in session.profile.cti_parameters:
                    uri.params[name] = param_value(value)
                if direct is not None:
                    return Forward(peer=direct[0], uri=uri, record_route=False)
                return Forward(uri=uri, record_route=False)
        if direct is not None:
            return Forward(peer=direct[0], uri=direct[1], record_route=False)
        return None

    def _not_record_routed(self, request, session):
        """
        A peer that ignored our Record-Route (SIPp's built-in scenarios do)
        sends in-dialog requests to the RM itself without Route: send them to
        the dialog's other side, as the session knows it (ours).
        """
        if request.route or not self.is_us(request.uri):
            return None
        leg = session.legs.get(request.call_id)
        if leg is None:
            return None
        peer, contact = leg.other_side(request.source)
        if peer is None:
            return None
        return peer, contact if contact is not None else request.uri

    def on_ack(self, ack):
        """The next hop of an ACK for a 2xx that names the RM itself (see L{_not_record_routed})."""
        session = self.sessions.for_call_id(ack.call_id)
        if session is None:
            return None
        direct = self._not_record_routed(ack, session)
        if direct is None:
            return None
        if direct[1] is not None:
            ack.uri = direct[1]
        return direct[0]

    # --- responses ----------------------------------------------------------------

    def on_response(self, response, ctx):
        session = ctx.data.get("session")
        if session is None:
            return None
        status = response.status
        kind = ctx.data.get("kind")
        method = ctx.request.method
        if method == "INVITE" and kind == "to-ctic" and status >= 300 and not ctx.cancelled:
            return self._ctic_failed(response, ctx, session)
        if method == "INVITE" and 200 <= status < 300 and not ctx.in_dialog:
            leg = session.legs.get(ctx.request.call_id)
            if leg is not None and leg.b_peer is None:
                leg.b_peer = ctx.peer
                contact = response.contact
                leg.b_contact = contact[0].uri if contact else None
        if method == "INVITE" and 200 <= status < 300 and ctx.data.get("mapped_now"):
            params = session.profile.cti_parameters
            if params:
                response.headers.set(CTI_PARAMS, format_pairs(params))
        if method == "BYE" and status >= 200 and ctx.peer is not None:
            _, m = self._ctic_member(ctx.peer.host, ctx.peer.port)
            value = response.headers.get(CDR) if m is not None else None
            if value is not None:
                session.merge_cdr(CDRHeader.parse(str(value)))
        return None

    def on_finished(self, ctx, response):
        session = ctx.data.get("session")
        if session is None:
            return
        method = ctx.request.method
        call_id = ctx.request.call_id
        status = response.status
        if method == "INVITE" and not ctx.in_dialog:
            if status < 300:
                self.sessions.answered(session, call_id, status)
            else:
                self.sessions.leg_ended(session, call_id, "rejected" if status != 487 else "cancelled", status,
                                        ctx.request.source if ctx.cancelled else None, response.reason)
        elif method == "BYE":
            self.sessions.leg_ended(session, call_id, "bye", session.final_status, ctx.request.source)

    def _release(self, session):
        self._release_ctic(session)
        if session.mcp is not None:
            GroupState.release(session.mcp)
            session.mcp = None
