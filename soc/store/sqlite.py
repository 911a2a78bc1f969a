"""The embedded default store: one SQLite file, no server. Alerts keep their ECS document as JSON, with the
columns a query filters on beside it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from soc.errors import StoreError, StoreUnavailable
from soc.model import Alert, AlertStatus, Event, get_field
from soc.store.base import AlertQuery, AlertStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    severity INTEGER NOT NULL,
    system TEXT,
    status TEXT NOT NULL,
    assignee TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (timestamp);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT,
    dataset TEXT,
    doc TEXT NOT NULL
);
"""

# On a second write of the same alert, the detection is refreshed and the triage columns are left alone.
_UPSERT = """
INSERT INTO alerts (id, timestamp, last_seen, rule_id, severity, system, status, assignee, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store: {exc}", path=str(self.path)) from None
        except OSError as exc:
            raise StoreError(f"cannot create SQLite store: {exc.strerror}", path=str(self.path)) from None

    def write(self, alerts: Sequence[Alert]) -> None:
        rows = []
        for alert in alerts:
            doc = alert.to_ecs()
            rows.append((alert.id, alert.first_seen, alert.last_seen, alert.rule.id, int(alert.severity),
                         alert.system, alert.status.value, alert.assignee, json.dumps(doc, sort_keys=True)))
        try:
            with self._db:
                self._db.executemany(_UPSERT, rows)
        except sqlite3.OperationalError as exc:  # locked or busy: another writer, retry later
            raise StoreUnavailable(f"SQLite store busy: {exc}", path=str(self.path)) from None

    def write_events(self, events: Iterable[Event]) -> int:
        rows = [(get_field(e, "@timestamp"), get_field(e, "event.dataset"), json.dumps(e)) for e in events]
        try:
            with self._db:
                self._db.executemany("INSERT INTO events (timestamp, dataset, doc) VALUES (?, ?, ?)", rows)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite store busy: {exc}", path=str(self.path)) from None
        return len(rows)

    def get(self, alert_id: str) -> Alert | None:
        row = self._db.execute("SELECT doc, status, assignee FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return _alert(row) if row else None

    def set_triage(self, alert_id: str, status: AlertStatus | None = None, assignee: str | None = None) -> bool:
        with self._db:
            changed = self._db.execute(
                "UPDATE alerts SET status = coalesce(?, status), assignee = coalesce(?, assignee) WHERE id = ?",
                (status.value if status else None, assignee, alert_id),
            ).rowcount
        return changed > 0

    def search(self, query: AlertQuery) -> list[Alert]:
        clauses: list[str] = []
        params: list[int | str] = []
        if query.min_severity is not None:
            clauses.append("severity >= ?")
            params.append(int(query.min_severity))
        if query.status is not None:
            clauses.append("status = ?")
            params.append(query.status.value)
        if query.rule_id is not None:
            clauses.append("rule_id = ?")
            params.append(query.rule_id)
        if query.system is not None:
            clauses.append("system = ?")
            params.append(query.system)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT doc, status, assignee FROM alerts {where} ORDER BY timestamp DESC, id LIMIT ?"
        return [_alert(row) for row in self._db.execute(sql, [*params, query.limit])]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM alerts").fetchone()[0])

    def count_events(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _alert(row: tuple[str, str, str | None]) -> Alert:
    doc, status, assignee = row
    alert = Alert.from_ecs(json.loads(doc))
    alert.status, alert.assignee = AlertStatus(status), assignee
    return alert
