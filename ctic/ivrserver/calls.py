# -*- test-case-name: tests.ivrserver.test_client -*-
"""
One call on an IVR Server link, as call logic sees it.

An L{IVRCall} is created by L{ctic.ivrserver.client.IVRServerClient.new_call}.
Its methods send one request each and return a C{Deferred} that fires with
the answer, or fails with an L{ctic.ivrserver.errors.IVRServerError}: the
server's refusal (L{RequestFailed}, carrying the message), no answer in time
(L{RequestTimeout}), the call ending (L{CallEnded}) or the link going down
(L{LinkLost}).

How answers are matched to requests (docs/ivr-server-xml.rst §2, §3.9):

- UData* and Peek/GetStatReq by C{RequestId};
- CallInfoReq, RouteRequest and AccessNum* in order, per call (they carry
  no id);
- transfers and conferences by the C{CallStatus} events
  docs/ivr-server-xml.rst §3.4 lists for each, or a C{CallError} naming
  the request (or C{Unknown}).
  One such operation is outstanding per call at a time.

Every message IVR Server sends about the call is also given to the call's
C{listeners} (callables taking the message): CallStatus, CallError,
RouteResponse, TreatCall, Cancel, UDataResp, EndCall...  C{ended} fires with
the reason (an L{IVRServerError}) when the call is over for whatever reason.
"""

from __future__ import annotations

from collections import deque

from twisted.internet import defer
from twisted.logger import Logger

from ctic.ivrserver import messages as m
from ctic.ivrserver.errors import CallEnded, IVRServerError, RequestFailed, RequestTimeout
from ctic.ivrserver.userdata import Node, Str, as_dict, kvlist
from ctic.timers import Timer

log = Logger(namespace="ctic.ivrserver.call")

BEHIND = "behind"
FRONT = "front"
NETWORK = "network"
MODES = (BEHIND, FRONT, NETWORK)

# Control operations: the CallStatus events that complete them, and those that fail them.
_CONTROL = {
    "OneStepXfer": ({"XferComplete"}, set()),
    "OneStepConf": ({"ConfPartyAdd"}, set()),
    "InitXfer": ({"Established"}, {"Busy"}),
    "InitConf": ({"Established"}, {"Busy"}),
    "CompleteXfer": ({"XferComplete"}, set()),
    "CompleteConf": ({"ConfPartyAdd"}, set()),
    "RetrieveCall": ({"Retrieved"}, set()),
}


class _Pending:
    __slots__ = ("deferred", "timer", "name")

    def __init__(self, name, deferred, timer):
        self.name = name
        self.deferred = deferred
        self.timer = timer


class IVRCall:
    """
    @ivar CallId: ours, unique across restarts.
    @ivar mode: C{"behind"}, C{"front"} or C{"network"}.
    @ivar started: fires with the call once it is up: at C{Established}
        (behind, front) or at once (network, where IVR Server sends no
        CallStatus).  Fails on EndCall, timeout or link loss.
    @ivar ended: fires with the reason the call ended.
    @ivar state: the last CallStatus Event seen, or C{"new"}, C{"ended"}.
    @ivar info: the last CallInfoResp, or None.
    """

    def __init__(self, client, call_id: str, mode: str, called_num: str, link):
        self.client = client
        self.CallId = call_id
        self.mode = mode
        self.called_num = called_num
        self.link = link
        self.state = "new"
        self.info = None
        self.listeners: list = []
        self.started = defer.Deferred()
        self.ended = defer.Deferred()
        self._fifo: dict[str, deque] = {"CallInfoResp": deque(), "RouteResponse": deque(), "AccessNumResp": deque()}
        self._late: dict[str, int] = {"CallInfoResp": 0, "RouteResponse": 0, "AccessNumResp": 0}
        self._by_id: dict[str, _Pending] = {}
        self._control: _Pending | None = None
        self._setup = Timer(client.clock, self._setup_timed_out)
        if mode == NETWORK:
            self._started()
        else:
            self._setup.start(client.config.call_setup_timeout)

    def __repr__(self):
        return f"<IVRCall {self.CallId} {self.mode} port={self.called_num} state={self.state}>"

    @property
    def active(self) -> bool:
        return self.state != "ended"

    # --- requests ----------------------------------------------------------

    def call_info(self, report_uuid: bool = True, report_third_party_dn: bool = False):
        """CallInfoReq; fires with the C{CallInfoResp} (ANI, DNIS, ConnId, UUID...)."""
        msg = m.CallInfoReq(
            ReportUUID="true" if report_uuid else None,
            ReportThirdPartyDN="true" if report_third_party_dn else None,
        )
        return self._ordered("CallInfoResp", msg)

    def get_data(self, *keys: str):
        """UDataGet; fires with a dict of the values found ({} for NoMatch)."""
        for key in keys:
            if ":" in key or not key:
                raise ValueError(f"user data key {key!r} is empty or contains ':'")
        return self._udata(lambda rid: m.UDataGet(Keys=":".join(keys), RequestId=rid), want_data=True)

    def get_all_data(self):
        """UDataGetAll; fires with a dict of every attached key."""
        return self._udata(lambda rid: m.UDataGetAll(RequestId=rid), want_data=True)

    def get_data_list(self, *keys: str):
        """Like L{get_data} but fires with the raw C{UDataEx} tuple (repeated keys, types kept)."""
        return self._udata(lambda rid: m.UDataGet(Keys=":".join(keys), RequestId=rid), want_data="raw")

    def set_data(self, data, replace: bool = True):
        """UDataSet (Replace, or Add); C{data} is a mapping or a tuple of Node/List."""
        items = kvlist(data)
        return self._udata(lambda rid: m.UDataSet(
            Action="Replace" if replace else "Add", RequestId=rid, UDataEx=items))

    def delete_data(self, key: str | None = None):
        """UDataDel: one key, or everything when C{key} is None."""
        if key is None:
            return self._udata(lambda rid: m.UDataDel(Action="DeleteAll", RequestId=rid))
        return self._udata(lambda rid: m.UDataDel(Action="DeleteKey", Key=key, RequestId=rid))

    def route_request(self, route_dn: str | None = None, ced: str | None = None, udata=None, extensions=None):
        """RouteRequest; fires with the C{RouteResponse} (TreatCall/Cancel go to listeners)."""
        if route_dn is None and self.mode != NETWORK:
            raise ValueError("RouteDN is required in front and behind modes")
        msg = m.RouteRequest(RouteDN=route_dn, CED=ced, UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions))
        return self._ordered("RouteResponse", msg)

    def one_step_transfer(self, dest: str, location: str | None = None, udata=None, extensions=None):
        return self._control_op(m.OneStepXfer(DestDN=dest, Location=location,
                                              UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions)))

    def one_step_conference(self, dest: str, location: str | None = None, udata=None, extensions=None):
        return self._control_op(m.OneStepConf(DestDN=dest, Location=location,
                                              UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions)))

    def init_transfer(self, dest: str, location: str | None = None, udata=None, extensions=None):
        """InitXfer; fires when the consult leg is Established, fails on Busy or CallError."""
        return self._control_op(m.InitXfer(DestDN=dest, Location=location,
                                           UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions)))

    def complete_transfer(self, extensions=None):
        return self._control_op(m.CompleteXfer(ExtnsEx=kvlist(extensions)))

    def init_conference(self, dest: str, location: str | None = None, udata=None, extensions=None):
        return self._control_op(m.InitConf(DestDN=dest, Location=location,
                                           UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions)))

    def complete_conference(self, extensions=None):
        return self._control_op(m.CompleteConf(ExtnsEx=kvlist(extensions)))

    def retrieve(self, extensions=None):
        """RetrieveCall (after Busy on a consult leg)."""
        return self._control_op(m.RetrieveCall(ExtnsEx=kvlist(extensions)))

    def access_number(self, dest_dn: str, location: str, route_type: str = "Default",
                      uui_number: str | None = None, udata=None, extensions=None):
        """AccessNumGet; fires with the access number (text)."""
        msg = m.AccessNumGet(DestDN=dest_dn, Location=location, XRouteType=route_type,
                             UUI_Number=uui_number, UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions))
        return self._ordered("AccessNumResp", msg).addCallback(_access_number)

    def cancel_access_number(self):
        return self._ordered("AccessNumResp", m.AccessNumCancel())

    def peek_statistic(self, name: str):
        """PeekStatReq; fires with the statistic's value (text)."""
        rid = self.client.next_request_id()
        return self._by_request_id(rid, m.PeekStatReq(RequestId=rid, StatName=name)).addCallback(_stat_value)

    def get_statistic(self, server: str, stat_type: str, object_id: str, object_type: str):
        """GetStatReq; fires with the statistic's value (text)."""
        rid = self.client.next_request_id()
        msg = m.GetStatReq(RequestId=rid, ServerName=server, StatType=stat_type,
                           ObjectId=object_id, ObjectType=object_type)
        return self._by_request_id(rid, msg).addCallback(_stat_value)

    # --- messages without an answer ----------------------------------------

    def treatment_status(self, status: str, ced: str | None = None, udata=None, extensions=None):
        self._send(m.TreatStatus(Status=status, CED=ced, UDataEx=kvlist(udata), ExtnsEx=kvlist(extensions)))

    def cancel_completed(self):
        self._send(m.CancelCompleted())

    def connected(self, extensions=None):
        """Connected: network mode, after delivering the call to the route's Dest."""
        self._send(m.Connected(ExtnsEx=kvlist(extensions)))

    def failure(self, cause: str, extensions=None):
        self._send(m.Failure(FailureCause=cause, ExtnsEx=kvlist(extensions)))

    def end(self, cause: str = "Normal", active_release: bool | None = None, udata=None, extensions=None):
        """
        EndCall.  C{active_release=False} adds C{GCTIActiveRelease=false}, so
        IVR Server does not release the call on the port (it was handed off).
        """
        if not self.active:
            return
        ext = kvlist(extensions)
        if active_release is not None:
            ext = ext + (Node("GCTIActiveRelease", Str("true" if active_release else "false")),)
        try:
            self._send(m.EndCall(EndCause=cause, UDataEx=kvlist(udata), ExtnsEx=ext))
        except IVRServerError as e:  # the link is gone: the server has forgotten the call anyway
            log.info("EndCall for {call_id} not sent: {reason}", call_id=self.CallId, reason=e.reason)
        self._finish(CallEnded(f"ended by us ({cause})"))

    # --- plumbing ----------------------------------------------------------

    def _send(self, msg):
        if not self.active:
            raise CallEnded(f"call {self.CallId} has ended")
        self.client.send(self.link, _with_call_id(msg, self.CallId))

    def _new_pending(self, name: str, on_timeout) -> _Pending:
        d = defer.Deferred()
        pending = _Pending(name, d, None)
        pending.timer = Timer(self.client.clock, on_timeout, pending)
        pending.timer.start(self.client.config.request_timeout)
        return pending

    def _ordered(self, reply: str, msg):
        try:
            self._send(msg)
        except Exception as e:
            return defer.fail(e)
        pending = self._new_pending(msg.element, lambda p: self._ordered_timeout(reply, p))
        self._fifo[reply].append(pending)
        return pending.deferred

    def _ordered_timeout(self, reply: str, pending: _Pending):
        queue = self._fifo[reply]
        if pending in queue:
            queue.remove(pending)
            self._late[reply] += 1  # its answer, if it ever comes, is not for the next request
        pending.deferred.errback(RequestTimeout(f"no {reply} for {pending.name} on {self.CallId}"))

    def _udata(self, build, want_data=False):
        rid = self.client.next_request_id()
        d = self._by_request_id(rid, build(rid))
        return d.addCallback(_udata_result, want_data)

    def _by_request_id(self, rid: str, msg):
        try:
            self._send(msg)
        except Exception as e:
            return defer.fail(e)
        pending = self._new_pending(msg.element, self._id_timeout)
        self._by_id[rid] = pending
        return pending.deferred

    def _id_timeout(self, pending: _Pending):
        for rid, p in list(self._by_id.items()):
            if p is pending:
                del self._by_id[rid]
        pending.deferred.errback(RequestTimeout(f"no answer to {pending.name} on {self.CallId}"))

    def _control_op(self, msg):
        if self._control is not None:
            return defer.fail(IVRServerError(f"{self._control.name} is still outstanding on {self.CallId}"))
        try:
            self._send(msg)
        except Exception as e:
            return defer.fail(e)
        self._control = self._new_pending(msg.element, self._control_timeout)
        return self._control.deferred

    def _control_timeout(self, pending):
        if self._control is pending:
            self._control = None
        pending.deferred.errback(RequestTimeout(f"no result for {pending.name} on {self.CallId}"))

    def _resolve_control(self, ok: bool, msg, reason: str = ""):
        pending, self._control = self._control, None
        pending.timer.cancel()
        if ok:
            pending.deferred.callback(msg)
        else:
            pending.deferred.errback(RequestFailed(reason, msg))

    # --- from IVR Server ---------------------------------------------------

    def received(self, msg) -> None:
        kind = msg.element
        if kind == "CallStatus":
            self._call_status(msg)
        elif kind in self._fifo:
            if self._late[kind]:
                self._late[kind] -= 1
                log.info("Late {element} for {call_id} dropped (its request timed out)",
                         element=kind, call_id=self.CallId)
            elif self._fifo[kind]:
                pending = self._fifo[kind].popleft()
                pending.timer.cancel()
                if kind == "CallInfoResp":
                    self.info = msg
                pending.deferred.callback(msg)
            else:
                log.info("Unsolicited {element} for {call_id}", element=kind, call_id=self.CallId)
        elif kind in ("UDataResp", "StatResp"):
            pending = self._by_id.pop(msg.RequestId, None)
            if pending is None:
                log.warn("{element} for unknown RequestId {request_id} on {call_id}",
                         element=kind, request_id=msg.RequestId, call_id=self.CallId)
            else:
                pending.timer.cancel()
                pending.deferred.callback(msg)
        elif kind == "CallError":
            self._call_error(msg)
        elif kind == "EndCall":
            self._notify(msg)
            self._finish(RequestFailed(f"IVR Server ended the call ({msg.EndCause})", msg))
            return
        self._notify(msg)

    def _call_status(self, msg):
        event = msg.Event
        self.state = event
        if event == "Established" and not self.started.called:
            self._started()
        elif self._control is not None:
            done, failed = _CONTROL[self._control.name]
            if event in done:
                self._resolve_control(True, msg)
            elif event in failed:
                self._resolve_control(False, msg, f"{self._control.name}: destination {event}")

    def _call_error(self, msg):
        failed = msg.FailedReq
        if self._control is not None and failed in (self._control.name, "Unknown"):
            self._resolve_control(False, msg, f"{failed} failed (TlibErrCode {msg.TlibErrCode})")
            return
        # Other CallErrors (e.g. Unknown for a RouteRequest before Ringing) fail
        # the oldest ordered request, which is what the server refused [WIRE].
        for reply in ("RouteResponse", "AccessNumResp", "CallInfoResp"):
            if self._fifo[reply]:
                pending = self._fifo[reply].popleft()
                pending.timer.cancel()
                pending.deferred.errback(RequestFailed(
                    f"{pending.name} refused: CallError {failed} ({msg.TlibErrCode})", msg))
                return
        if failed == "NoSuchCall":
            self._finish(RequestFailed("IVR Server does not know this call (NoSuchCall)", msg))

    def _notify(self, msg):
        for listener in list(self.listeners):
            try:
                listener(msg)
            except Exception:
                log.failure("Call listener failed on {element}", element=msg.element)

    def _started(self):
        self._setup.cancel()
        self.started.callback(self)

    def _setup_timed_out(self):
        log.warn("Call {call_id} not established within {seconds}s", call_id=self.CallId,
                 seconds=self.client.config.call_setup_timeout)
        self.end("Timeout")  # fails `started` through _finish

    def _finish(self, reason: IVRServerError) -> None:
        """The call is over: fail what is outstanding, fire C{ended}, forget it."""
        if self.state == "ended":
            return
        self.state = "ended"
        self._setup.cancel()
        outstanding = [p for q in self._fifo.values() for p in q] + list(self._by_id.values())
        if self._control is not None:
            outstanding.append(self._control)
        self._control = None
        self._by_id.clear()
        for q in self._fifo.values():
            q.clear()
        for pending in outstanding:
            pending.timer.cancel()
            pending.deferred.errback(CallEnded(f"{pending.name} outstanding when the call ended: {reason.reason}"))
        if not self.started.called:
            self.started.errback(reason)
        self.client.forget(self)
        self.ended.callback(reason)


def _with_call_id(msg, call_id):
    from dataclasses import replace

    return replace(msg, CallId=call_id)


def _udata_result(msg, want_data):
    if msg.Result == "Success":
        if want_data == "raw":
            return msg.UDataEx
        return as_dict(msg.UDataEx) if want_data else None
    if msg.Result == "NoMatch" and want_data:
        return () if want_data == "raw" else {}
    raise RequestFailed(f"UDataResp Result={msg.Result}", msg)


def _stat_value(msg):
    if msg.ResultCode != "Success":
        raise RequestFailed(f"StatResp ResultCode={msg.ResultCode}", msg)
    return msg.Result


def _access_number(msg):
    if msg.Result != "Success":
        raise RequestFailed(f"AccessNumResp Result={msg.Result}", msg)
    return msg.AccessNum
