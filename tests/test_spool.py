"""No alert lost or duplicated: Elasticsearch killed during writes and during the spool's replay, and an engine
killed between delivering a batch and recording it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.core.config import ElasticsearchSettings
from soc.store.elasticsearch import ElasticsearchStore
from soc.store.spool import DiskSpool, SpooledStore
from soc.store.sqlite import SqliteStore

from .conftest import load_es_server_module, make_alert


@pytest.fixture
def restartable_es(es_server: object) -> Iterator[object]:
    """A node this test may kill: the session's own, or a dedicated one when SOC_TEST_ES_URL points elsewhere."""
    if es_server is not None:
        yield es_server
        if es_server.process is None or es_server.process.poll() is not None:  # type: ignore[attr-defined]
            es_server.start()  # type: ignore[attr-defined]
        return
    server = load_es_server_module().ElasticsearchServer().start()
    yield server
    server.cleanup()


def all_ids(store: ElasticsearchStore) -> list[str]:
    store.client.indices.refresh(index=f"{store.alerts_prefix}*")
    answer = store.client.search(index=f"{store.alerts_prefix}*", size=10000, source=False,
                                 query={"match_all": {}})
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def test_elasticsearch_killed_during_writes_and_during_spool_replay(
    restartable_es: object, es_prefix: str, tmp_path: Path
) -> None:
    server = restartable_es
    settings = ElasticsearchSettings(index_prefix=es_prefix, request_timeout=10, max_retries=0)
    store = SpooledStore(ElasticsearchStore(server.url, settings), DiskSpool(tmp_path / "spool"))  # type: ignore[attr-defined]
    alerts = [make_alert(n, bucket=n // 50) for n in range(2400)]
    batches = [alerts[i:i + 100] for i in range(0, len(alerts), 100)]

    for batch in batches[:4]:  # the store is up
        store.write(batch)
    server.stop(kill=True)  # type: ignore[attr-defined]
    for batch in batches[4:20]:  # down: everything waits in the spool, in order
        store.write(batch)
    assert store.spooled >= 1600  # more when a write timed out on a loaded machine before the kill: also spooled
    assert store.spool.pending() > 0

    server.start()  # type: ignore[attr-defined]
    # kill the node again while the spool is being replayed, as soon as the first batch has been delivered
    def kill_when_replay_has_begun() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if store.spool.cursor.exists() and store.spool.cursor.read_text() not in ("", "0"):
                server.stop(kill=True)  # type: ignore[attr-defined]
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_when_replay_has_begun)
    killer.start()
    delivered_all = store.deliver_spooled()
    killer.join()
    assert not delivered_all, "the node was killed during the replay, so the spool cannot be empty yet"
    assert store.spool.pending() > 0

    server.start()  # type: ignore[attr-defined]
    for batch in batches[20:]:  # back up: the spool goes first, then the new alerts
        store.write(batch)
    assert store.spool.pending() == 0
    ids = all_ids(store.store)  # type: ignore[arg-type]
    assert len(ids) == len(alerts)
    assert set(ids) == {a.id for a in alerts}
    store.close()


def test_engine_killed_after_delivery_before_the_cursor_moved(tmp_path: Path) -> None:
    """A crash between delivering a batch and recording it re-delivers the batch: idempotent, so no duplicate."""
    alerts = [make_alert(n) for n in range(10)]
    spool = DiskSpool(tmp_path / "spool")
    spool.append(alerts)
    cursor_after_first_four = sum(len(line) for line in spool.data.read_bytes().splitlines(keepends=True)[:4])
    store = SqliteStore(tmp_path / "alerts.db")
    store.write(alerts[:6])  # delivered before the crash ...
    spool._move_cursor(cursor_after_first_four)  # ... but the cursor only recorded four
    spool.close()

    restarted = DiskSpool(tmp_path / "spool")
    assert restarted.drain(store.write) == 6
    assert store.count() == 10
    assert restarted.pending() == 0 and not restarted.data.exists()


def test_record_cut_by_a_crash_is_set_aside_not_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = DiskSpool(tmp_path / "spool")
    spool.append([make_alert(1), make_alert(2)])
    with open(spool.data, "ab") as handle:
        handle.write(b'{"@timestamp": "2026-11-01T1')  # the engine died in the middle of a write
        os.fsync(handle.fileno())
    spool.append([make_alert(3)])  # the restarted engine appends after it
    store = SqliteStore(tmp_path / "alerts.db")
    assert spool.drain(store.write) == 3
    assert store.count() == 3
    assert spool.dead_letters.read_bytes().startswith(b'{"@timestamp": "2026-11-01T1')
    assert "unreadable spool record" in capsys.readouterr().err


def test_document_the_store_refuses_is_set_aside_and_the_rest_stored(
    es_url: str, es_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [make_alert(n) for n in range(5)]
    bad = make_alert(99)
    bad.ecs["source"]["ip"] = "not-an-address"  # the ECS mapping says ip: Elasticsearch refuses the document
    store = SpooledStore(ElasticsearchStore(es_url, ElasticsearchSettings(index_prefix=es_prefix)),
                         DiskSpool(tmp_path / "spool"))
    store.write([*good[:2], bad, *good[2:]])
    assert sorted(all_ids(store.store)) == sorted(a.id for a in good)  # type: ignore[arg-type]
    assert bad.id in store.spool.dead_letters.read_text()
    assert f"alert {bad.id} refused by the store" in capsys.readouterr().err
    store.close()
