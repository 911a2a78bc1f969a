"""The console under concurrent requests on a real uvicorn server: a slow store call in one request does not hold
up another (the routes run in the thread pool, not on the event loop), and requests changing the same alert at
once lose nothing; the SQLite store shared by the pool's threads keeps its transactions and errors apart."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from soc.audit import AuditLog
from soc.core.model import Alert
from soc.store.base import AlertQuery, AuditConflict
from soc.store.sqlite import SqliteStore
from soc.web import create_app

from .conftest import World, login, serving

WAIT = 60.0  # only a bound for a hang, never a measured duration


class SlowSearchStore(SqliteStore):
    """The real store, whose searches wait (once armed) until the test lets them go: a store on a slow disk or a
    busy cluster."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def search(self, query: AlertQuery) -> list[Alert]:
        if self.armed:
            self.entered.set()
            self.release.wait(WAIT)
        return super().search(query)


def test_a_slow_store_call_does_not_hold_up_another_request(world: World) -> None:
    store = SlowSearchStore(world.folder / "soc.db")
    finished: list[tuple[str, int, object]] = []

    def fetch(name: str, client: httpx.Client, path: str) -> None:
        try:
            answer = client.get(path)
        except httpx.HTTPError as exc:  # a timeout: the request was never served
            finished.append((name, 0, repr(exc)))
            return
        finished.append((name, answer.status_code, answer.json()))

    with serving(create_app(world.settings, store, "concurrency-key")) as url, \
            httpx.Client(base_url=url, timeout=WAIT) as slow, httpx.Client(base_url=url, timeout=WAIT) as fast:
        login(slow, "analyst")
        login(fast, "owner")
        store.armed = True
        slow_thread = threading.Thread(target=fetch, args=("slow", slow, "/api/alerts"))  # a search: waits
        slow_thread.start()
        assert store.entered.wait(WAIT), "the slow request never reached the store"
        fast_thread = threading.Thread(target=fetch, args=("fast", fast, f"/api/alerts/{world.own_alert}"))
        fast_thread.start()
        fast_thread.join(WAIT)  # on a blocked event loop this is not served until the search is let go
        store.release.set()
        slow_thread.join(WAIT)
    assert [(name, status) for name, status, _ in finished] == [("fast", 200), ("slow", 200)]
    fast_doc, slow_docs = finished[0][2], finished[1][2]
    assert isinstance(fast_doc, dict) and fast_doc["event"]["id"] == world.own_alert
    assert isinstance(slow_docs, list) and world.own_alert in {d["event"]["id"] for d in slow_docs}


def test_concurrent_notes_on_one_alert_are_all_kept(world: World) -> None:
    """Each note reads the alert's notes and writes them back with one more, from requests running at once in the
    thread pool: none writes over another's note, and every one is in the audit chain, which stays whole."""
    store = SqliteStore(world.folder / "soc.db")
    writers, notes = 4, 10
    failures: list[str] = []

    def write_notes(client: httpx.Client, csrf: str, n: int) -> None:
        for i in range(notes):
            answer = client.post(f"/alerts/{world.own_alert}/note", data={"csrf": csrf, "text": f"note {n}-{i}"})
            if answer.status_code != 303:
                failures.append(f"{n}-{i}: {answer.status_code}")

    with serving(create_app(world.settings, store, "concurrency-key")) as url:
        clients = [httpx.Client(base_url=url, timeout=WAIT) for _ in range(writers)]
        threads = [threading.Thread(target=write_notes, args=(client, login(client, "analyst"), n))
                   for n, client in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        for client in clients:
            client.close()
    assert failures == []
    stored = SqliteStore(world.folder / "soc.db").get(world.own_alert)
    assert stored is not None
    assert sorted(n["text"] for n in stored.notes) == sorted(f"note {n}-{i}" for n in range(writers)
                                                             for i in range(notes))
    log = AuditLog(store)
    assert log.verify().ok
    assert len([r for r in log.records(f"alert:{world.own_alert}") if r["action"] == "alert.noted"]) == writers * notes


def test_one_sqlite_store_shared_by_threads_keeps_writes_and_errors_apart(tmp_path: Path) -> None:
    """A refused write (an audit number taken) rolls back only its own statement, and a reader never gets the
    error another thread's statement left on the shared connection."""
    store = SqliteStore(tmp_path / "shared.db")
    store.append_audit({"seq": 1})
    errors: list[str] = []

    def writer(n: int) -> None:
        for i in range(200):
            try:
                store.put_record("item", f"{n}-{i}", {"i": i})
                store.append_audit({"seq": 1})  # taken: refused every time
            except AuditConflict:
                pass
            except Exception as exc:  # what only a connection shared without care raises
                errors.append(repr(exc))

    def reader() -> None:
        for _ in range(200):
            try:
                store.list_records("item")
                store.get_record("item", "0-0")
                store.read_audit()
            except Exception as exc:  # a read has nothing to fail on but another thread's error
                errors.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    assert len(store.list_records("item")) == 3 * 200  # no write was rolled back by another's refusal
    assert store.read_audit() == [{"seq": 1}]
