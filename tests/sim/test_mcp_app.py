"""The MCP simulator's step grammar and INFO bodies: parsing, mistakes named, encoding that round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctic.sim.mcp.app import (
    App, AppTable, Step, data_request, form_decode, form_encode, is_data_response, parse_steps, read_result,
)


def test_every_step_of_the_grammar():
    steps = parse_steps("wait 2; getdata CustomerID,Segment; attachdata Result=ok; deletedata Segment; "
                        "transfer refer 5550800; transfer invite 5550800; hangup; WAIT 0.5; "
                        "attachdata-add A=1,B=; deletealldata")
    assert steps == (
        Step("wait", seconds=2.0),
        Step("getdata", pairs=(("CustomerID", ""), ("Segment", ""))),
        Step("attachdata", pairs=(("Result", "ok"),)),
        Step("deletedata", pairs=(("Segment", ""),)),
        Step("transfer", method="refer", target="5550800"),
        Step("transfer", method="invite", target="5550800"),
        Step("hangup"),
        Step("wait", seconds=0.5),
        Step("attachdata-add", pairs=(("A", "1"), ("B", ""))),
        Step("deletealldata"),
    )
    assert [str(s) for s in steps[:3]] == ["wait 2", "getdata CustomerID,Segment", "attachdata Result=ok"]
    assert parse_steps("") == () and parse_steps("  ") == ()


def test_escapes_spaces_and_non_ascii_in_keys_and_values():
    [step] = parse_steps("attachdata Note = two words%2C one comma%3B%3D%25 ,Name=José")
    assert step.pairs == (("Note", "two words, one comma;=%"), ("Name", "José"))


@pytest.mark.parametrize("text, message", [
    ("wait", "step 1 ('wait'): wait needs an argument"),
    ("wait soon", "step 1 ('wait soon'): wait 'soon': expected seconds"),
    ("wait -1", "step 1 ('wait -1'): wait '-1': expected seconds >= 0"),
    ("hangup; dance", "step 2 ('dance'): unknown step 'dance'; expected one of wait, getdata"),
    ("hangup now", "step 1 ('hangup now'): hangup takes no argument"),
    ("attachdata Result", "step 1 ('attachdata Result'): 'Result' is not key=value"),
    ("getdata A,,B", "step 1 ('getdata A,,B'): empty key"),
    ("transfer blind 5550800", "step 1 ('transfer blind 5550800'): expected transfer refer TARGET"),
    ("hangup;", "step 2 is empty"),
    ("getdata %FF", "step 1 ('getdata %FF'): 'utf-8' codec can't decode"),
])
def test_mistakes_say_which_step_and_why(text, message):
    with pytest.raises(ValueError) as info:
        parse_steps(text)
    assert str(info.value).startswith(message)


def test_request_bodies():
    get, attach, add, delete, delete_all = parse_steps(
        "getdata A b,C; attachdata K=v w; attachdata-add K=&; deletedata K; deletealldata")
    assert data_request(get) == b"Action=GetData&A%20b=&C="
    assert data_request(get, "keynames") == b"Keyname1=A%20b&Keyname2=C&Action=GetData"
    assert data_request(attach) == b"Action=AttachData&sub_action=Replace&K=v%20w"
    assert data_request(add) == b"Action=AttachData&sub_action=Add&K=%26"
    assert data_request(delete) == b"Action=DeleteData&K="
    assert data_request(delete_all) == b"Action=DeleteAllData"


def test_reading_results():
    ok = read_result("getdata", b"Result=success&Action=UserDataResp&Sub_Action=GetData&CustomerID=42&Seg+ment=Go%20ld")
    assert ok.ok and ok.result == "SUCCESS" and ok.data == (("CustomerID", "42"), ("Seg ment", "Go ld"))
    bad = read_result("attachdata", b"Result=FAILURE&Action=UserDataResp&Error=IVR%20Server%20timeout")
    assert not bad.ok and bad.result == "FAILURE" and bad.data == (("Error", "IVR Server timeout"),)
    assert read_result("getdata", b"").result == "MISSING"
    # a peer's trailing CRLF is not data; an encoded one is
    assert read_result("getdata", b"Result=SUCCESS&K=v%0D%0A\r\n").data == (("K", "v\r\n"),)
    assert is_data_response(b"Action=UserDataResp&x=1") and is_data_response(b"result=FAILURE")
    assert not is_data_response(b"Action=GetData&x=")


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(st.lists(st.tuples(text, st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)), max_size=6))
def test_form_bodies_round_trip(pairs):
    body = form_encode(pairs)
    assert b" " not in body and b"+" not in body  # spaces as %20 (gvp-rm-ctic.md §3.2)
    assert form_decode(body) == pairs


def test_applications_by_dnis_exact_before_patterns():
    table = AppTable([App("any", ("*",)), App("gold", ("800555*",)), App("one", ("8005550100", "3001"))])
    assert table.select("8005550100").name == "one"
    assert table.select("3001").name == "one"
    assert table.select("8005550111").name == "any"  # patterns in file order: * comes first
    assert AppTable([App("gold", ("800555*",))]).select("8005550111").name == "gold"
    assert AppTable([App("gold", ("800555*",))]).select("5551212") is None
    assert table.owner("3001").name == "one" and table.owner("*") is None
