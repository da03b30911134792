# -*- test-case-name: tests.sip.test_dialog -*-
"""
SIP dialogs (RFC 3261 §12): identity, route set, remote target, CSeq rules,
and building in-dialog requests.  Sans-IO: no clock, no transport.
"""

from __future__ import annotations

import itertools
import os

from ctic.sip.headers import CSeq, NameAddr
from ctic.sip.message import Headers, Request, Response
from ctic.sip.transport import uri_peer

_tag_counter = itertools.count(1)
_tag_prefix = os.urandom(4).hex()


def new_tag() -> str:
    return f"{_tag_prefix}{next(_tag_counter):x}"


def new_call_id(host: str) -> str:
    return f"{os.urandom(8).hex()}{next(_tag_counter):x}@{host}"


class Dialog:
    """
    One dialog, from our side of it.

    @ivar id: C{(call_id, local_tag, remote_tag)}, the key of L{DialogTable}.
    @ivar state: C{"early"}, C{"confirmed"} or C{"terminated"}.
    """

    __slots__ = (
        "call_id", "local_tag", "remote_tag", "local", "remote", "local_seq", "remote_seq",
        "remote_target", "route_set", "secure", "state", "local_contact", "owner",
    )

    def __init__(self, call_id, local, remote, local_seq, remote_seq, remote_target, route_set,
                 local_contact, state="early", secure=False):
        self.call_id = call_id
        self.local = local  # NameAddr with our tag
        self.remote = remote  # NameAddr with their tag
        self.local_tag = local.tag
        self.remote_tag = remote.tag
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_contact = local_contact
        self.state = state
        self.secure = secure
        self.owner = None

    @property
    def id(self):
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, request: Request, response: Response, local_contact) -> "Dialog":
        """§12.1.1: the dialog a UAS creates by sending a 1xx-with-tag or 2xx."""
        contact = request.contact
        remote_target = contact[0].uri if contact else request.from_.uri
        return cls(
            request.call_id, response.to.copy(), request.from_.copy(), None, request.cseq.seq,
            remote_target, [r.copy() for r in request.record_route], local_contact,
            "confirmed" if response.status >= 200 else "early",
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response, local_contact) -> "Dialog":
        """§12.1.2: the dialog a UAC creates on a 1xx-with-tag or 2xx."""
        contact = response.contact
        remote_target = contact[0].uri if contact else request.uri
        routes = [r.copy() for r in reversed(response.record_route)]
        return cls(
            request.call_id, request.from_.copy(), response.to.copy(), request.cseq.seq, None,
            remote_target, routes, local_contact,
            "confirmed" if response.status >= 200 else "early",
        )

    def update_from_response(self, response: Response) -> None:
        """An early dialog confirmed by a 2xx: state, route set and target refresh."""
        if response.status >= 200 and self.state == "early":
            self.state = "confirmed"
            if response.record_route:
                self.route_set = [r.copy() for r in reversed(response.record_route)]
        if response.contact:
            self.remote_target = response.contact[0].uri

    def receive_request(self, request: Request) -> int | None:
        """
        §12.2.2: check and note an in-dialog request.  Returns a status to
        reject it with (500 for an out-of-order CSeq), or C{None}.
        """
        method = request.method
        seq = request.cseq.seq
        if method != "ACK" and method != "CANCEL":
            if self.remote_seq is not None and seq <= self.remote_seq:
                if seq < self.remote_seq:
                    return 500
            self.remote_seq = seq
        if method in ("INVITE", "UPDATE") and request.contact:
            self.remote_target = request.contact[0].uri  # target refresh
        return None

    def create_request(self, method: str, body: bytes = b"", headers: Headers | None = None,
                       seq: int | None = None) -> Request:
        """§12.2.1.1: a request within the dialog (ACK/CANCEL take C{seq})."""
        h = headers if headers is not None else Headers()
        d = h._d
        routes = self.route_set
        uri = self.remote_target
        if routes:
            first = routes[0].uri
            if "lr" in getattr(first, "params", {}):
                d["route"] = [r.copy() for r in routes]
            else:
                # Strict routing: the first route becomes the Request-URI.
                uri = first
                d["route"] = [r.copy() for r in routes[1:]] + [NameAddr(self.remote_target)]
        if seq is None:
            self.local_seq = (self.local_seq or 0) + 1
            seq = self.local_seq
        d["max-forwards"] = [70]
        d["from"] = [self.local.copy()]
        d["to"] = [self.remote.copy()]
        d["call-id"] = [self.call_id]
        d["cseq"] = [CSeq(seq, method)]
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER", "NOTIFY") and self.local_contact is not None:
            d["contact"] = [NameAddr(self.local_contact)]
        return Request(method, uri.copy(), h, body)

    def next_hop(self, default_transport: str = "UDP"):
        """The peer an in-dialog request goes to: the first route, else the target."""
        uri = self.route_set[0].uri if self.route_set else self.remote_target
        return uri_peer(uri, default_transport)

    def __repr__(self):
        return f"<Dialog {self.call_id} {self.local_tag}/{self.remote_tag} {self.state}>"


class DialogTable:
    """O(1) lookup of dialogs by (Call-ID, local tag, remote tag)."""

    def __init__(self):
        self._d: dict = {}

    def add(self, dialog: Dialog) -> None:
        self._d[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        if self._d.get(dialog.id) is dialog:
            del self._d[dialog.id]

    def for_request(self, request: Request) -> Dialog | None:
        """The dialog an incoming in-dialog request belongs to (To tag is ours)."""
        to = request.to
        frm = request.from_
        return self._d.get((request.call_id, to.tag if to else None, frm.tag if frm else None))

    def rekey(self, dialog: Dialog, old_id) -> None:
        if self._d.get(old_id) is dialog:
            del self._d[old_id]
        self._d[dialog.id] = dialog

    def __len__(self):
        return len(self._d)

    def __iter__(self):
        return iter(list(self._d.values()))
