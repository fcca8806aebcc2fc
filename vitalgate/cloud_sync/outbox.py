"""The gateway's durable outbox: every reading stays on disk until the broker acknowledged it.

A single SQLite file in WAL mode (plus its ``-wal`` and ``-shm`` files, all created with mode
0600: they hold health data). Readings are stored already encoded (:func:`schema.encode_reading`),
so a replay only joins bytes.

Lifecycle of a reading::

    add()  -> pending  -> next_batch() claims it (in memory) -> publish, QoS 1
              ^                                                |
              +------------ release() (publish failed) <-------+-> PUBACK -> ack() deletes it

fsync policy (durability):

* ``add`` commits with ``PRAGMA synchronous=FULL``: in WAL mode the commit fsyncs the WAL before
  ``add`` returns, so every reading ``add`` accepted survives ``kill -9`` and power loss (given a
  disk that honours fsync). A crash during ``add`` leaves either the whole call's readings or
  none of them: SQLite's transaction is atomic.
* ``ack`` records the acknowledged seq range (one tiny row per MQTT message) with
  ``synchronous=NORMAL``: no fsync of its own. The readings leave the pending set at once; their
  rows are deleted later in bulk (``flush_acks``: when the publisher is idle, above
  :data:`ACK_FLUSH_READINGS`, on open and on close), since deleting a row and its index entries
  costs more than publishing it. A power loss may forget the latest acks, and those readings are
  published again after the restart. That is safe by design -- the store is idempotent by
  reading_id / series+timestamp -- and saves an fsync (~3 ms here) per MQTT message. The next
  FULL commit or checkpoint makes earlier acks durable too.
* Claims (which readings are in flight) live only in memory: after a crash every unacknowledged
  reading is pending again and gets re-sent.

Disk budget: ``max_bytes`` bounds the bytes of stored readings (encoded JSON plus id plus a fixed
per-row overhead; the files are somewhat larger). When an ``add`` would exceed it:

* ``full_policy="refuse"`` (default, *lose nothing*): the whole ``add`` is refused with
  :class:`OutboxFullError` and nothing of it is stored, so the gateway leaves the readings on the
  device and does not advance its sync point. The oldest unsent data is kept.
* ``full_policy="drop_newest"``: as many readings as fit are stored, the rest are dropped and
  counted (explicit, alerted data loss, for deployments that prefer fresh data over blocking).

Either way an ``outbox_full`` alert event is queued durably in the outbox itself
(:meth:`Outbox.next_alerts`), and the publisher sends it on the alerts topic once connected.

Readings the schema refuses (for example a patient id with a space) are not lost either: they go
to the outbox's own dead-letter table with the reason, and an ``outbox_rejected`` alert (reading
ids and reasons, no values) is queued. ``add`` never raises for them, so one malformed record
cannot block a device's sync forever.

Thread safety: every method takes an internal lock, so the gateway and the publisher may call
from different threads (``asyncio.to_thread``). One process per outbox file: claims are in memory.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

import orjson

from vitalgate.cloud_sync import schema
from vitalgate.errors import SchemaError, StoreError, VitalgateError
from vitalgate.readings import Reading, ReadingKind

__all__ = [
    "ACK_FLUSH_READINGS",
    "ROW_OVERHEAD_BYTES",
    "Batch",
    "FullPolicy",
    "Outbox",
    "OutboxAlert",
    "OutboxFullError",
    "OutboxStats",
]

log = logging.getLogger(__name__)

FullPolicy = Literal["refuse", "drop_newest"]

#: Bytes counted per stored reading on top of its encoded JSON and id (row + index overhead).
ROW_OVERHEAD_BYTES: Final = 48
#: Above this many acknowledged-but-not-deleted readings the publisher deletes them even while
#: busy (otherwise it waits until it is idle).
ACK_FLUSH_READINGS: Final = 200_000
#: Below this fraction of ``max_bytes`` a full outbox counts as recovered (re-arms the alert).
_RECOVERED_FRACTION: Final = 0.9

_SCHEMA_SQL: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_seq ON outbox (kind, seq);
CREATE TABLE IF NOT EXISTS acked (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    readings INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    event BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS deadletter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL,
    added_at REAL NOT NULL
);
"""


class OutboxFullError(VitalgateError):
    """The outbox's disk budget is reached; nothing of the refused ``add`` was stored."""

    def __init__(self, *, stored_bytes: int, max_bytes: int, refused: int) -> None:
        self.stored_bytes = stored_bytes
        self.max_bytes = max_bytes
        self.refused = refused
        super().__init__(
            f"outbox full ({stored_bytes} of {max_bytes} bytes): refused {refused} readings; "
            "keep them on the device and retry after the backlog drained"
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Readings of one kind claimed for one MQTT message, oldest first."""

    batch_id: int
    kind: ReadingKind
    items: tuple[bytes, ...]  # readings encoded by schema.encode_reading
    reading_ids: tuple[str, ...]
    first_seq: int
    last_seq: int

    def __len__(self) -> int:
        return len(self.items)

    @property
    def size_bytes(self) -> int:
        """Bytes of the encoded readings (the message adds ~150 bytes of envelope)."""
        return sum(len(i) + 1 for i in self.items)

    def payload(self, gateway_id: str, *, sent_at: datetime | None = None) -> bytes:
        """The ``vitalgate.readings/1`` message for this batch."""
        return schema.encode_batch(gateway_id, self.kind, self.items, sent_at=sent_at)


@dataclass(frozen=True, slots=True)
class OutboxAlert:
    """An alert event the outbox queued durably (``event`` has at least a ``type``)."""

    alert_id: int
    at: datetime
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters and levels of an outbox (totals since this Outbox object was opened)."""

    pending: int  # stored, not yet acknowledged (in flight included)
    pending_by_kind: dict[str, int]
    stored_bytes: int
    max_bytes: int | None
    full: bool
    in_flight_batches: int
    in_flight_readings: int
    added_total: int = 0
    duplicates_total: int = 0
    acked_total: int = 0
    released_total: int = 0
    refused_total: int = 0
    dropped_total: int = 0
    rejected_total: int = 0
    deadletter_rows: int = 0
    alerts_pending: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def _secure_file(path: Path) -> None:
    """Create ``path`` with mode 0600 (or tighten an existing one) before SQLite opens it.

    SQLite creates ``-wal`` and ``-shm`` with the database file's permissions, so this also
    covers them; existing ones are tightened as well.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)


class Outbox:
    """The durable outbox (see the module docstring for durability and the full policy)."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int | None = None,
        full_policy: FullPolicy = "refuse",
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive or None, got {max_bytes}")
        if full_policy not in ("refuse", "drop_newest"):
            raise ValueError(f"full_policy must be 'refuse' or 'drop_newest', got {full_policy!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.full_policy: FullPolicy = full_policy
        self._lock = threading.Lock()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _secure_file(self.path)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"outbox {self.path}: WAL mode refused (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA_SQL)
        except sqlite3.Error as exc:
            raise StoreError(f"outbox {self.path}: cannot open: {exc}") from exc
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
        self._sync: str = "FULL"
        self._acked_readings = 0
        # Acknowledged rows a previous run had not deleted yet go now, before counting.
        while self._flush_chunk(256) >= 0:
            pass
        # Levels, loaded once and then kept in memory.
        self._count: dict[str, int] = {str(k): 0 for k in ReadingKind}
        self._bytes = 0
        for kind, n, nbytes in self._db.execute(
            "SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM outbox GROUP BY kind"
        ):
            self._count[kind] = self._count.get(kind, 0) + int(n)
            self._bytes += int(nbytes)
        # Claims: per kind the highest seq handed out, released batches to re-serve first.
        self._cursor: dict[str, int] = {k: 0 for k in self._count}
        self._released: dict[str, deque[Batch]] = {k: deque() for k in self._count}
        self._in_flight: dict[int, Batch] = {}
        self._in_flight_readings = 0  # kept in step with _in_flight (lock-free reads)
        self._batch_ids = itertools.count(1)
        self._full_alerted = False
        self._counters: dict[str, int] = dict.fromkeys(
            ("added", "duplicates", "acked", "released", "refused", "dropped", "rejected"), 0
        )
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Delete acknowledged rows still pending deletion, then close the database."""
        with self._lock:
            if not self._closed:
                try:
                    while self._flush_chunk(256) >= 0:
                        pass
                finally:
                    self._closed = True
                    self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _set_sync(self, level: str) -> None:
        if self._sync != level:
            self._db.execute(f"PRAGMA synchronous={level}")
            self._sync = level

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"outbox {self.path} is closed")

    # -- add ---------------------------------------------------------------------------------

    def add(self, readings: Sequence[Reading]) -> int:
        """Store readings durably (one transaction); the number newly added.

        A reading already in the outbox (same reading_id) is stored once. Returns after the
        commit is fsynced. Raises :class:`OutboxFullError` (policy ``"refuse"``) when the disk
        budget would be exceeded -- then nothing of this call was stored.
        """
        rows: list[tuple[str, str, bytes, int]] = []
        rejected: list[tuple[str, str, str, bytes]] = []
        for r in readings:
            try:
                payload = schema.encode_reading_checked(r)
            except SchemaError as exc:
                rejected.append(
                    (r.reading_id, str(r.kind), str(exc), orjson.dumps(schema.reading_to_dict(r)))
                )
                continue
            rows.append(
                (
                    r.reading_id,
                    str(r.kind),
                    payload,
                    len(payload) + len(r.reading_id) + ROW_OVERHEAD_BYTES,
                )
            )
        now = time.time()
        with self._lock:
            self._check_open()
            if rejected:
                self._reject(rejected, now)
            if not rows:
                return 0
            try:
                return self._insert(rows, now)
            except sqlite3.Error as exc:
                raise StoreError(f"outbox {self.path}: add failed: {exc}") from exc

    def _insert(self, rows: list[tuple[str, str, bytes, int]], now: float) -> int:
        db = self._db
        self._set_sync("FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            added: list[tuple[str, int]] = []
            budget = None if self.max_bytes is None else self.max_bytes - self._bytes
            dropped = 0
            for reading_id, kind, payload, size in rows:
                cur = db.execute(
                    "INSERT OR IGNORE INTO outbox (reading_id, kind, payload, size, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (reading_id, kind, payload, size, now),
                )
                if cur.rowcount != 1:
                    continue  # already in the outbox
                if budget is not None:
                    if size > budget:
                        if self.full_policy == "refuse":
                            db.execute("ROLLBACK")
                            self._refuse(len(rows))
                        db.execute("DELETE FROM outbox WHERE seq = ?", (cur.lastrowid,))
                        dropped += 1
                        continue
                    budget -= size
                added.append((kind, size))
            if dropped and not self._full_alerted:
                self._full_alerted = True
                self._queue_alert(
                    {
                        "type": "outbox_full",
                        "policy": "drop_newest",
                        "dropped": dropped,
                        "stored_bytes": self._bytes + sum(s for _, s in added),
                        "max_bytes": self.max_bytes,
                    },
                    in_transaction=True,
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        for kind, size in added:
            self._count[kind] += 1
            self._bytes += size
        self._counters["added"] += len(added)
        self._counters["duplicates"] += len(rows) - len(added) - dropped
        if dropped:
            self._counters["dropped"] += dropped
            log.warning(
                "outbox full: dropped %d newest readings (policy drop_newest, %d/%s bytes)",
                dropped,
                self._bytes,
                self.max_bytes,
            )
        return len(added)

    def _refuse(self, n: int) -> None:
        assert self.max_bytes is not None
        self._counters["refused"] += n
        if not self._full_alerted:
            self._full_alerted = True
            self._queue_alert(
                {
                    "type": "outbox_full",
                    "policy": "refuse",
                    "refused": n,
                    "pending": sum(self._count.values()),
                    "stored_bytes": self._bytes,
                    "max_bytes": self.max_bytes,
                },
                in_transaction=False,
            )
        log.warning(
            "outbox full (%d/%d bytes): refused %d readings; they stay on the device",
            self._bytes,
            self.max_bytes,
            n,
        )
        raise OutboxFullError(stored_bytes=self._bytes, max_bytes=self.max_bytes, refused=n)

    def _reject(self, rejected: list[tuple[str, str, str, bytes]], now: float) -> None:
        db = self._db
        self._set_sync("FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO deadletter (reading_id, kind, reason, payload, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(rid, kind, reason, payload, now) for rid, kind, reason, payload in rejected],
            )
            self._queue_alert(
                {
                    "type": "outbox_rejected",
                    "count": len(rejected),
                    "rejected": [
                        {"reading_id": rid, "kind": kind, "reason": reason}
                        for rid, kind, reason, _ in rejected[:20]
                    ],
                },
                in_transaction=True,
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._counters["rejected"] += len(rejected)
        log.warning(
            "outbox: %d readings do not fit the schema; kept in its dead-letter table",
            len(rejected),
        )

    def _queue_alert(self, event: dict[str, Any], *, in_transaction: bool) -> None:
        at = schema.format_utc(datetime.now(UTC))
        sql = "INSERT INTO alerts (at, event) VALUES (?, ?)"
        if in_transaction:
            self._db.execute(sql, (at, orjson.dumps(event)))
        else:
            self._set_sync("FULL")
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(sql, (at, orjson.dumps(event)))

    # -- claim / ack / release -----------------------------------------------------------------

    def next_batches(
        self,
        count: int,
        *,
        max_readings: int = 500,
        max_bytes: int = 64 * 1024,
    ) -> list[Batch]:
        """Claim up to ``count`` batches at once (oldest first; see :meth:`next_batch`)."""
        out: list[Batch] = []
        while len(out) < count:
            batch = self.next_batch(max_readings=max_readings, max_bytes=max_bytes)
            if batch is None:
                break
            out.append(batch)
        return out

    def next_batch(
        self,
        kind: ReadingKind | str | None = None,
        *,
        max_readings: int = 500,
        max_bytes: int = 64 * 1024,
    ) -> Batch | None:
        """Claim the oldest pending readings of ``kind`` (None: of the kind with the oldest).

        At most ``max_readings`` readings and ``max_bytes`` bytes of encoded readings (at
        least one reading, even if it alone is larger). None when nothing is pending.
        Released batches are served again first.
        """
        if max_readings < 1 or max_bytes < 1:
            raise ValueError("max_readings and max_bytes must be positive")
        with self._lock:
            self._check_open()
            kinds = [str(ReadingKind(kind))] if kind is not None else list(self._count)
            for k in kinds:
                released = self._released[k]
                if released:
                    old = released.popleft()
                    batch = Batch(
                        next(self._batch_ids),
                        old.kind,
                        old.items,
                        old.reading_ids,
                        old.first_seq,
                        old.last_seq,
                    )
                    self._in_flight[batch.batch_id] = batch
                    self._in_flight_readings += len(batch)
                    return batch
            if kind is None:
                k_oldest: str | None = None
                oldest = 0
                for k in kinds:
                    if self._count[k] == 0:
                        continue
                    row = self._db.execute(
                        "SELECT seq FROM outbox WHERE kind = ? AND seq > ? ORDER BY seq LIMIT 1",
                        (k, self._cursor[k]),
                    ).fetchone()
                    if row is not None and (k_oldest is None or row[0] < oldest):
                        k_oldest, oldest = k, row[0]
                if k_oldest is None:
                    return None
                k = k_oldest
            else:
                k = kinds[0]
                if self._count[k] == 0:
                    return None
            # Fetch about as many rows as fit in max_bytes (by the average stored size), not
            # max_readings of them: reading blobs that would be cut off cost time for nothing.
            total_count = sum(self._count.values())
            avg = self._bytes / total_count if total_count else 0.0
            estimate = int(max_bytes / avg * 1.1) + 4 if avg else max_readings
            limit = max(1, min(max_readings, estimate))
            rows: list[tuple[int, str, bytes]] = []
            total = 0
            after = self._cursor[k]
            full = False
            while not full:
                chunk = self._db.execute(
                    "SELECT seq, reading_id, payload FROM outbox WHERE kind = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (k, after, limit),
                ).fetchall()
                for row in chunk:
                    size = len(row[2]) + 1
                    if rows and (total + size > max_bytes or len(rows) >= max_readings):
                        full = True
                        break
                    rows.append(row)
                    total += size
                if len(chunk) < limit:
                    break
                after = chunk[-1][0]
                limit = max(1, min(max_readings - len(rows), limit))
            if not rows:
                return None
            batch = Batch(
                batch_id=next(self._batch_ids),
                kind=ReadingKind(k),
                items=tuple(r[2] for r in rows),
                reading_ids=tuple(r[1] for r in rows),
                first_seq=rows[0][0],
                last_seq=rows[-1][0],
            )
            self._cursor[k] = batch.last_seq
            self._in_flight[batch.batch_id] = batch
            self._in_flight_readings += len(batch)
            return batch

    def ack(self, batch_id: int) -> None:
        """The broker acknowledged the batch: delete its readings (see the fsync policy)."""
        self.ack_many((batch_id,))

    def ack_many(self, batch_ids: Sequence[int]) -> None:
        """Acknowledge several batches (raises StoreError if any is not in flight).

        One small transaction records the acknowledged seq ranges; the rows themselves are
        deleted later in bulk (:meth:`flush_acks`: when the publisher is idle, on open and on
        close), because deleting rows one index entry at a time costs more than publishing them.
        """
        with self._lock:
            self._check_open()
            missing = [b for b in batch_ids if b not in self._in_flight]
            if missing:
                raise StoreError(f"outbox: no batch {missing[0]} in flight")
            batches = [self._in_flight[b] for b in batch_ids]
            ranges = [(str(b.kind), b.first_seq, b.last_seq, len(b)) for b in batches]
            self._set_sync("NORMAL")
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.executemany(
                        "INSERT INTO acked (kind, first_seq, last_seq, readings) "
                        "VALUES (?, ?, ?, ?)",
                        ranges,
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"outbox {self.path}: ack failed: {exc}") from exc
            for batch in batches:
                del self._in_flight[batch.batch_id]
                n = len(batch)
                k = str(batch.kind)
                self._in_flight_readings -= n
                self._count[k] -= n
                self._bytes -= sum(len(i) for i in batch.items) + sum(
                    len(r) + ROW_OVERHEAD_BYTES for r in batch.reading_ids
                )
                self._counters["acked"] += n
                self._acked_readings += n
            if (
                self._full_alerted
                and self.max_bytes is not None
                and self._bytes < _RECOVERED_FRACTION * self.max_bytes
            ):
                self._full_alerted = False

    def flush_acks(self, *, max_readings: int | None = None, chunk_ranges: int = 16) -> int:
        """Delete the rows of acknowledged batches; the number of readings deleted.

        Works in small transactions (``chunk_ranges`` batches each) and lets go of the lock
        between them, so adds and claims are never held up for long; stops after about
        ``max_readings`` readings (None: when all are gone).
        """
        deleted = 0
        while max_readings is None or deleted < max_readings:
            with self._lock:
                self._check_open()
                n = self._flush_chunk(chunk_ranges)
            if n < 0:
                break
            deleted += n
        return deleted

    def _flush_chunk(self, chunk_ranges: int) -> int:
        """Delete one chunk of acknowledged ranges (lock held); -1 when none is left."""
        rows = self._db.execute(
            "SELECT id, kind, first_seq, last_seq, readings FROM acked ORDER BY id LIMIT ?",
            (chunk_ranges,),
        ).fetchall()
        if not rows:
            return -1
        self._set_sync("NORMAL")
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "DELETE FROM outbox WHERE kind = ? AND seq BETWEEN ? AND ?",
                    [(k, lo, hi) for _, k, lo, hi, _ in rows],
                )
                self._db.execute("DELETE FROM acked WHERE id <= ?", (rows[-1][0],))
        except sqlite3.Error as exc:
            raise StoreError(
                f"outbox {self.path}: deleting acknowledged rows failed: {exc}"
            ) from exc
        n = sum(int(r[4]) for r in rows)
        self._acked_readings = max(0, self._acked_readings - n)
        return n

    def release(self, batch_id: int) -> None:
        """Publishing the batch failed: its readings are pending again (served first)."""
        with self._lock:
            batch = self._in_flight.pop(batch_id, None)
            if batch is None:
                raise StoreError(f"outbox: no batch {batch_id} in flight")
            self._in_flight_readings -= len(batch)
            self._released[str(batch.kind)].append(batch)
            self._counters["released"] += len(batch)

    def release_all(self) -> int:
        """Release every batch in flight (after a disconnect); the number released."""
        with self._lock:
            batches = sorted(self._in_flight.values(), key=lambda b: b.first_seq)
            self._in_flight.clear()
            self._in_flight_readings = 0
            for b in batches:
                self._released[str(b.kind)].append(b)
                self._counters["released"] += len(b)
            # Re-serve in age order within each kind.
            for k, q in self._released.items():
                self._released[k] = deque(sorted(q, key=lambda b: b.first_seq))
            return len(batches)

    # -- levels ------------------------------------------------------------------------------

    def pending_count(self, kind: ReadingKind | str | None = None) -> int:
        """Readings stored and not yet acknowledged (in flight included).

        Lock-free (a snapshot that may be a moment old): the event loop may poll it without
        waiting behind an ``add``'s fsync in another thread.
        """
        if kind is None:
            return sum(self._count.values())
        return self._count[str(ReadingKind(kind))]

    def unclaimed_count(self) -> int:
        """Readings pending and not in flight (what next_batch can still hand out).

        Lock-free (a snapshot that may be a moment old), so the event loop can poll it without
        waiting behind an ``add``'s fsync in another thread.
        """
        return sum(self._count.values()) - self._in_flight_readings

    def unclaimed_bytes_estimate(self) -> int:
        """Approximate encoded bytes of the unclaimed readings (lock-free)."""
        total = sum(self._count.values())
        if total <= 0:
            return 0
        return int(self._bytes / total * (total - self._in_flight_readings))

    @property
    def unflushed_acks(self) -> int:
        """Acknowledged readings whose rows are not deleted yet (lock-free snapshot)."""
        return self._acked_readings

    def stats(self) -> OutboxStats:
        with self._lock:
            self._check_open()
            dead = self._db.execute("SELECT COUNT(*) FROM deadletter").fetchone()[0]
            alerts = self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
            c = self._counters
            return OutboxStats(
                pending=sum(self._count.values()),
                pending_by_kind={k: n for k, n in self._count.items() if n},
                stored_bytes=self._bytes,
                max_bytes=self.max_bytes,
                full=self.max_bytes is not None and self._full_alerted,
                in_flight_batches=len(self._in_flight),
                in_flight_readings=sum(len(b) for b in self._in_flight.values()),
                added_total=c["added"],
                duplicates_total=c["duplicates"],
                acked_total=c["acked"],
                released_total=c["released"],
                refused_total=c["refused"],
                dropped_total=c["dropped"],
                rejected_total=c["rejected"],
                deadletter_rows=int(dead),
                alerts_pending=int(alerts),
            )

    # -- alerts ------------------------------------------------------------------------------

    def add_alert(self, event: Mapping[str, Any]) -> None:
        """Queue an alert event durably (``event["type"]`` names it); the publisher sends it."""
        if not isinstance(event.get("type"), str) or not event["type"]:
            raise SchemaError("an alert event needs a non-empty string 'type'")
        with self._lock:
            self._check_open()
            self._queue_alert(dict(event), in_transaction=False)

    def next_alerts(self, limit: int = 100) -> list[OutboxAlert]:
        """Queued alert events, oldest first (they stay until :meth:`ack_alerts`)."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT alert_id, at, event FROM alerts ORDER BY alert_id LIMIT ?", (limit,)
            ).fetchall()
        return [
            OutboxAlert(int(a), datetime.fromisoformat(at), orjson.loads(ev)) for a, at, ev in rows
        ]

    def ack_alerts(self, alert_ids: Iterable[int]) -> None:
        """The alerts were published (PUBACK): forget them."""
        ids = [(int(a),) for a in alert_ids]
        if not ids:
            return
        with self._lock:
            self._check_open()
            self._set_sync("NORMAL")
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM alerts WHERE alert_id = ?", ids)

    def deadletters(self) -> list[tuple[str, str, str]]:
        """``(reading_id, kind, reason)`` of every reading the schema refused."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT reading_id, kind, reason FROM deadletter ORDER BY id"
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]
