# -*- test-case-name: tests.rm.test_rm_routing -*-
"""
RM call sessions (docs/gvp-rm-ctic.rst §2.2): one per call, across its legs.

A session starts with the first INVITE of a call (from a gateway, or from a
CTIC or MCP when no session is known), gathers legs (each a dialog, keyed by
Call-ID: gateway to CTIC or MCP, CTIC to MCP, outbound legs), and ends when
every leg has ended (a final failure to its INVITE, or a final response to
its BYE) or when C{session-timeout} passes.  Ending builds the CDR; the
table forgets the session only once the sink has stored it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger, LogLevel

from ctic.rm.cdr import CDR
from ctic.timers import Timer

log = Logger(namespace="ctic.rm.session")
# One event per call milestone an operator asks about, each with an C{event}
# field (call.new, call.routed, call.answered, call.ended, call.failed,
# cdr.written, cdr.failed) and the call's C{call_id} and C{gvp_session_id}.
calls = Logger(namespace="ctic.rm.call")


@dataclass
class Leg:
    call_id: str
    kind: str  # gateway, ctic-mcp, ctic-outbound, mcp-outbound, direct
    state: str = "trying"  # trying, confirmed, ended
    peer: str | None = None
    # For peers that ignore Record-Route and send in-dialog requests to the RM
    # itself: who is on each side (a = the INVITE's sender, b = where it went).
    a_peer: object = None
    a_contact: object = None
    b_peer: object = None
    b_contact: object = None

    def other_side(self, source):
        """(peer, contact URI) of the side C{source} is not on, or (None, None)."""
        a = self.a_peer
        if a is not None and source is not None and (a.host, a.port) == (source.host, source.port):
            return self.b_peer, self.b_contact
        return self.a_peer, self.a_contact


@dataclass
class Session:
    guid: str
    tenant: str | None
    start_time: float
    use_cti: int = 0
    cti: bool = False
    gateway_group: object = None
    gateway_peer: object = None
    profile: object = None
    ctic: object = None  # MemberState in use
    ctic_key: str | None = None
    mcp: object = None
    mcp_key: str | None = None
    ani: str | None = None
    dnis: str | None = None
    answer_time: float | None = None
    final_status: int | None = None
    end_reason: str = ""
    call_disposition: str | None = None
    queue_wait_time: float | None = None
    extra: dict = field(default_factory=dict)
    legs: dict = field(default_factory=dict)
    first_call_id: str = ""
    ended_by: str | None = None  # caller, callee or rm: who ended the first leg
    end_phrase: str | None = None  # the SIP reason phrase of a failed first INVITE
    ended: bool = False
    timer: Timer | None = None

    def add_leg(self, call_id: str, kind: str, peer=None) -> Leg:
        leg = self.legs.get(call_id)
        if leg is None:
            leg = self.legs[call_id] = Leg(call_id, kind, peer=str(peer) if peer else None)
            if not self.first_call_id:
                self.first_call_id = call_id
        return leg

    @property
    def all_ended(self) -> bool:
        return all(leg.state == "ended" for leg in self.legs.values())

    def merge_cdr(self, header) -> None:
        """What the CTIC reported in X-Genesys-GVP-CDR (last report wins)."""
        if header.disposition is not None:
            self.call_disposition = header.disposition
        if header.queue_wait_time is not None:
            self.queue_wait_time = header.queue_wait_time
        self.extra.update(header.extra)

    def cdr(self, end_time: float) -> CDR:
        p = self.profile
        gw = self.gateway_peer
        return CDR(
            gvp_guid=self.guid, call_id=self.first_call_id, tenant=self.tenant,
            ivr_profile=p.name if p is not None else None, cti=self.cti, use_cti=self.use_cti,
            gateway=f"{gw.host}:{gw.port}" if gw is not None else None,
            ctic=self.ctic_key, mcp=self.mcp_key, ani=self.ani, dnis=self.dnis,
            start_time=self.start_time, answer_time=self.answer_time, end_time=end_time,
            end_reason=self.end_reason, final_status=self.final_status,
            call_disposition=self.call_disposition, queue_wait_time=self.queue_wait_time,
            extra=dict(self.extra),
            legs=[{"call_id": leg.call_id, "kind": leg.kind, "state": leg.state, "peer": leg.peer}
                  for leg in self.legs.values()],
        )


class SessionTable:
    """Sessions by GVP GUID and by leg Call-ID."""

    def __init__(self, clock, sink, timeout: float, on_end=None):
        self.clock = clock
        self.sink = sink
        self.timeout = timeout
        self.on_end = on_end  # called with the session before its CDR is written
        self.by_guid: dict[str, Session] = {}
        self.by_call_id: dict[str, Session] = {}
        self.writing = 0

    def __len__(self):
        return len(self.by_guid)

    def create(self, guid: str, tenant, **kw) -> Session:
        s = Session(guid, tenant, self.clock.seconds(), **kw)
        s.timer = Timer(self.clock, self._expired, s)
        s.timer.start(self.timeout)
        self.by_guid[guid] = s
        return s

    def add_leg(self, session: Session, call_id: str, kind: str, peer=None, request=None) -> Leg:
        self.by_call_id[call_id] = session
        first = not session.first_call_id
        leg = session.add_leg(call_id, kind, peer)
        if first:
            calls.info("Call {call_id} ({gvp_session_id}) new from {ani} to {dnis}, tenant {tenant}, via {kind}",
                       event="call.new", call_id=call_id, gvp_session_id=session.guid, ani=session.ani,
                       dnis=session.dnis, tenant=session.tenant, kind=kind)
        if request is not None:
            leg.a_peer = request.source
            contact = request.contact
            leg.a_contact = contact[0].uri if contact else None
        return leg

    def for_call_id(self, call_id) -> Session | None:
        return self.by_call_id.get(call_id)

    def routed(self, session: Session, call_id: str, to: str, member, reason: str, code: int | None = None) -> None:
        """The router sent the call to C{member} (a MemberState) of a CTIC or MCP group, because of C{reason}."""
        calls.info("Call {call_id} ({gvp_session_id}) routed to {to} {member} of [{group}]: {reason}",
                   event="call.routed", call_id=call_id, gvp_session_id=session.guid, to=to,
                   group=member.group.name, member=member.member.key, reason=reason, code=code,
                   profile=session.profile.name if session.profile is not None else None)

    def answered(self, session: Session, call_id: str, status: int) -> None:
        """A leg's INVITE got a 2xx; the first leg's answer is the call's."""
        leg = session.legs.get(call_id)
        if leg is not None:
            leg.state = "confirmed"
        if call_id == session.first_call_id and session.answer_time is None:
            session.answer_time = self.clock.seconds()
            session.final_status = status
            calls.info("Call {call_id} ({gvp_session_id}) answered ({code})", event="call.answered",
                       call_id=call_id, gvp_session_id=session.guid, code=status, tenant=session.tenant,
                       member=session.mcp_key or session.ctic_key)

    def leg_ended(self, session: Session, call_id: str, reason: str, status: int | None = None, source=None,
                  phrase: str | None = None) -> None:
        """
        A leg ended: its INVITE failed, or its BYE was answered.  C{source}
        is who sent the BYE or CANCEL (a Peer), C{None} for a failure response.
        """
        leg = session.legs.get(call_id)
        if leg is None or leg.state == "ended":
            return
        leg.state = "ended"
        if call_id == session.first_call_id:
            session.end_reason = reason
            if status is not None:
                session.final_status = status
            session.end_phrase = phrase
            a = leg.a_peer
            if source is None:
                session.ended_by = "callee"
            elif a is not None and (a.host, a.port) == (source.host, source.port):
                session.ended_by = "caller"
            else:
                session.ended_by = "callee"
        if session.all_ended:
            self.end(session)

    def _expired(self, session: Session) -> None:
        log.warn("Session {guid} timed out with legs still open", guid=session.guid)
        session.end_reason = session.end_reason or "timeout"
        session.ended_by = session.ended_by or "rm"
        self.end(session)

    def end(self, session: Session) -> None:
        """Close the session: CDR to the sink; forget it once stored."""
        if session.ended:
            return
        session.ended = True
        if session.timer is not None:
            session.timer.cancel()
        if self.on_end is not None:
            self.on_end(session)
        now = self.clock.seconds()
        self._log_end(session, now)
        self.writing += 1
        # A sink that raises, like one whose Deferred fails, still lets the
        # session be forgotten: the table must not keep it for ever.
        d = maybeDeferred(lambda: self.sink.write(session.cdr(now)))

        def forget(result):
            self.writing -= 1
            self.by_guid.pop(session.guid, None)
            for call_id in session.legs:
                if self.by_call_id.get(call_id) is session:
                    del self.by_call_id[call_id]
            return None

        def written(_):
            calls.info("Call {call_id} ({gvp_session_id}) CDR written", event="cdr.written",
                       call_id=session.first_call_id, gvp_session_id=session.guid)

        def failed(failure):
            calls.failure("Call {call_id} ({gvp_session_id}) CDR not stored", failure, LogLevel.warn,
                          event="cdr.failed",
                          call_id=session.first_call_id, gvp_session_id=session.guid, reason=failure.getErrorMessage())

        d.addCallbacks(written, failed).addBoth(forget)

    @staticmethod
    def _log_end(session: Session, now: float) -> None:
        """call.ended for an answered or caller-cancelled call; call.failed (warn) otherwise."""
        fields = dict(call_id=session.first_call_id, gvp_session_id=session.guid, tenant=session.tenant,
                      by=session.ended_by, reason=session.end_reason, code=session.final_status)
        if session.answer_time is not None:
            calls.info("Call {call_id} ({gvp_session_id}) ended by {by}: {reason}, {duration:.1f}s",
                       event="call.ended", duration=now - session.answer_time, **fields)
        elif session.end_reason == "cancelled" and session.ended_by == "caller":
            calls.info("Call {call_id} ({gvp_session_id}) ended by {by}: {reason} before answer",
                       event="call.ended", duration=0.0, **fields)
        else:
            calls.warn("Call {call_id} ({gvp_session_id}) failed: {code} {phrase} ({reason}, by {by})",
                       event="call.failed", phrase=session.end_phrase, **fields)

    def close(self) -> None:
        """Stop: end every open session (their CDRs say C{shutdown})."""
        for s in list(self.by_guid.values()):
            if not s.ended:
                s.end_reason = s.end_reason or "shutdown"
                s.ended_by = s.ended_by or "rm"
                self.end(s)
