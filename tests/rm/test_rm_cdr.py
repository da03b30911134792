"""GVP headers, and the SQLite CDR sink (batched, durable, off the reactor thread)."""

from __future__ import annotations

import pytest

import json
import random

from ctic.rm.cdr import CDR, SQLiteSink, read_all
from ctic.rm.headers import CDRHeader, SessionID, new_guid, parse_pairs, tenant_id
from tests.rm.harness import BASE, GW, MCP1, RM, UA, gateway_group


SAMPLES = [  # reference §4.1 (real headers)
    "800DB7A5-33C6-45CB-7E9F-410507B7097A;gvp.rm.datanodes=1;gvp.rm.cti-call=1",
    "23DEC11C-C82E-EA13-A3B3-2D3D635F26FF;gvp.rm.datanodes=1;gvp.rm.tenant-id=1.103.101_Tatiana (AC IVR application)",
    "23DEC11C-C82E-47CF-DE06-DC18A177922A;gvp.rm.tenant-id=1.103.101_Air Canada Test;gvp.rm.datanodes=1",
    "9E565000-457B-6487-67D5-BA32B23886C4;gvp.rm.datanodes=2|1;gvp.rm.tenant-id=1.102_MSML_PROFILE",
]


def test_session_id_samples_round_trip():
    for text in SAMPLES:
        sid = SessionID.parse(text)
        assert str(sid) == text
    assert SessionID.parse(SAMPLES[0]).cti_call
    assert SessionID.parse(SAMPLES[1]).params["gvp.rm.tenant-id"] == "1.103.101_Tatiana (AC IVR application)"
    assert SessionID.parse(SAMPLES[3]).params["gvp.rm.datanodes"] == "2|1"
    assert SessionID.parse("not-a-guid;x=1") is None
    assert SessionID.parse("") is None


def test_guid_shape_and_tenant_id():
    guid = new_guid(random.Random(1))
    assert SessionID.parse(guid).guid == guid == guid.upper()
    assert tenant_id("1.103.101", "Air Canada Test") == "1.103.101_Air Canada Test"


def test_cdr_header_ours():
    h = CDRHeader.parse("call-disposition=transferred;queue-wait-time=12.5;agent=50%3B01")
    assert (h.disposition, h.queue_wait_time, h.extra) == ("transferred", 12.5, {"agent": "50;01"})
    assert CDRHeader.parse(str(h)).extra == {"agent": "50;01"}
    bad = CDRHeader.parse(";;queue-wait-time=soon;=x;flag")
    assert bad.queue_wait_time is None and bad.extra["queue-wait-time"] == "soon" and bad.extra["flag"] == ""
    assert parse_pairs(None) == {}


class InlineReactor:
    def callFromThread(self, f, *a):
        f(*a)

    def callLater(self, delay, f, *a):
        f(*a)


class InlinePool:
    """Runs the 'thread' work at once, or holds it until release() to show batching."""

    def __init__(self, hold=False):
        self.hold = hold
        self.held = []

    def callInThreadWithCallback(self, on_result, f, *a):
        if self.hold:
            self.held.append((on_result, f, a))
            return
        try:
            on_result(True, f(*a))
        except Exception as e:
            on_result(False, e)

    def release(self):
        while self.held:
            on_result, f, a = self.held.pop(0)
            on_result(True, f(*a))


def test_sqlite_sink_batches_and_fires_after_commit(tmp_path):
    path = str(tmp_path / "var" / "cdr.sqlite")
    pool = InlinePool(hold=True)
    sink = SQLiteSink(InlineReactor(), path, batch_size=2, pool=pool)
    fired = []
    for i in range(5):
        sink.write(CDR(f"G{i}", f"c{i}", extra={"k": i}, legs=[{"call_id": f"c{i}"}])).addCallback(fired.append)
    assert fired == [] and len(pool.held) == 1  # one batch in flight, the rest queued
    pool.release()
    assert len(fired) == 5 and sink.written == 5
    rows = read_all(path)
    assert [r["gvp_guid"] for r in rows] == ["G0", "G1", "G2", "G3", "G4"]
    assert rows[3]["extra"] == '{"k": 3}'
    pool.hold = False
    sink.close()
    # Durable: a new connection (as after a restart) sees every row.
    assert len(read_all(path)) == 5


def test_sqlite_sink_retries_then_spools_what_it_cannot_write(tmp_path):
    from twisted.internet.task import Clock

    class ClockReactor(Clock):
        def callFromThread(self, f, *a):
            f(*a)

    reactor = ClockReactor()
    blocked = tmp_path / "cdr.sqlite"
    blocked.mkdir()  # a directory where the database should be: every write fails
    sink = SQLiteSink(reactor, str(blocked), pool=InlinePool())
    done = []
    sink.write(CDR("G", "c")).addBoth(done.append)
    assert done == [] and sink.failed == 1 and sink.pending == 1
    reactor.advance(0.5)  # the retry fails too; the record is still kept
    assert done == [] and sink.failed == 2 and sink.pending == 1
    reactor.advance(1.0)
    assert sink.failed == 3
    sink.close()
    reactor.advance(1)
    assert done == [None] and sink.spooled == 1 and sink.pending == 0
    lines = (tmp_path / "cdr.sqlite.unwritten.jsonl").read_text().splitlines()
    assert [json.loads(line)["gvp_guid"] for line in lines] == ["G"]
    assert reactor.getDelayedCalls() == []


def test_sqlite_sink_recovers_when_the_database_comes_back(tmp_path):
    from twisted.internet.task import Clock

    class ClockReactor(Clock):
        def callFromThread(self, f, *a):
            f(*a)

    reactor = ClockReactor()
    path = tmp_path / "cdr.sqlite"
    path.mkdir()
    sink = SQLiteSink(reactor, str(path), pool=InlinePool())
    done = []
    sink.write(CDR("G", "c")).addBoth(done.append)
    assert done == []
    path.rmdir()  # the operator fixes the path
    reactor.advance(0.5)
    assert done == [None] and sink.written == 1
    assert [r["gvp_guid"] for r in read_all(str(path))] == ["G"]
    sink.close()


@pytest.mark.allow_open_state("leak debt (issue 13): the test asserts the routing ladder and stops mid-call, leaving transactions/session open; play the call to its end instead")
def test_session_is_forgotten_only_after_the_cdr_is_stored(tmp_path):
    path = str(tmp_path / "cdr.sqlite")
    pool = InlinePool(hold=True)
    rm = RM(BASE + gateway_group(0), sink=SQLiteSink(InlineReactor(), path, pool=pool))
    gw, mcp = UA(rm, GW, "gw"), UA(rm, MCP1, "mcp")
    gw.invite("sip:800@10.0.0.1", "c1")
    inv = rm.one(to=MCP1)
    mcp.respond(inv, 603)
    rm.take()
    assert len(rm.sessions) == 1 and rm.sessions.writing == 1  # CDR not committed yet
    pool.release()
    assert len(rm.sessions) == 0
    [row] = read_all(path)
    assert (row["call_id"], row["end_reason"], row["final_status"], row["ivr_profile"]) == ("c1", "rejected", "603", "sales")


def test_sqlite_sink_stores_text_with_undecodable_bytes_from_the_wire(tmp_path):
    # The SIP parser keeps a non-UTF-8 byte of a Call-ID or From user as a
    # lone surrogate; SQLite refuses those, and the record (with the rest of
    # its batch) would be retried until shutdown instead of being stored.
    from twisted.internet.task import Clock

    class ClockReactor(Clock):
        def callFromThread(self, f, *a):
            f(*a)

    reactor = ClockReactor()
    path = str(tmp_path / "cdr.sqlite")
    sink = SQLiteSink(reactor, path, pool=InlinePool())
    done = []
    sink.write(CDR("G1", "c\udcff1", ani="\udce9", call_disposition="ok\udcff")).addBoth(done.append)
    sink.write(CDR("G2", "c2")).addBoth(done.append)
    assert done == [None, None] and sink.failed == 0
    rows = read_all(path)
    assert [(r["gvp_guid"], r["call_id"], r["ani"]) for r in rows] == [("G1", "c\\udcff1", "\\udce9"), ("G2", "c2", None)]
    assert rows[0]["call_disposition"] == "ok\\udcff"
    sink.close()
    assert reactor.getDelayedCalls() == []


def test_own_pool_starts_with_the_first_write_and_close_without_writes_finishes(tmp_path):
    """No thread before a CDR is written (a failed start must exit), and stopping such a sink completes."""
    from twisted.internet.task import Clock

    from ctic.rm.cdr import SQLiteSink

    sink = SQLiteSink(Clock(), str(tmp_path / "cdr.sqlite"))
    assert not sink.pool.started
    done = []
    sink.close().addCallback(done.append)
    assert done == [None] and not sink.pool.started
