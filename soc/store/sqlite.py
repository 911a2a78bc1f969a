"""The embedded default store: one SQLite file, no server. Alerts keep their ECS document as JSON, with the
columns a query filters on beside it; triage lives in its own column, so writing a detection again never
touches what people decided."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from soc.core.errors import StoreError, StoreUnavailable
from soc.core.model import TRIAGE_FIELDS, Alert, Event, get_field, triage_from_doc
from soc.store.base import AlertQuery, AlertStore, AuditConflict

SCHEMA_VERSION = 2
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
    doc TEXT NOT NULL
);
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


class SqliteStore(AlertStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        try:
            if self.path.parent != Path():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                raise StoreError(f"made by another version of soc (schema {version}, this one reads "
                                 f"{SCHEMA_VERSION}); move it aside to start afresh", path=str(self.path))
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store: {exc}", path=str(self.path)) from None
        except OSError as exc:
            raise StoreError(f"cannot create SQLite store: {exc.strerror}", path=str(self.path)) from None

    def _execute(self, sql: str, rows: Iterable[Sequence[Any]] | Sequence[Any] = (), many: bool = False) -> int:
        try:
            with self._db:
                cursor = self._db.executemany(sql, rows) if many else self._db.execute(sql, rows)  # type: ignore[arg-type]
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
        rows = [(get_field(e, "@timestamp"), get_field(e, "event.dataset"), json.dumps(e)) for e in events]
        self._execute("INSERT INTO events (timestamp, dataset, doc) VALUES (?, ?, ?)", rows, many=True)
        return len(rows)

    def events_for_address(self, address: str, limit: int = 20) -> list[Event]:
        rows = self._db.execute(
            "SELECT doc FROM events WHERE json_extract(doc, '$.source.ip') = ? OR json_extract(doc, '$.destination.ip')"
            " = ? ORDER BY timestamp DESC, seq DESC LIMIT ?", (address, address, limit))
        return [json.loads(row[0]) for row in rows]

    def get(self, alert_id: str) -> Alert | None:
        row = self._db.execute("SELECT doc, triage FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return _alert(row) if row else None

    def update_triage(self, alert_id: str, changes: dict[str, Any]) -> bool:
        unknown = set(changes) - set(TRIAGE_FIELDS)
        if unknown:
            raise ValueError(f"not triage fields: {sorted(unknown)}")
        with self._db:
            row = self._db.execute("SELECT triage FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                return False
            triage = {**json.loads(row[0]), **changes}
            self._db.execute(
                "UPDATE alerts SET triage = ?, status = ?, incident_id = ?, suppressed = ? WHERE id = ?",
                (json.dumps(triage), triage["status"], triage.get("incident_id"),
                 int(triage.get("suppressed_by") is not None), alert_id),
            )
        return True

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
