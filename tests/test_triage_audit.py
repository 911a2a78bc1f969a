"""Triage transitions with their audit records, and tampering with the stored audit log in every way — both
stores."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from soc.audit import AuditLog
from soc.core.model import AlertStatus, Verdict
from soc.store import AlertQuery, AlertStore
from soc.triage import Triage

from .conftest import make_alert


def actions(audit: AuditLog, alert_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r["actor"], r["action"], r["details"]) for r in audit.records(f"alert:{alert_id}")]


def test_each_transition_is_recorded(store: AlertStore) -> None:
    alert = make_alert(1)
    store.write([alert])
    triage = Triage(store)
    assert [o.ok for o in triage.acknowledge([alert.id], "lan")] == [True]
    assert triage.assign([alert.id], "minh", "lan")[0].ok
    assert triage.start([alert.id], "minh")[0].ok
    assert triage.note(alert.id, "scanner is the new vulnerability scanner?", "minh").ok
    assert triage.close([alert.id], Verdict.BENIGN, "minh", "our own scanner")[0].ok
    got = store.get(alert.id)
    assert got is not None
    assert (got.status, got.assignee, got.verdict) == (AlertStatus.CLOSED, "minh", Verdict.BENIGN)
    assert [n["text"] for n in got.notes] == ["scanner is the new vulnerability scanner?", "closed: our own scanner"]
    assert actions(triage.audit, alert.id) == [
        ("lan", "alert.acknowledged", {"from": "new", "status": "acknowledged"}),
        ("lan", "alert.assigned", {"previous": None, "assignee": "minh"}),
        ("minh", "alert.in_progress", {"from": "acknowledged", "status": "in_progress"}),
        ("minh", "alert.noted", {"text": "scanner is the new vulnerability scanner?"}),
        ("minh", "alert.closed", {"from": "in_progress", "status": "closed", "verdict": "benign"}),
        ("minh", "alert.noted", {"text": "closed: our own scanner"}),
    ]
    assert triage.audit.verify().ok


def test_transitions_that_are_not_allowed_are_refused_one_by_one(store: AlertStore) -> None:
    first, second = make_alert(1), make_alert(2)
    store.write([first, second])
    triage = Triage(store)
    triage.close([first.id], Verdict.FALSE_POSITIVE, "lan")
    outcomes = triage.start([first.id, second.id, "0" * 32], "lan")  # bulk: one closed, one fine, one unknown
    assert [(o.ok, o.message) for o in outcomes] == [
        (False, "alert " + first.id + " is closed: it cannot become in_progress"),
        (True, "in progress"),
        (False, "no alert with id " + "0" * 32),
    ]
    assert triage.reopen([first.id], "lan", "came back")[0].ok
    reopened = store.get(first.id)
    assert reopened is not None and (reopened.status, reopened.verdict) == (AlertStatus.ACKNOWLEDGED, None)


def test_rewriting_a_detection_keeps_notes_and_verdict(store: AlertStore) -> None:
    store.write([make_alert(4)])
    triage = Triage(store)
    triage.note(make_alert(4).id, "looked at it", "lan")
    triage.close([make_alert(4).id], Verdict.TRUE_POSITIVE, "lan")
    store.write([make_alert(4, count=50)])
    got = store.get(make_alert(4).id)
    assert got is not None
    assert (got.count, got.verdict, len(got.notes)) == (50, Verdict.TRUE_POSITIVE, 1)
    assert [a.id for a in store.search(AlertQuery(status=AlertStatus.CLOSED))] == [got.id]


def test_suppressed_alerts_are_kept_but_out_of_the_queue(store: AlertStore) -> None:
    suppressed = make_alert(5)
    suppressed.suppressed_by = "s1"
    store.write([suppressed, make_alert(6)])
    assert [a.id for a in store.search(AlertQuery())] == [make_alert(6).id]
    assert {a.id for a in store.search(AlertQuery(include_suppressed=True))} == {suppressed.id, make_alert(6).id}


# --- tampering ---------------------------------------------------------------------------------------------------

def _raw_sqlite(store: AlertStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path)  # type: ignore[attr-defined]


def tamper(store: AlertStore, how: str) -> None:
    """Change the stored log behind the engine's back, as someone with database access could."""
    records = store.read_audit()
    if hasattr(store, "path"):
        db = _raw_sqlite(store)
        with db:
            if how == "edit":
                doc = dict(records[2], actor="someone-else")
                db.execute("UPDATE audit SET doc = ? WHERE seq = 3", (json.dumps(doc),))
            elif how == "delete":
                db.execute("DELETE FROM audit WHERE seq = 3")
            elif how == "delete-last":
                db.execute("DELETE FROM audit WHERE seq = ?", (records[-1]["seq"],))
            elif how == "reorder":
                third, fourth = records[2], records[3]
                db.execute("UPDATE audit SET doc = ? WHERE seq = 3", (json.dumps({**fourth, "seq": 3}),))
                db.execute("UPDATE audit SET doc = ? WHERE seq = 4", (json.dumps({**third, "seq": 4}),))
            elif how == "insert":
                shifted = [{**r, "seq": r["seq"] + 1} for r in records[2:]]
                db.execute("DELETE FROM audit WHERE seq >= 3")
                forged = {**records[1], "seq": 3, "action": "alert.closed", "prev_hash": records[1]["hash"]}
                from soc.audit.chain import record_hash

                forged["hash"] = record_hash(forged)
                for record in [forged, *shifted]:
                    db.execute("INSERT INTO audit (seq, doc) VALUES (?, ?)", (record["seq"], json.dumps(record)))
        return
    client, index = store.client, store.audit_index  # type: ignore[attr-defined]

    def put(record: dict[str, Any]) -> None:
        client.index(index=index, id=f"{record['seq']:012d}", document={"seq": record["seq"], "doc": record},
                     refresh="wait_for")

    if how == "edit":
        put(dict(records[2], actor="someone-else"))
    elif how == "delete":
        client.delete(index=index, id=f"{3:012d}", refresh="wait_for")
    elif how == "delete-last":
        client.delete(index=index, id=f"{records[-1]['seq']:012d}", refresh="wait_for")
    elif how == "reorder":
        put({**records[3], "seq": 3})
        put({**records[2], "seq": 4})
    elif how == "insert":
        from soc.audit.chain import record_hash

        forged = {**records[1], "seq": 3, "action": "alert.closed", "prev_hash": records[1]["hash"]}
        forged["hash"] = record_hash(forged)
        for record in [forged, *({**r, "seq": r["seq"] + 1} for r in records[2:])]:
            put(record)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("edit", ["record 3 was edited: its content does not match its hash"]),
        ("delete", ["record 3 missing: deleted before record 4"]),
        ("delete-last", ["record 5 missing: the log was cut short"]),
        ("reorder", ["record 3 was edited: its content does not match its hash",
                     "record 3 does not follow record 2: a record before it was removed or replaced",
                     "record 4 was edited: its content does not match its hash",
                     "record 4 follows record 2, not record 3: records were inserted or reordered before it",
                     "record 5 follows record 3, not record 4: records were inserted or reordered before it"]),
        ("insert", ["record 4 was edited: its content does not match its hash",
                    "record 4 follows record 2, not record 3: records were inserted or reordered before it",
                    "record 5 was edited: its content does not match its hash",
                    "record 6 was edited: its content does not match its hash",
                    "record 5 is not the one recorded as the head of the log"]),
    ],
)
def test_tampering_is_detected_and_located(store: AlertStore, how: str, expected: list[str]) -> None:
    alert = make_alert(7)
    store.write([alert])
    triage = Triage(store)
    triage.acknowledge([alert.id], "lan")
    triage.assign([alert.id], "minh", "lan")
    triage.start([alert.id], "minh")
    triage.note(alert.id, "checked", "minh")
    triage.close([alert.id], Verdict.TRUE_POSITIVE, "minh")
    assert AuditLog(store).verify().ok
    tamper(store, how)
    report = AuditLog(store).verify()
    assert not report.ok
    assert report.problems == expected
