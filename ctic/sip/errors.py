"""
The one error type of the SIP codec.

A L{SIPParseError} carries what was wrong, the status code a server should
answer a bad I{request} with (400 unless the fault has its own code: 505 for
an unknown version, 513 for an oversized message), and, when the start line
was a request, the raw headers needed to build that answer.
"""

from __future__ import annotations


class SIPParseError(Exception):
    """
    A SIP message could not be parsed.

    @ivar reason: human-readable, safe to put in a Warning header.
    @ivar status: the response code for a request (400, 505, 513).
    @ivar method: the request method if the start line was a request, else C{None}.
    @ivar is_request: C{True} for a request, C{False} for a response,
        C{None} when not even the start line was readable.
    @ivar raw_headers: lower-case header name to list of raw values, as far
        as they could be read (Via, From, To, Call-ID, CSeq) for the answer.
    @ivar fatal: the stream can no longer be framed (close the connection).
    @ivar framed: for a fatal stream error, the events L{StreamParser.feed}
        framed before the fault in the same call (handle them, then close).
    """

    def __init__(self, reason, status=400, *, method=None, is_request=None, raw_headers=None, fatal=False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.method = method
        self.is_request = is_request
        self.raw_headers = raw_headers or {}
        self.fatal = fatal
        self.framed = []

    def __str__(self):
        return self.reason

    def can_answer(self) -> bool:
        """True when a response can be built: a request (not ACK) with a Via."""
        return bool(self.is_request and self.method != "ACK" and self.raw_headers.get("via"))
