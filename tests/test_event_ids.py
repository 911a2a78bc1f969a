"""Deterministic event ids: an event seen again (a second write, a second sensor, a second replay of a capture) is
stored once, on both stores; a SQLite store of the previous schema is migrated in place."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from soc.core.config import ElasticsearchSettings, StoreSettings
from soc.core.model import event_id
from soc.store import AlertStore, open_store
from soc.store.elasticsearch import ElasticsearchStore
from soc.store.sqlite import SCHEMA_VERSION, SqliteStore

from .conftest import ATTACKS, REPO, make_alert


def flow(port: int, sensor: str = "sensor-a", ingested: str = "2026-11-25T01:05:00Z") -> dict[str, Any]:
    return {"@timestamp": "2026-11-25T01:02:03.000000Z",
            "event": {"dataset": "soc.flow", "kind": "event", "ingested": ingested},
            "observer": {"name": sensor}, "agent": {"id": f"{sensor}-agent"},
            "source": {"ip": "10.1.1.1", "port": port}, "destination": {"ip": "192.0.2.7", "port": 443}}


def log_line(host: str) -> dict[str, Any]:
    return {"@timestamp": "2026-11-25T01:02:03Z", "event": {"dataset": "linux.auth", "module": "system",
                                                            "original": "sshd[1]: Failed password for root"},
            "host": {"name": host}}


def test_event_id_ignores_who_saw_it_and_when() -> None:
    assert event_id(flow(1)) == event_id(flow(1, sensor="sensor-b", ingested="2026-12-01T00:00:00Z"))
    assert event_id(flow(1)) == event_id({**flow(1), "event": {**flow(1)["event"], "id": "x", "created": "now"}})
    assert event_id(flow(1)) != event_id(flow(2))
    # with the raw record, the record is the identity: the same line parsed by another parser version is the same
    assert event_id(log_line("web-1")) == event_id(log_line("web-01"))
    assert event_id(log_line("web-1")) != event_id({**log_line("web-1"), "@timestamp": "2026-11-25T01:02:04Z"})
    # a digest, not Python's per-process hash(): the same in every process
    other = subprocess.run([sys.executable, "-c", "import json, sys; from soc.core.model import event_id; "
                            "print(event_id(json.loads(sys.argv[1])))", json.dumps(flow(1))],
                           capture_output=True, text=True, check=True, cwd=REPO)
    assert other.stdout.strip() == event_id(flow(1))


def stored_events(store: AlertStore) -> list[dict[str, Any]]:
    if isinstance(store, ElasticsearchStore):
        store.client.indices.refresh(index=f"{store.events_prefix}*")
        answer = store.client.search(index=f"{store.events_prefix}*", size=100, query={"match_all": {}})
        return [hit["_source"] | {"_id": hit["_id"]} for hit in answer["hits"]["hits"]]
    assert isinstance(store, SqliteStore)
    return [json.loads(doc) | {"_id": eid} for eid, doc in store._db.execute("SELECT event_id, doc FROM events")]


def reopen(store: AlertStore) -> AlertStore:
    """A second store object on the same data: another sensor writing to the same store."""
    if isinstance(store, ElasticsearchStore):
        prefix = store.audit_index.removesuffix("-audit")
        return open_store(StoreSettings(url=store.url, elasticsearch=ElasticsearchSettings(index_prefix=prefix)))
    return open_store(StoreSettings(url=store.url))


def test_events_seen_again_are_stored_once(store: AlertStore) -> None:
    assert store.write_events([flow(1), flow(2), log_line("web-1")]) == 3
    assert store.write_events([flow(1), flow(2)]) == 0  # the same again
    with reopen(store) as sensor_b:  # another sensor sees the same flows and line at its own time
        assert sensor_b.write_events([flow(1, "sensor-b", "2026-11-25T09:00:00Z"), log_line("web-1"),
                                      flow(3, "sensor-b")]) == 1
    events = stored_events(store)
    assert sorted(e["source"]["port"] for e in events if "source" in e) == [1, 2, 3]
    assert len(events) == 4
    for event in events:  # event.id is written where absent, and the id does not depend on it
        stored_id = event.pop("_id")
        assert stored_id == event["event"]["id"] == event_id(event)


def test_an_event_carrying_its_own_id_keeps_it(store: AlertStore) -> None:
    mine = {**flow(9), "event": {**flow(9)["event"], "id": "suricata-flow-77"}}
    assert store.write_events([mine, mine]) == 1
    [stored] = stored_events(store)
    assert (stored["_id"], stored["event"]["id"]) == (event_id(mine), "suricata-flow-77")


def test_schema_2_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    alert = make_alert(1)
    old = sqlite3.connect(path)
    with old:  # the previous schema's tables, as an older soc left them: one event stored twice
        old.executescript("""
            CREATE TABLE alerts (id TEXT PRIMARY KEY, timestamp TEXT NOT NULL, last_seen TEXT NOT NULL,
                rule_id TEXT NOT NULL, severity INTEGER NOT NULL, system TEXT, status TEXT NOT NULL, incident_id TEXT,
                suppressed INTEGER NOT NULL DEFAULT 0, triage TEXT NOT NULL, doc TEXT NOT NULL);
            CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT, dataset TEXT,
                doc TEXT NOT NULL);
            CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id));
            CREATE TABLE audit (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
            PRAGMA user_version = 2;
        """)
        for event in (flow(1), flow(1), flow(2)):
            old.execute("INSERT INTO events (timestamp, dataset, doc) VALUES (?, ?, ?)",
                        (event["@timestamp"], "soc.flow", json.dumps(event)))
        doc = alert.to_ecs()
        old.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, NULL, 'new', NULL, 0, ?, ?)",
                    (alert.id, alert.first_seen, alert.last_seen, alert.rule.id, int(alert.severity),
                     json.dumps({"status": "new", "notes": []}), json.dumps(doc)))
    old.close()

    store = SqliteStore(path)
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    ids = [row[0] for row in store._db.execute("SELECT event_id FROM events ORDER BY seq")]
    assert ids == [event_id(flow(1)), None, event_id(flow(2))]  # the older copy of a duplicate keeps no id
    got = store.get(alert.id)
    assert got is not None and got.message == alert.message
    assert store.write_events([flow(1), flow(2), flow(3)]) == 1
    assert store.count_events() == 4
    store.close()
    assert SqliteStore(path).count_events() == 4  # opened again: already at the current schema


def test_replaying_a_capture_twice_stores_its_events_once(tmp_path: Path) -> None:
    capture = ATTACKS / "chrissanders__synscan.pcapng"
    url = f"sqlite:///{tmp_path / 'events.db'}"
    counts = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "soc.cli.main", "replay", "--events", "--store", url,
                                 str(capture)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        with SqliteStore(tmp_path / "events.db") as store:
            counts.append(store.count_events())
    assert counts[0] > 0
    assert counts[1] == counts[0]
