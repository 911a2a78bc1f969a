"""The embedded default store: one SQLite file, no server. Alerts keep their ECS document as JSON, with the
columns a query filters on beside it; triage lives in its own column, so writing a detection again never
touches what people decided.

A triage change and its audit record are one ``BEGIN IMMEDIATE`` transaction: the write lock is taken before the
alert and the audit head are read, so concurrent processes queue for it instead of conflicting on the audit
sequence, and a failed audit append rolls the change back.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from soc.core.errors import StoreError, StoreUnavailable
from soc.core.model import TRIAGE_FIELDS, Alert, Event, event_id, get_field, triage_from_doc
from soc.store.base import (
    AUDIT_HEAD,
    GENESIS,
    AlertQuery,
    AlertStore,
    AuditConflict,
    TriageCompute,
    chain_record,
    check_triage_fields,
)

SCHEMA_VERSION = 3  # 3: events.event_id (unique), so an event seen again is stored once
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    severity INTEGER NOT NULL,
    system TEXT,
    status TEXT NOT NULL,
    incident_id TEXT,
    suppressed INTEGER NOT NULL DEFAULT 0,
    triage TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (timestamp);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT,
    dataset TEXT,
    doc TEXT NOT NULL,
    event_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (event_id);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    doc TEXT NOT NULL
);
"""

# On a second write of the same alert, the detection is refreshed and the triage columns are left alone.
_UPSERT = """
INSERT INTO alerts (id, timestamp, last_seen, rule_id, severity, system, status, incident_id, suppressed, triage, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    last_seen = excluded.last_seen, severity = excluded.severity, system = excluded.system, doc = excluded.doc
"""


class _Rows(list[Any]):
    """A statement's rows, all read while the connection was ours (what the store uses of a cursor)."""

    rowcount = -1

    def fetchone(self) -> Any:
        return self[0] if self else None


class _SerialConnection(sqlite3.Connection):
    """One connection shared by threads (the console's thread pool): a transaction, and each statement up to its
    last row, hold one lock, so no thread joins another's open transaction, rolls it back on its own error, or
    reads the error another thread's statement left on the connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.RLock()

    def __enter__(self) -> Self:
        self._lock.acquire()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        finally:
            self._lock.release()

    def execute(self, sql: str, parameters: Any = (), /) -> _Rows:  # type: ignore[override]
        with self._lock:
            cursor = super().execute(sql, parameters)
            rows = _Rows(cursor.fetchall())
            rows.rowcount = cursor.rowcount
        return rows

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        with self._lock:
            return super().executemany(sql, parameters)


class SqliteStore(AlertStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        try:
            if self.path.parent != Path():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                       factory=_SerialConnection)
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables and version == 2:
                self._migrate_from_2()
            elif tables and version != SCHEMA_VERSION:
                raise StoreError(f"made by another version of soc (schema {version}, this one reads "
                                 f"{SCHEMA_VERSION}); move it aside to start afresh", path=str(self.path))
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store: {exc}", path=str(self.path)) from None
        except OSError as exc:
            raise StoreError(f"cannot create SQLite store: {exc.strerror}", path=str(self.path)) from None

    def _migrate_from_2(self) -> None:
        """Schema 2 to 3: events get their id column and unique index. Ids are computed for the rows there;
        where an older run stored an event twice, the later copies keep a NULL id (NULLs never collide)."""
        with self._immediate() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] != 2:  # another process migrated it meanwhile
                return
            db.execute("ALTER TABLE events ADD COLUMN event_id TEXT")
            db.execute("CREATE UNIQUE INDEX events_by_id ON events (event_id)")
            last = 0
            while rows := list(db.execute("SELECT seq, doc FROM events WHERE seq > ? ORDER BY seq LIMIT 5000",
                                          (last,))):
                db.executemany("UPDATE OR IGNORE events SET event_id = ? WHERE seq = ?",
                               [(event_id(json.loads(doc)), seq) for seq, doc in rows])
                last = rows[-1][0]
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds SQLite's write lock from its first statement (BEGIN IMMEDIATE), so what
        it reads cannot change before it commits; rolled back on any exception."""
        with self._db._lock:  # the connection's own lock (threads): held for the whole transaction
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # still locked after the 30 s busy timeout
                raise StoreUnavailable(f"SQLite store busy: {exc}", path=str(self.path)) from None
            try:
                yield self._db
            except BaseException:
                self._db.rollback()
                raise
            try:
                self._db.commit()
            except sqlite3.OperationalError as exc:
                self._db.rollback()
                raise StoreUnavailable(f"SQLite store busy: {exc}", path=str(self.path)) from None

    def _execute(self, sql: str, rows: Iterable[Sequence[Any]] | Sequence[Any] = (), many: bool = False) -> int:
        try:
            with self._db:
                cursor = self._db.executemany(sql, rows) if many else self._db.execute(sql, rows)
                return cursor.rowcount
        except sqlite3.OperationalError as exc:  # locked or busy: another writer, retry later
            raise StoreUnavailable(f"SQLite store busy: {exc}", path=str(self.path)) from None

    def write(self, alerts: Sequence[Alert]) -> None:
        rows = []
        for alert in alerts:
            doc = alert.to_ecs()
            triage = {name: doc["soc"]["alert"][name] for name in TRIAGE_FIELDS}
            rows.append((alert.id, alert.first_seen, alert.last_seen, alert.rule.id, int(alert.severity),
                         alert.system, alert.status.value, alert.incident_id, int(alert.suppressed_by is not None),
                         json.dumps(triage), json.dumps(doc, sort_keys=True)))
        self._execute(_UPSERT, rows, many=True)

    def write_events(self, events: Iterable[Event]) -> int:
        """Returns how many were new: an event already stored (same :func:`event_id`) is ignored."""
        rows = []
        for event in events:
            identity = event_id(event)
            if get_field(event, "event.id") is None:
                event = {**event, "event": {**(event.get("event") or {}), "id": identity}}
            rows.append((identity, get_field(event, "@timestamp"), get_field(event, "event.dataset"),
                         json.dumps(event)))
        if not rows:
            return 0
        return self._execute("INSERT OR IGNORE INTO events (event_id, timestamp, dataset, doc) VALUES (?, ?, ?, ?)",
                             rows, many=True)

    def events_for_address(self, address: str, limit: int = 20) -> list[Event]:
        rows = self._db.execute(
            "SELECT doc FROM events WHERE json_extract(doc, '$.source.ip') = ? OR json_extract(doc, '$.destination.ip')"
            " = ? ORDER BY timestamp DESC, seq DESC LIMIT ?", (address, address, limit))
        return [json.loads(row[0]) for row in rows]

    def get(self, alert_id: str) -> Alert | None:
        row = self._db.execute("SELECT doc, triage FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return _alert(row) if row else None

    def update_triage(self, alert_id: str, changes: dict[str, Any]) -> bool:
        check_triage_fields(changes)
        with self._immediate() as db:
            row = db.execute("SELECT triage FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                return False
            self._set_triage(db, alert_id, {**json.loads(row[0]), **changes})
        return True

    @staticmethod
    def _set_triage(db: sqlite3.Connection, alert_id: str, triage: dict[str, Any]) -> None:
        db.execute("UPDATE alerts SET triage = ?, status = ?, incident_id = ?, suppressed = ? WHERE id = ?",
                   (json.dumps(triage), triage["status"], triage.get("incident_id"),
                    int(triage.get("suppressed_by") is not None), alert_id))

    def change_triage(self, alert_id: str, compute: TriageCompute) -> list[dict[str, Any]] | None:
        try:
            with self._immediate() as db:
                row = db.execute("SELECT doc, triage FROM alerts WHERE id = ?", (alert_id,)).fetchone()
                if row is None:
                    return None
                change = compute(_alert(row))
                check_triage_fields(change.changes)
                self._set_triage(db, alert_id, {**json.loads(row[1]), **change.changes})
                return [self._chain(db, entry) for entry in change.audit]
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite store busy while changing alert {alert_id}: {exc}",
                                   path=str(self.path)) from None
        except sqlite3.Error as exc:  # the audit append failed: the change was rolled back with it
            raise StoreError(f"alert {alert_id} not changed: its audit record could not be stored ({exc})",
                             path=str(self.path)) from None

    @staticmethod
    def _chain(db: sqlite3.Connection, entry: dict[str, Any]) -> dict[str, Any]:
        """Append ``entry`` after the head, inside the caller's write transaction (so nobody else can)."""
        last = db.execute("SELECT doc FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        head: dict[str, Any] = json.loads(last[0]) if last else {"seq": 0, "hash": GENESIS}
        record = chain_record(entry, int(head["seq"]) + 1, str(head["hash"]))
        db.execute("INSERT INTO audit (seq, doc) VALUES (?, ?)", (record["seq"], json.dumps(record)))
        db.execute("INSERT OR REPLACE INTO records (kind, id, doc) VALUES (?, ?, ?)",
                   (*AUDIT_HEAD, json.dumps({"seq": record["seq"], "hash": record["hash"]}, sort_keys=True)))
        return record

    def search(self, query: AlertQuery) -> list[Alert]:
        clauses: list[str] = []
        params: list[int | str] = []
        for column, value in (("status", query.status.value if query.status else None), ("rule_id", query.rule_id),
                              ("system", query.system), ("incident_id", query.incident_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.min_severity is not None:
            clauses.append("severity >= ?")
            params.append(int(query.min_severity))
        if query.systems is not None:
            clauses.append(f"system IN ({', '.join('?' * len(query.systems))})" if query.systems else "0")
            params.extend(query.systems)
        if not query.include_suppressed:
            clauses.append("suppressed = 0")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT doc, triage FROM alerts {where} ORDER BY timestamp DESC, id LIMIT ?"
        return [_alert(row) for row in self._db.execute(sql, [*params, query.limit])]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM alerts").fetchone()[0])

    def delete_alerts(self, alert_ids: Sequence[str]) -> int:
        return self._execute("DELETE FROM alerts WHERE id = ?", [(i,) for i in alert_ids], many=True)

    def count_events(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def put_record(self, kind: str, record_id: str, doc: dict[str, Any]) -> None:
        self._execute("INSERT OR REPLACE INTO records (kind, id, doc) VALUES (?, ?, ?)",
                      (kind, record_id, json.dumps(doc, sort_keys=True)))

    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM records WHERE kind = ? AND id = ?", (kind, record_id)).fetchone()
        return json.loads(row[0]) if row else None

    def list_records(self, kind: str, limit: int = 10000) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT doc FROM records WHERE kind = ? ORDER BY id LIMIT ?", (kind, limit))
        return [json.loads(row[0]) for row in rows]

    def append_audit(self, entry: dict[str, Any]) -> None:
        try:
            self._execute("INSERT INTO audit (seq, doc) VALUES (?, ?)", (entry["seq"], json.dumps(entry)))
        except sqlite3.IntegrityError:
            raise AuditConflict(f"audit record {entry['seq']} exists already") from None

    def append_audit_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        try:
            with self._immediate() as db:
                return self._chain(db, entry)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite store busy while appending to the audit log: {exc}",
                                   path=str(self.path)) from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot append to the audit log: {exc}", path=str(self.path)) from None

    def complete_audit(self) -> int:
        return 0  # a change and its audit record commit together: nothing is ever left pending

    def read_audit(self) -> list[dict[str, Any]]:
        return [json.loads(row[0]) for row in self._db.execute("SELECT doc FROM audit ORDER BY seq")]

    def close(self) -> None:
        self._db.close()


def _alert(row: tuple[str, str]) -> Alert:
    doc, triage = row
    alert = Alert.from_ecs(json.loads(doc))
    for name, value in triage_from_doc(json.loads(triage)).items():
        setattr(alert, name, value)
    return alert
