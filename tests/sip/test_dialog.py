"""
RFC 3261 §12 dialogs: creation on the UAS and the UAC side, the route set
from Record-Route, remote target refresh, the CSeq rules (500 for an
out-of-order request), in-dialog requests with loose and strict routing,
and the DialogTable's keyed lookup.
"""

from __future__ import annotations

import pytest

from ctic.sip.dialog import Dialog, DialogTable, new_call_id, new_tag
from ctic.sip.headers import NameAddr, Via
from ctic.sip.message import Headers, make_response
from ctic.sip.parser import parse_datagram
from ctic.sip.transport import Peer
from ctic.sip.uri import parse_uri

OURS = parse_uri("sip:ctic@10.0.0.1:5060")


def invite(record_route=(), contact="<sip:alice@192.0.2.10:5070>", cseq=7, to_tag=None):
    lines = [
        "INVITE sip:bob@10.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK1",
        "Max-Forwards: 70",
        "From: \"Alice\" <sip:alice@example.com>;tag=a1",
        "To: <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else ""),
        "Call-ID: d1@192.0.2.10",
        f"CSeq: {cseq} INVITE",
    ]
    lines += [f"Record-Route: {rr}" for rr in record_route]
    if contact:
        lines.append(f"Contact: {contact}")
    return parse_datagram(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


def response(req, status, to_tag="b1", record_route=(), contact="<sip:bob@10.0.0.2:5080>"):
    resp = make_response(req, status, to_tag=to_tag)
    for rr in record_route:
        resp.headers.add("Record-Route", NameAddr.parse(rr))
    if contact:
        resp.headers.set("Contact", NameAddr.parse(contact))
    return parse_datagram(bytes(resp))


def wire(req):
    """A request as it leaves us (the transaction layer adds the Via), re-parsed."""
    req.headers.add("Via", Via("UDP", "10.0.0.1", 5060, {"branch": "z9hG4bKw"}), first=True)
    return parse_datagram(bytes(req))


def in_dialog(method, seq, contact=None, call_id="d1@192.0.2.10", from_tag="a1", to_tag="ours"):
    lines = [
        f"{method} sip:ctic@10.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK" + new_tag(),
        "Max-Forwards: 70",
        f"From: <sip:alice@example.com>;tag={from_tag}",
        f"To: <sip:bob@example.com>;tag={to_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {seq} {method}",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    return parse_datagram(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


# --- creation ------------------------------------------------------------------------------

def test_uas_dialog_from_2xx():
    req = invite(record_route=["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
    resp = make_response(req, 200, to_tag="ours")
    d = Dialog.as_uas(req, resp, OURS)
    assert d.id == ("d1@192.0.2.10", "ours", "a1")
    assert d.state == "confirmed"
    assert d.remote_seq == 7 and d.local_seq is None
    assert str(d.remote_target) == "sip:alice@192.0.2.10:5070"
    # §12.1.1: the UAS keeps the Record-Route order
    assert [str(r.uri) for r in d.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert d.local.tag == "ours" and d.remote.tag == "a1"


def test_uas_early_dialog_from_1xx_with_tag():
    req = invite()
    d = Dialog.as_uas(req, make_response(req, 180, to_tag="ours"), OURS)
    assert d.state == "early"


def test_uac_dialog_route_set_reversed():
    req = invite()
    resp = response(req, 200, record_route=["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
    d = Dialog.as_uac(req, resp, OURS)
    assert d.id == ("d1@192.0.2.10", "a1", "b1")
    assert d.local_seq == 7 and d.remote_seq is None
    assert str(d.remote_target) == "sip:bob@10.0.0.2:5080"
    # §12.1.2: the UAC reverses Record-Route
    assert [str(r.uri) for r in d.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]


def test_uac_early_dialog_confirmed_by_2xx_takes_its_route_set_and_target():
    req = invite()
    early = response(req, 183, record_route=["<sip:old.example.com;lr>"], contact="<sip:bob@10.0.0.2:1>")
    d = Dialog.as_uac(req, early, OURS)
    assert d.state == "early"
    ok = response(req, 200, record_route=["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"],
                  contact="<sip:bob@10.0.0.3:5090>")
    d.update_from_response(ok)
    assert d.state == "confirmed"
    assert [str(r.uri.host) for r in d.route_set] == ["p1.example.com", "p2.example.com"]
    assert str(d.remote_target) == "sip:bob@10.0.0.3:5090"


def test_no_contact_falls_back_to_from_and_request_uri():
    req = invite(contact=None)
    assert str(Dialog.as_uas(req, make_response(req, 200, to_tag="x"), OURS).remote_target) == \
        "sip:alice@example.com"
    resp = response(req, 200, contact=None)
    assert str(Dialog.as_uac(req, resp, OURS).remote_target) == "sip:bob@10.0.0.1"


# --- CSeq rules and target refresh ------------------------------------------------------------

def uas_dialog():
    req = invite()
    d = Dialog.as_uas(req, make_response(req, 200, to_tag="ours"), OURS)
    return d


def test_remote_cseq_in_order_accepted_and_noted():
    d = uas_dialog()
    assert d.receive_request(in_dialog("INFO", 8)) is None
    assert d.remote_seq == 8
    assert d.receive_request(in_dialog("BYE", 20)) is None  # gaps are fine
    assert d.remote_seq == 20


def test_remote_cseq_out_of_order_is_500():
    d = uas_dialog()
    assert d.receive_request(in_dialog("INFO", 9)) is None
    assert d.receive_request(in_dialog("INFO", 8)) == 500
    assert d.remote_seq == 9  # not lowered


def test_ack_and_cancel_do_not_move_remote_cseq():
    d = uas_dialog()
    assert d.receive_request(in_dialog("ACK", 7)) is None
    assert d.receive_request(in_dialog("CANCEL", 3)) is None
    assert d.remote_seq == 7


def test_first_request_on_a_uac_dialog_sets_remote_cseq():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200), OURS)
    assert d.receive_request(in_dialog("INFO", 1)) is None
    assert d.remote_seq == 1
    assert d.receive_request(in_dialog("INFO", 0)) == 500


def test_target_refresh_by_reinvite_and_update_not_info():
    d = uas_dialog()
    d.receive_request(in_dialog("INFO", 8, contact="<sip:elsewhere@192.0.2.99>"))
    assert str(d.remote_target) == "sip:alice@192.0.2.10:5070"
    d.receive_request(in_dialog("INVITE", 9, contact="<sip:alice@192.0.2.11:5072>"))
    assert str(d.remote_target) == "sip:alice@192.0.2.11:5072"
    d.receive_request(in_dialog("UPDATE", 10, contact="<sip:alice@192.0.2.12>"))
    assert str(d.remote_target) == "sip:alice@192.0.2.12"


def test_target_refresh_by_2xx_to_reinvite():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200), OURS)
    d.update_from_response(response(req, 200, contact="<sip:bob@10.0.0.9>"))
    assert str(d.remote_target) == "sip:bob@10.0.0.9"


# --- building requests -------------------------------------------------------------------------

def test_local_cseq_increments_and_ack_reuses_the_invite_number():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200), OURS)
    ack = d.create_request("ACK", seq=7)
    assert ack.cseq.seq == 7 and ack.cseq.method == "ACK"
    assert d.local_seq == 7
    assert d.create_request("INFO").cseq.seq == 8
    assert d.create_request("BYE").cseq.seq == 9


def test_uas_dialog_local_cseq_starts_at_one():
    d = uas_dialog()
    assert d.create_request("BYE").cseq.seq == 1


def test_request_identity_from_the_dialog():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200), OURS)
    bye = wire(d.create_request("BYE"))
    assert bye.call_id == "d1@192.0.2.10"
    assert bye.from_.tag == "a1" and bye.to.tag == "b1"
    assert bye.from_.display_name == "Alice"
    assert bye.max_forwards == 70
    assert not bye.contact  # BYE carries no Contact
    reinvite = wire(d.create_request("INVITE", b"v=0\r\n"))
    assert str(reinvite.contact[0].uri) == "sip:ctic@10.0.0.1:5060"
    assert reinvite.body == b"v=0\r\n"


def test_loose_routing_request_uri_is_the_target():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200, record_route=["<sip:p2.example.com:5062;lr>",
                                                              "<sip:p1.example.com:5061;lr>"]), OURS)
    bye = wire(d.create_request("BYE"))
    assert str(bye.uri) == "sip:bob@10.0.0.2:5080"
    assert [str(r.uri) for r in bye.route] == ["sip:p1.example.com:5061;lr", "sip:p2.example.com:5062;lr"]
    assert d.next_hop() == Peer("UDP", "p1.example.com", 5061)


def test_strict_routing_first_route_is_the_request_uri_and_target_goes_last():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200, record_route=["<sip:p2.example.com;lr>",
                                                              "<sip:p1.example.com:5061>"]), OURS)
    bye = wire(d.create_request("BYE"))
    # §12.2.1.1: the strict router's URI becomes the Request-URI ...
    assert str(bye.uri) == "sip:p1.example.com:5061"
    # ... and the remote target is appended to the rest of the route set.
    assert [str(r.uri) for r in bye.route] == ["sip:p2.example.com;lr", "sip:bob@10.0.0.2:5080"]
    assert d.next_hop() == Peer("UDP", "p1.example.com", 5061)


def test_no_route_set_next_hop_is_the_remote_target():
    req = invite()
    d = Dialog.as_uac(req, response(req, 200, contact="<sip:bob@10.0.0.2:5080;transport=tcp>"), OURS)
    assert d.next_hop() == Peer("TCP", "10.0.0.2", 5080)
    assert not d.create_request("BYE").route


def test_create_request_keeps_extra_headers():
    d = uas_dialog()
    h = Headers()
    h.set("Content-Type", "application/x-www-form-urlencoded")
    info = wire(d.create_request("INFO", b"Action=GetData", h))
    assert info.headers.get("content-type") == "application/x-www-form-urlencoded"
    assert info.body == b"Action=GetData"


# --- the table -----------------------------------------------------------------------------------

def test_table_finds_the_dialog_of_an_incoming_request_by_its_three_parts():
    table = DialogTable()
    d = uas_dialog()
    table.add(d)
    assert table.for_request(in_dialog("BYE", 8)) is d
    assert table.for_request(in_dialog("BYE", 8, to_tag="other")) is None
    assert table.for_request(in_dialog("BYE", 8, from_tag="other")) is None
    assert table.for_request(in_dialog("BYE", 8, call_id="other")) is None
    table.remove(d)
    assert len(table) == 0 and table.for_request(in_dialog("BYE", 8)) is None


@pytest.mark.allow_open_state("the DialogTable is the unit under test; its dialogs belong to no call")
def test_table_is_keyed_lookup_over_many_dialogs():
    table = DialogTable()
    dialogs = []
    for i in range(5000):
        req = invite()
        req.headers.set("Call-ID", new_call_id("h"))
        d = Dialog.as_uas(req, make_response(req, 200, to_tag="ours"), OURS)
        table.add(d)
        dialogs.append(d)
    assert len(table) == 5000
    # O(1): the lookup is one dict access keyed by (Call-ID, local tag, remote tag).
    assert set(table._d) == {d.id for d in dialogs}
    for d in dialogs[::499]:
        assert table.for_request(in_dialog("BYE", 8, call_id=d.call_id)) is d


@pytest.mark.allow_open_state("the DialogTable is the unit under test; its dialogs belong to no call")
def test_table_remove_only_the_same_object_and_rekey():
    table = DialogTable()
    d = uas_dialog()
    table.add(d)
    twin = uas_dialog()
    table.remove(twin)  # same id, another dialog: left alone
    assert len(table) == 1
    old = d.id
    d.remote_tag = "a2"
    table.rekey(d, old)
    assert list(table) == [d] and table._d.get(old) is None


def test_new_tags_and_call_ids_are_unique():
    assert len({new_tag() for _ in range(1000)}) == 1000
    ids = {new_call_id("10.0.0.1") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.endswith("@10.0.0.1") for i in ids)
