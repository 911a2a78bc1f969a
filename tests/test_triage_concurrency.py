"""Triage and its audit record as one unit of work, on both stores: six real processes noting one alert at the
same moment, and an audit append that fails for real (a trigger on SQLite, a write block on the Elasticsearch
audit index)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from soc.audit import AuditLog
from soc.core.config import ElasticsearchSettings, StoreSettings
from soc.core.errors import StoreError
from soc.core.model import AlertStatus
from soc.store import AlertStore, open_store
from soc.store.elasticsearch import ElasticsearchStore
from soc.store.sqlite import SqliteStore
from soc.triage import Triage

from .conftest import make_alert

WRITERS = 6


def settings_of(store: AlertStore) -> StoreSettings:
    """Settings that open the same store again in another process."""
    if isinstance(store, ElasticsearchStore):
        prefix = store.audit_index.removesuffix("-audit")
        return StoreSettings(url=store.url, elasticsearch=ElasticsearchSettings(index_prefix=prefix))
    return StoreSettings(url=store.url)


def add_note(settings: StoreSettings, alert_id: str, n: int, barrier: Any) -> None:
    """One analyst's process: opens its own store, waits for the others, then notes the alert."""
    with open_store(settings) as store:
        assert store.get(alert_id) is not None  # connected and warm, so the barrier lines up the writes
        barrier.wait(timeout=120)
        outcome = Triage(store).note(alert_id, f"note from analyst {n}", f"analyst{n}")
    if not outcome.ok:
        raise SystemExit(outcome.message)


def test_six_processes_noting_one_alert_keep_every_note_and_record(store: AlertStore) -> None:
    alert = make_alert(1)
    store.write([alert])
    Triage(store).acknowledge([alert.id], "lan")  # a chain to extend, not an empty log
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(WRITERS)
    processes = [spawn.Process(target=add_note, args=(settings_of(store), alert.id, n, barrier))
                 for n in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * WRITERS

    texts = {f"note from analyst {n}" for n in range(WRITERS)}
    stored = store.get(alert.id)
    assert stored is not None
    assert sorted(note["text"] for note in stored.notes) == sorted(texts)
    audit = AuditLog(store)
    noted = [r for r in audit.records(f"alert:{alert.id}") if r["action"] == "alert.noted"]
    assert sorted(r["details"]["text"] for r in noted) == sorted(texts)
    assert {r["actor"] for r in noted} == {f"analyst{n}" for n in range(WRITERS)}
    report = audit.verify()
    assert report.ok, report.problems
    assert [r["seq"] for r in audit.records()] == list(range(1, WRITERS + 2))


def test_sqlite_change_whose_audit_append_fails_is_not_stored(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "alerts.db")
    alert = make_alert(2)
    store.write([alert])
    triage = Triage(store)
    assert triage.acknowledge([alert.id], "lan")[0].ok
    refuse = sqlite3.connect(store.path)
    with refuse:  # a real failure of the audit insert, inside the same transaction as the change
        refuse.execute("CREATE TRIGGER audit_refused BEFORE INSERT ON audit BEGIN "
                       "SELECT RAISE(ABORT, 'audit log is read-only'); END")
    with pytest.raises(StoreError, match="not changed: its audit record could not be stored"):
        triage.note(alert.id, "looked at it", "minh")
    with pytest.raises(StoreError, match="audit log is read-only"):
        triage.start([alert.id], "minh")
    stored = store.get(alert.id)
    assert stored is not None
    assert (stored.status, stored.notes) == (AlertStatus.ACKNOWLEDGED, [])
    assert [r["action"] for r in AuditLog(store).records()] == ["alert.acknowledged"]

    with refuse:
        refuse.execute("DROP TRIGGER audit_refused")
    refuse.close()
    assert triage.note(alert.id, "looked at it", "minh").ok
    assert [r["action"] for r in AuditLog(store).records()] == ["alert.acknowledged", "alert.noted"]
    assert AuditLog(store).verify().ok
    store.close()


def _block_audit(store: ElasticsearchStore, blocked: bool) -> None:
    store.client.indices.put_settings(index=store.audit_index, settings={"index.blocks.write": blocked})


def _pending(store: ElasticsearchStore, alert_id: str) -> list[str]:
    index = store._index_of(alert_id)
    assert index is not None
    source = store.client.get(index=index, id=alert_id)["_source"]
    return list(source["soc"]["alert"].get("audit_pending_ids") or [])


def test_elasticsearch_change_whose_audit_append_fails_is_completed_later(es_url: str, es_prefix: str) -> None:
    settings = ElasticsearchSettings(index_prefix=es_prefix)
    first, second = ElasticsearchStore(es_url, settings), ElasticsearchStore(es_url, settings)  # two consoles
    alert = make_alert(3)
    first.write([alert])
    assert Triage(first).acknowledge([alert.id], "lan")[0].ok
    try:
        _block_audit(first, True)
        with pytest.raises(StoreError, match="audit record is kept with the alert"):
            Triage(first).note(alert.id, "looked at it", "minh")
        stored = first.get(alert.id)
        assert stored is not None and [n["text"] for n in stored.notes] == ["looked at it"]
        assert len(_pending(first, alert.id)) == 1  # the change carries its record: in the outbox
        # the next writer must append the pending record before its own change; while it cannot, nothing changes
        with pytest.raises(StoreError):
            Triage(second).assign([alert.id], "minh", "lan")
        stored = second.get(alert.id)
        assert stored is not None and stored.assignee is None

        _block_audit(first, False)
        report = AuditLog(second).verify()  # `audit verify` appends what waits in the outbox
        assert report.ok, report.problems
        assert _pending(first, alert.id) == []
        assert [r["action"] for r in AuditLog(first).records()] == ["alert.acknowledged", "alert.noted"]
        assert AuditLog(first).verify().ok  # nothing left to append: not twice

        _block_audit(first, True)
        with pytest.raises(StoreError):
            Triage(first).assign([alert.id], "minh", "lan")
        _block_audit(first, False)
        assert Triage(second).note(alert.id, "minh has it", "lan").ok  # the next change appends it first
        assert [(r["action"], r["details"].get("assignee") or r["details"].get("text"))
                for r in AuditLog(first).records()] == [
            ("alert.acknowledged", None), ("alert.noted", "looked at it"), ("alert.assigned", "minh"),
            ("alert.noted", "minh has it")]
        assert _pending(first, alert.id) == []
        report = AuditLog(first).verify()
        assert report.ok, report.problems
    finally:
        _block_audit(first, False)
        first.close()
        second.close()
