# -*- test-case-name: tests.sim.test_mcp -*-
"""
The MCP simulator's user agent: a VoiceXML-platform stand-in on the B2BUA
core, answering as a UAS with no leg B (L{ctic.sip.call.Call.answer}).

Sans-IO like the core: the clock and the transport are passed in; tests run
it on a C{task.Clock} and an in-memory transport.  Per call it keeps the
core's L{Call} plus one small L{Run} (the application's position and at
most one pending request), and one restartable timer.

A call: INVITE -> 100, 180 (optional), C{answer-delay}, 200 with our SDP;
on the ACK the application's steps run (L{ctic.sim.mcp.app}).  A CANCEL
before the answer gets 487 (the core); a BYE from the far end ends the call
(the core answers it 200); C{hangup} sends BYE; an application that ends
without C{hangup} leaves the call up until the far end hangs up or
C{max-call-duration} passes.  OPTIONS (the RM's health probe) get 200, as
do re-INVITEs and UPDATEs (with our unchanged SDP).

Data steps send an in-dialog INFO and wait, up to C{info-timeout}, for the
CTIC's C{Action=UserDataResp} INFO, which is answered 200 and recorded (a
non-2xx to our INFO, or no answer in time, is a failure; the next step
runs either way).  C{transfer refer} sends REFER (C{Refer-To:
<sip:TARGET@domain>}), answers each NOTIFY 200 and is done on the first
final status in a C{message/sipfrag} body, or on a BYE from the far end
after the 202 (a blind transfer's success); the application then carries on
(put C{hangup} after it to BYE as a transferor does).  C{transfer invite}
sends a new INVITE to the peer the call came from (the RM) for
C{sip:TARGET@domain}, with the call's C{X-Genesys-GVP-Session-ID} so the RM
finds the session; on a 2xx it ACKs, BYEs that leg and BYEs the call.
Transfers not done within C{transfer-timeout} fail (a ringing INVITE is
cancelled).

Decisions (ours): more than C{max-calls} calls at once are refused with
C{busy-status} (486, or 503 with Retry-After); a DNIS no application lists
gets 404; the DNIS is the Request-URI user, or the To user when the
Request-URI user is a GVP service name (C{dialog}, C{annc}, C{conf}: the
RM sends C{sip:dialog@mcp;voicexml=...}); the SDP is one static audio
stream (no media is sent).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from twisted.logger import Logger

from ctic.sim.mcp.app import FORM, DataResult, Step, data_request, is_data_response, read_result
from ctic.sip.b2bua import B2BUA
from ctic.sip.dialog import Dialog, new_call_id, new_tag
from ctic.sip.headers import CSeq, NameAddr
from ctic.sip.message import Headers, Request, make_response
from ctic.sip.responder import ALLOW
from ctic.sip.uri import SIPURI, escape, parse_uri, unescape

log = Logger(namespace="ctic.sim.mcp")

SERVICE_USERS = frozenset(("dialog", "annc", "conf", "ivr"))


@dataclass(frozen=True)
class Settings:
    """
    C{[mcp-sim]}, one field per option (C{max_calls} is C{max-calls}); the
    defaults are the schema's (L{ctic.sim.mcp.tap}), in one place.
    """

    user: str
    max_calls: int
    busy_status: int
    ringing: bool
    answer_delay: float
    max_call_duration: float
    info_timeout: float
    transfer_timeout: float
    getdata_format: str
    dnis_from: str
    transfer_domain: str | None
    media_port: int
    results_kept: int


COUNTERS = (
    "received", "answered", "refused", "rejected", "cancelled", "ended_by_far_end", "ended_by_us",
    "no_ack", "options", "info_sent", "info_received", "info_success", "info_failure",
    "transfers", "transfer_failures",
)


class Counters:
    """
    Outcomes since start.  C{received}: INVITEs; C{answered}: 200 sent;
    C{refused}: over C{max-calls}; C{rejected}: no application, or one with
    an C{answer-status}; C{cancelled}: ended before the answer (CANCEL, BYE);
    C{ended_by_far_end} / C{ended_by_us}: answered calls by who ended them
    (C{no_ack} is also counted in C{ended_by_us}); C{info_*}: data steps and
    INFOs from the peer; C{transfers} / C{transfer_failures}.
    """

    __slots__ = COUNTERS

    def __init__(self):
        for name in COUNTERS:
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in COUNTERS}

    def __repr__(self):
        return f"<Counters {self.as_dict()}>"


def request_uri_parameters(text: str) -> dict:
    """
    The C{;name=value} parameters of a Request-URI as written: names keep
    their case (a VoiceXML application's C{requesturi[...]} look-ups are
    case-sensitive), values are %-decoded, a flag's value is C{None}.
    """
    text = text.partition("?")[0]
    at = text.rfind("@")
    hostpart = text[at + 1:] if at >= 0 else text.partition(":")[2]
    params = {}
    for part in hostpart.split(";")[1:]:
        if part:
            name, sep, value = part.partition("=")
            params[unescape(name)] = unescape(value) if sep else None
    return params


class _Pending:
    """What a step waits for: C{kind} is C{wait}, C{data} or C{transfer}."""

    __slots__ = ("kind", "step", "leg", "accepted")

    def __init__(self, kind: str, step: Step | None = None):
        self.kind = kind
        self.step = step
        self.leg = None  # transfer invite: the TransferLeg
        self.accepted = False  # transfer refer: 202 received


class Run:
    """One call's application: where it is, what it waits for, one timer."""

    __slots__ = ("app", "index", "pending", "timer", "started", "session_id")

    def __init__(self, app, session_id):
        self.app = app
        self.index = 0
        self.pending: _Pending | None = None
        self.timer = None
        self.started = False
        self.session_id = session_id


class MCPUserAgent(B2BUA):
    """The B2BUA core as the simulator's UAS: keeps each INVITE's Request-URI as written."""

    received_uri = ""

    def request_received(self, server, request) -> None:
        method = request.method
        if method == "INVITE":
            # Read before the core parses the URI: parsing lower-cases parameter names.
            self.received_uri = request.uri_text
        elif method == "OPTIONS" and request.to.tag is None:
            self.logic.counters.options += 1
        super().request_received(server, request)


class TransferLeg:
    """
    C{transfer invite}: our own INVITE to the RM.  On a 2xx: ACK (again on
    each retransmission of it), BYE, and report; a failure is reported too.
    """

    __slots__ = ("sim", "call", "invite", "peer", "txn", "ack", "hop")

    def __init__(self, sim, call, target: str, domain: str, session_id):
        agent = sim.agent
        self.sim = sim
        self.call = call
        self.peer = peer = call.a.peer
        contact = agent.contact_uri(peer.transport)
        uri = parse_uri(f"sip:{escape(target)}@{domain}")
        h = Headers()
        d = h._d
        d["from"] = [NameAddr(SIPURI(contact.host, sim.settings.user, contact.port), params={"tag": new_tag()})]
        d["to"] = [NameAddr(uri.copy())]
        d["call-id"] = [new_call_id(contact.host)]
        d["cseq"] = [CSeq(1, "INVITE")]
        d["max-forwards"] = [70]
        d["contact"] = [NameAddr(contact)]
        if session_id:
            h.set("X-Genesys-GVP-Session-ID", session_id)
        h.set("Content-Type", "application/sdp")
        self.invite = Request("INVITE", uri, h, sim.sdp(peer.transport))
        self.ack = self.hop = None
        self.txn = agent.txns.send_request(self.invite, peer)
        self.txn.on_response = self._response

    def cancel(self) -> None:
        self.txn.cancel()

    def _response(self, response) -> None:
        status = response.status
        if status < 200:
            return
        agent = self.sim.agent
        if status >= 300:
            self.sim._transfer_answered(self, False, f"INVITE {status}")
            return
        if self.ack is not None:
            agent.transport.send(self.ack, self.hop)  # a retransmitted 2xx (§13.2.2.4)
            return
        dialog = Dialog.as_uac(self.invite, response, agent.contact_uri(self.peer.transport))
        ack = dialog.create_request("ACK", seq=self.invite.cseq.seq)
        hop = self.hop = dialog.next_hop(self.peer.transport) or self.peer
        agent.txns.push_via(ack, hop)
        self.ack = ack
        agent.transport.send(ack, hop)
        agent.txns.send_request(dialog.create_request("BYE"), hop)
        self.sim._transfer_answered(self, True, f"INVITE {status}")


class MCPSim:
    """
    The call logic (see the module docstring); C{self.agent} is the core it
    drives and C{self.counters} what happened.  C{self.results} keeps the
    last C{results-kept} data results as C{(call_id, DataResult)}.
    """

    def __init__(self, clock, transport, settings: Settings, apps, *, timers=None, max_transactions=100_000):
        self.clock = clock
        self.settings = settings
        self.apps = apps
        self.counters = Counters()
        self.results: collections.deque = collections.deque(maxlen=settings.results_kept)
        self.active = 0
        delays = [a.answer_delay for a in apps.apps if a.answer_delay is not None] + [settings.answer_delay]
        # The core's hold timer bounds the unanswered phase; ours is answer-delay.
        self.agent = MCPUserAgent(clock, transport, self, timers=timers, user=settings.user,
                                  max_calls=settings.max_calls + 1, hold_timeout=max(delays) + 30.0)
        self.agent.txns.max_transactions = max_transactions
        self._sdp: dict = {}

    # --- what we send ---------------------------------------------------------------------

    def sdp(self, transport: str = "UDP") -> bytes:
        body = self._sdp.get(transport)
        if body is None:
            host = self.agent.contact_uri(transport).host
            family = "IP6" if ":" in host else "IP4"
            body = self._sdp[transport] = (
                f"v=0\r\no=ctic-mcp-sim 1 1 IN {family} {host}\r\ns=ctic mcp-sim\r\nc=IN {family} {host}\r\n"
                f"t=0 0\r\nm=audio {self.settings.media_port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
            ).encode("ascii")
        return body

    def dnis(self, invite) -> str | None:
        user = invite.uri.user if isinstance(invite.uri, SIPURI) else None
        how = self.settings.dnis_from
        if how == "to" or (how == "auto" and (user is None or user.lower() in SERVICE_USERS)):
            to_uri = invite.to.uri
            user = to_uri.user if isinstance(to_uri, SIPURI) else None
        return unescape(user) if user is not None else None

    # --- the core's call logic interface ----------------------------------------------------

    def new_call(self, call) -> None:
        counters = self.counters
        counters.received += 1
        invite = call.a.invite
        dnis = self.dnis(invite)
        app = self.apps.select(dnis)
        session_id = invite.headers.get("x-genesys-gvp-session-id")
        log.info("Call {call_id} for DNIS {dnis}: application {app}", event="call.received", call_id=call.call_id,
                 dnis=dnis, app=app.name if app else None, request_uri=self.agent.received_uri,
                 uri_params=request_uri_parameters(self.agent.received_uri), gvp_session_id=session_id,
                 peer=str(call.a.peer))
        settings = self.settings
        if self.active >= settings.max_calls:
            counters.refused += 1
            log.warn("Refused call {call_id}: {limit} calls in progress", call_id=call.call_id,
                     limit=settings.max_calls, event="call.refused")
            status = settings.busy_status
            call.reject(status, headers={"Retry-After": "5"} if status == 503 else None)
            return
        if app is None or app.answer_status != 200:
            counters.rejected += 1
            if app is None:
                call.reject(404, "Not Found (no application for this DNIS)")
            else:
                call.reject(app.answer_status)
            return
        self.active += 1
        run = Run(app, session_id)
        call.data["run"] = run
        if (settings.ringing if app.ringing is None else app.ringing):
            call.provisional(180)
        delay = settings.answer_delay if app.answer_delay is None else app.answer_delay
        if delay > 0:
            self._after(call, run, delay)
        else:
            self._answer(call)

    def _answer(self, call) -> None:
        call.answer(self.sdp(call.a.peer.transport), {"Content-Type": "application/sdp"})
        self.counters.answered += 1
        if self.settings.max_call_duration > 0:
            call.timer(self.settings.max_call_duration, self._max_duration, call)

    def on_ack(self, call, leg) -> None:
        run = call.data.get("run")
        if run is not None and not run.started:
            run.started = True
            self._advance(call)

    def on_request(self, call, leg, server, request) -> bool:
        method = request.method
        if method == "INFO":
            server.respond(make_response(request, 200))
            self._info_received(call, request)
            return True
        if method == "NOTIFY":
            server.respond(make_response(request, 200))
            self._notify_received(call, request)
            return True
        if method == "OPTIONS":
            resp = make_response(request, 200)
            resp.headers.set("Allow", ALLOW)
            server.respond(resp)
            return True
        if method in ("INVITE", "UPDATE") and call.state == "connected":
            # A session refresh or hold: our session does not change, so the
            # answer (or, to an offerless re-INVITE, the offer) is the same SDP.
            sdp = self.sdp(call.a.peer.transport)
            if method == "INVITE":
                call.accept(leg, server, request, sdp, {"Content-Type": "application/sdp"})
            else:
                resp = make_response(request, 200)
                if request.body:
                    resp.headers.set("Content-Type", "application/sdp")
                    resp.body = sdp
                server.respond(resp)
            return True
        if method == "BYE" and call.state == "new":
            # A BYE on our early dialog (after 180): the INVITE still needs its final answer.
            server.respond(make_response(request, 200))
            call.reject(487)
            return True
        return False

    def on_end(self, call, reason: str) -> None:
        run = call.data.get("run")
        if run is None:
            return  # refused or rejected: counted at the time
        self.active -= 1
        counters = self.counters
        pending = run.pending
        if pending is not None and pending.kind == "transfer":
            if pending.leg is not None and pending.leg.ack is None:
                pending.leg.cancel()
            # A blind transfer succeeds on the REFER's 202 (VoiceXML 2.0 §2.3.7.1, blind:
            # connection.disconnect.transfer at once); the far end then releases the call.
            accepted = pending.accepted and reason.startswith("BYE from")
            self._transfer_done(call, run, accepted, "202, then BYE from the far end" if accepted
                                else f"call ended: {reason}")
        if call.answered is None:
            counters.cancelled += 1
            who = "far end"
        elif reason.startswith("BYE from"):
            counters.ended_by_far_end += 1
            who = "far end"
        else:
            counters.ended_by_us += 1
            counters.no_ack += reason == "no ACK"
            who = "us"
        now = self.clock.seconds()
        log.info("Call {call_id} ended by {who}: {reason}", event="call.ended", call_id=call.call_id, who=who,
                 reason=reason, app=run.app.name, steps_done=run.index,
                 duration=round(now - call.answered, 3) if call.answered is not None else None)

    # --- running the application -----------------------------------------------------------

    def _after(self, call, run: Run, delay: float) -> None:
        if run.timer is None:
            run.timer = call.timer(delay, self._tick, call)
        else:
            run.timer.start(delay)

    def _tick(self, call) -> None:
        """The call's one timer: the answer delay, a wait, or a step's deadline."""
        run = call.data["run"]
        if call.state == "new":
            self._answer(call)
            return
        pending = run.pending
        if pending is None or call.state != "connected":
            return
        if pending.kind == "wait":
            run.pending = None
            self._advance(call)
        elif pending.kind == "data":
            self._data_done(call, run, DataResult(pending.step.verb, False, "TIMEOUT"))
        elif pending.kind == "transfer":
            if pending.leg is not None:
                pending.leg.cancel()
            self._transfer_done(call, run, False, "timeout")

    def _advance(self, call) -> None:
        run = call.data["run"]
        steps = run.app.steps
        while call.state == "connected" and run.pending is None and run.index < len(steps):
            step = steps[run.index]
            run.index += 1
            self._STEPS[step.verb](self, call, run, step)

    def _step_wait(self, call, run: Run, step: Step) -> None:
        if step.seconds > 0:
            run.pending = _Pending("wait", step)
            self._after(call, run, step.seconds)

    def _step_data(self, call, run: Run, step: Step) -> None:
        pending = run.pending = _Pending("data", step)
        body = data_request(step, self.settings.getdata_format)
        self.counters.info_sent += 1
        call.send_request(call.a, "INFO", body, {"Content-Type": FORM},
                          on_response=lambda r: self._info_response(call, pending, r))
        self._after(call, run, self.settings.info_timeout)

    def _info_response(self, call, pending: _Pending, response) -> None:
        run = call.data["run"]
        if response.status >= 300 and run.pending is pending and call.state == "connected":
            self._data_done(call, run, DataResult(pending.step.verb, False, f"REJECTED {response.status}"))

    def _info_received(self, call, request) -> None:
        self.counters.info_received += 1
        run = call.data.get("run")
        pending = run.pending if run is not None else None
        content_type = (request.headers.get("content-type") or "").lower()
        body = request.body
        if pending is not None and pending.kind == "data" and "x-www-form-urlencoded" in content_type \
                and is_data_response(body):
            self._data_done(call, run, read_result(pending.step.verb, body))
            return
        log.info("Call {call_id}: INFO that answers no data step", event="info.unsolicited", call_id=call.call_id,
                 content_type=content_type, body=body[:500].decode("utf-8", "replace"))

    def _data_done(self, call, run: Run, result: DataResult) -> None:
        run.pending = None
        run.timer.cancel()
        if result.ok:
            self.counters.info_success += 1
        else:
            self.counters.info_failure += 1
        self.results.append((call.call_id, result))
        log.info("Call {call_id}: {action} {result}", event="info.result", call_id=call.call_id,
                 action=result.action, result=result.result, ok=result.ok, data=dict(result.data),
                 gvp_session_id=run.session_id)
        self._advance(call)

    def _step_transfer(self, call, run: Run, step: Step) -> None:
        pending = run.pending = _Pending("transfer", step)
        peer = call.a.peer
        domain = self.settings.transfer_domain or (f"[{peer.host}]:{peer.port}" if ":" in peer.host
                                                   else f"{peer.host}:{peer.port}")
        if step.method == "invite":
            pending.leg = TransferLeg(self, call, step.target, domain, run.session_id)
        else:
            contact = self.agent.contact_uri(peer.transport)
            call.send_request(call.a, "REFER", b"", {
                "Refer-To": f"<sip:{escape(step.target)}@{domain}>",
                "Referred-By": f"<sip:{self.settings.user}@{contact.host}:{contact.port}>",
            }, on_response=lambda r: self._refer_response(call, pending, r))
        self._after(call, run, self.settings.transfer_timeout)

    def _refer_response(self, call, pending: _Pending, response) -> None:
        run = call.data["run"]
        if response.status < 200 or run.pending is not pending or call.state != "connected":
            return
        if response.status >= 300:
            self._transfer_done(call, run, False, f"REFER {response.status}")
        else:
            pending.accepted = True

    def _notify_received(self, call, request) -> None:
        run = call.data.get("run")
        pending = run.pending if run is not None else None
        if pending is None or pending.kind != "transfer" or pending.step.method != "refer":
            return
        status = sipfrag_status(request.body)
        state = (request.headers.get("subscription-state") or "").split(";")[0].strip().lower()
        if status is not None and status >= 200:
            self._transfer_done(call, run, 200 <= status < 300, f"NOTIFY {status}")
        elif state == "terminated":
            self._transfer_done(call, run, False, "subscription terminated")

    def _transfer_answered(self, leg: TransferLeg, ok: bool, detail: str) -> None:
        call = leg.call
        run = call.data.get("run")
        if run is not None and run.pending is not None and run.pending.leg is leg and call.state == "connected":
            self._transfer_done(call, run, ok, detail)

    def _transfer_done(self, call, run: Run, ok: bool, detail: str) -> None:
        step = run.pending.step
        run.pending = None
        run.timer.cancel()
        if ok:
            self.counters.transfers += 1
        else:
            self.counters.transfer_failures += 1
        log.info("Call {call_id}: transfer {method} {target}: {outcome} ({detail})", event="transfer.result",
                 call_id=call.call_id, method=step.method, target=step.target, ok=ok,
                 outcome="done" if ok else "failed", detail=detail)
        if ok and step.method == "invite":
            call.hangup("transferred")
            return
        self._advance(call)

    def _step_hangup(self, call, run: Run, step: Step) -> None:
        call.hangup("application hangup")

    def _max_duration(self, call) -> None:
        log.info("Call {call_id} reached max-call-duration", event="call.max-duration", call_id=call.call_id)
        call.hangup("max call duration")

    _STEPS = {
        "wait": _step_wait,
        "getdata": _step_data,
        "attachdata": _step_data,
        "attachdata-add": _step_data,
        "deletedata": _step_data,
        "deletealldata": _step_data,
        "transfer": _step_transfer,
        "hangup": _step_hangup,
    }


def sipfrag_status(body: bytes) -> int | None:
    """The status of a C{message/sipfrag} body's status line (RFC 3515 §2.4.5), if it has one."""
    line = body.split(b"\n", 1)[0].strip()
    parts = line.split(None, 2)
    if len(parts) >= 2 and parts[0].upper().startswith(b"SIP/") and parts[1].isdigit():
        return int(parts[1])
    return None
