"""Why a client request or call did not succeed, as values call logic can branch on."""

from __future__ import annotations


class IVRServerError(Exception):
    """Base of every failure the IVR Server client reports."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class NotReady(IVRServerError):
    """No logged-in link, or IVR Server has FlowControl On: no new call now."""


class PortBusy(IVRServerError):
    """A call is already active on this CalledNum (one call per port;
    docs/ivr-server-xml.rst §2)."""


class LinkLost(IVRServerError):
    """The link to IVR Server went down; calls do not survive a reconnect
    (docs/ivr-server-xml.rst §2)."""


class RequestTimeout(IVRServerError):
    """IVR Server did not answer within the per-request timeout."""


class CallEnded(IVRServerError):
    """The call ended (EndCall from either side) while the request was outstanding."""


class RequestFailed(IVRServerError):
    """
    IVR Server answered, but not with success.

    @ivar message: the answer (CallError, UDataResp, StatResp, AccessNumResp,
        EndCall, CallStatus Busy…), for call logic that maps it on.
    """

    def __init__(self, reason: str, message=None):
        super().__init__(reason)
        self.message = message
