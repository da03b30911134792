# -*- test-case-name: tests.rm.test_rm_cdr -*-
"""
Call-detail records: the record, the sink interface, and the default
SQLite sink.

The reference documents no RM CDR field list (docs/gvp-rm-ctic.rst §7), so the record is ours:
GVP GUID, tenant, IVR Profile, CTI flag, the resources used, ANI/DNIS,
times, how the call ended, and what the CTIC reported in
C{X-Genesys-GVP-CDR} (call disposition, queue wait time, other pairs).

L{SQLiteSink} never blocks the reactor: records queue up and one worker
thread writes them in batches, one transaction per batch with
C{synchronous=FULL}; each record's Deferred fires only after its batch is
committed, and the RM forgets a session only then, so a restart loses no
CDR of a finished call.  A batch that cannot be written (disk full, file
locked, path gone) is kept and retried with back-off (0.5 s doubling to
30 s); at shutdown whatever is still unwritten is appended, fsync'd, to
C{<path>.unwritten.jsonl} (ours), one JSON record per line, for an operator
to load later.  No CDR is dropped.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import Interface, implementer

log = Logger(namespace="ctic.rm.cdr")


@dataclass
class CDR:
    gvp_guid: str
    call_id: str
    tenant: str | None = None
    ivr_profile: str | None = None
    cti: bool = False
    use_cti: int = 0
    gateway: str | None = None
    ctic: str | None = None
    mcp: str | None = None
    ani: str | None = None
    dnis: str | None = None
    start_time: float = 0.0
    answer_time: float | None = None
    end_time: float = 0.0
    end_reason: str = ""
    final_status: int | None = None
    call_disposition: str | None = None
    queue_wait_time: float | None = None
    extra: dict = field(default_factory=dict)
    legs: list = field(default_factory=list)

    def row(self) -> dict:
        # Not dataclasses.asdict: its deep copy was 10% of the RM's CPU per call.
        d = {name: getattr(self, name) for name in COLUMNS}
        for key, value in d.items():
            if isinstance(value, str) and not value.isascii():
                d[key] = _storable(value)
        d["cti"] = int(self.cti)
        d["extra"] = json.dumps(self.extra, sort_keys=True) if self.extra else None
        d["legs"] = json.dumps(self.legs)
        return d


COLUMNS = tuple(CDR.__dataclass_fields__)


def _storable(text: str) -> str:
    """
    Text SQLite can store.  Values read off the wire (Call-ID, ANI, DNIS,
    the CTIC's call disposition) keep undecodable bytes as lone surrogates
    (surrogateescape), which SQLite refuses; one such record would fail its
    whole batch on every retry.  Surrogates are written as C{\\udcHH}.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ICDRSink(Interface):
    """Where finished sessions' CDRs go."""

    def write(cdr):
        """Store one CDR; return a Deferred that fires once it is durable."""

    def close():
        """Flush and release; returns a Deferred."""


@implementer(ICDRSink)
class MemorySink:
    """Keeps CDRs in a list (tests, and C{[cdr] sink = none} keeps nothing)."""

    def __init__(self, keep=True):
        self.records: list[CDR] = []
        self.keep = keep

    def write(self, cdr):
        if self.keep:
            self.records.append(cdr)
        return defer.succeed(None)

    def close(self):
        return defer.succeed(None)


SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS cdr (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {'REAL' if c.endswith('_time') else 'TEXT'}" for c in COLUMNS)}
)
"""


class _Writer:
    """The SQLite side; used only from the sink's single worker thread."""

    def __init__(self, path):
        self.path = path
        self.db = None

    def open(self):
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA_SQL)

    def write(self, rows):
        if self.db is None:
            self.open()
        sql = f"INSERT INTO cdr ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
        self.db.execute("BEGIN")
        try:
            self.db.executemany(sql, rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None


@implementer(ICDRSink)
class SQLiteSink:
    """
    Batched, durable SQLite writes on one worker thread.

    @param reactor: provides C{callFromThread} (the reactor); tests may pass
        a stand-in that calls at once.
    @param pool: a C{twisted.python.threadpool.ThreadPool}-like object with
        C{callInThreadWithCallback}; the sink makes its own one-thread pool
        when none is given and stops it on C{close}.
    """

    def __init__(self, reactor, path: str, batch_size: int = 200, pool=None):
        self.reactor = reactor
        self.path = path
        self.batch_size = batch_size
        self._writer = _Writer(path)
        self._own_pool = pool is None
        if pool is None:
            from twisted.python.threadpool import ThreadPool

            # Started by the first write, not here: a process whose start
            # fails (a port in use) must have no thread keeping it alive.
            pool = ThreadPool(1, 1, name="ctic-cdr")
        self.pool = pool
        self._queue: list[tuple[dict, defer.Deferred]] = []
        self._busy = False
        self._retry = None
        self._retries = 0
        self._closing = False
        self.written = 0
        self.failed = 0
        self.spooled = 0

    def write(self, cdr):
        d = defer.Deferred()
        self._queue.append((cdr.row(), d))
        if not self._busy:
            self._flush()
        return d

    def _flush(self):
        batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size:]
        if not batch:
            self._busy = False
            return
        self._busy = True
        if self._own_pool and not self.pool.started:
            self.pool.start()
        rows = [r for r, _ in batch]
        result = defer.Deferred()
        result.addCallbacks(self._done, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

        def on_result(success, value):
            fire = result.callback if success else result.errback
            self.reactor.callFromThread(fire, None if success else value)

        self.pool.callInThreadWithCallback(on_result, self._writer.write, rows)

    def _done(self, _, batch):
        self.written += len(batch)
        self._retries = 0
        self._flush()
        for _, d in batch:
            d.callback(None)

    def _failed(self, failure, batch):
        """Keep the batch and try again later; never drop a CDR."""
        self.failed += 1
        self._queue[:0] = batch
        if self._closing:
            self._busy = False
            return
        delay = min(30.0, 0.5 * 2 ** min(self._retries, 6))
        self._retries += 1
        log.failure(
            "Could not write {count} CDRs to {path}; retrying in {delay}s", failure,
            count=len(batch), path=self.path, delay=delay,
        )
        self._retry = self.reactor.callLater(delay, self._flush)

    @property
    def pending(self) -> int:
        """CDRs not yet durable."""
        return len(self._queue)

    def close(self):
        """Write what is queued; spool what cannot be written; release the file."""
        d = defer.Deferred()
        self._closing = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
            self._retry = None
            self._busy = False

        def on_result(success, value):
            self.reactor.callFromThread(d.callback, None)

        def drain():
            if self._busy:
                self.reactor.callLater(0.01, drain)
                return
            if self._queue and self._retries == 0 and self.failed == 0:
                self._flush()
                self.reactor.callLater(0.01, drain)
                return
            if self._queue:
                self._spool()
            if self._own_pool and not self.pool.started:
                d.callback(None)  # nothing was ever written: no thread, no file to close
                return
            self.pool.callInThreadWithCallback(on_result, self._writer.close)

        drain()
        if self._own_pool:
            d.addBoth(lambda r: (self.pool.stop(), r)[1])
        return d

    def _spool(self) -> None:
        batch, self._queue = self._queue, []
        spool = self.path + ".unwritten.jsonl"
        try:
            with open(spool, "a", encoding="utf-8") as f:
                for row, _ in batch:
                    f.write(json.dumps(row, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            log.critical("Could not spool {count} CDRs to {spool}: {error}; they are lost",
                         count=len(batch), spool=spool, error=str(e))
            for _, d in batch:
                d.errback(e)
            return
        self.spooled += len(batch)
        log.error("Spooled {count} unwritten CDRs to {spool}", count=len(batch), spool=spool)
        for _, d in batch:
            d.callback(None)


def read_all(path: str) -> list[dict]:
    """Every CDR row in a file, oldest first (tests, operators' scripts)."""
    db = sqlite3.connect(path)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM cdr ORDER BY id")]
    finally:
        db.close()
