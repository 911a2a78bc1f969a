"""No write lost or duplicated: Elasticsearch killed during writes and during the spool's replay, engines killed
with writes in their segment or between delivering a batch and recording it, one segment per writer process,
the previous spool format drained on upgrade."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.core.config import ElasticsearchSettings
from soc.core.model import event_id
from soc.store.elasticsearch import ElasticsearchStore
from soc.store.spool import DiskSpool, SpooledStore
from soc.store.sqlite import SqliteStore

from .conftest import REPO, load_es_server_module, make_alert


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


def unreachable_url() -> str:
    """An address where nothing listens: the real client gets connection refused, the store StoreUnavailable."""
    return f"http://127.0.0.1:{load_es_server_module().free_port()}"


def down_store(spool_dir: Path) -> SpooledStore:
    settings = ElasticsearchSettings(request_timeout=2, max_retries=0)
    return SpooledStore(ElasticsearchStore(unreachable_url(), settings), DiskSpool(spool_dir))


def make_event(n: int) -> dict[str, object]:
    return {"@timestamp": f"2026-11-01T10:00:{n % 60:02d}.000000Z", "event": {"dataset": "linux.auth"},
            "message": f"line {n}", "log": {"offset": n}}


def segments(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("segment-*.jsonl"))


# A writer process: spools alerts FIRST..LAST (its store is down), says so, then waits to be told to exit or killed.
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from soc.core.config import ElasticsearchSettings
    from soc.store.elasticsearch import ElasticsearchStore
    from soc.store.spool import DiskSpool, SpooledStore
    from tests.conftest import make_alert
    url, spool_dir, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = SpooledStore(ElasticsearchStore(url, ElasticsearchSettings(request_timeout=2, max_retries=0)),
                         DiskSpool(spool_dir))
    for n in range(first, last, 10):
        store.write([make_alert(i) for i in range(n, min(n + 10, last))])
    print("spooled", store.spooled, flush=True)
    sys.stdin.readline()
    store.close()
""")


def start_writer(spool_dir: Path, first: int, last: int) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", WRITER, unreachable_url(), str(spool_dir), str(first),
                                str(last)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == f"spooled {last - first}", process.stderr.read() if process.stderr else line
    return process


def test_each_writer_process_has_its_own_segment_and_live_ones_are_left_to_their_writer(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    first, second = start_writer(spool_dir, 0, 30), start_writer(spool_dir, 30, 50)
    try:
        names = [p.name for p in segments(spool_dir)]
        assert len(names) == 2
        assert {name.split("-")[1] for name in names} == {str(first.pid), str(second.pid)}

        store = SpooledStore(SqliteStore(tmp_path / "alerts.db"), DiskSpool(spool_dir))
        assert store.spool.pending() > 0  # a reader counts what live writers hold ...
        assert store.deliver_spooled()  # ... but takes none of it: both writers live, nothing is theirs to lose
        assert store.count() == 0 and len(segments(spool_dir)) == 2

        assert first.stdin is not None
        first.stdin.write("\n")  # the first writer stops; its segment becomes an orphan
        first.stdin.close()
        assert first.wait(60) == 0
        assert store.deliver_spooled()
        assert store.count() == 30
        assert [p.name.split("-")[1] for p in segments(spool_dir)] == [str(second.pid)]
    finally:
        for process in (first, second):
            process.kill()
            process.wait(60)
    assert store.deliver_spooled()
    assert store.count() == 50 and store.spool.pending() == 0 and not segments(spool_dir)
    store.close()


def test_segment_of_a_killed_writer_is_replayed_exactly_once(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    writer = start_writer(spool_dir, 0, 40)
    writer.send_signal(signal.SIGKILL)
    writer.wait(60)
    (orphan,) = segments(spool_dir)

    deliveries: list[list[str]] = []
    racing = [DiskSpool(spool_dir), DiskSpool(spool_dir)]  # two drainers at once: one takes the segment
    barrier = threading.Barrier(2)

    def drain(spool: DiskSpool) -> None:
        barrier.wait()
        spool.drain(lambda record: deliveries.append([d["event"]["id"] for d in record["docs"]]))

    threads = [threading.Thread(target=drain, args=(spool,)) for spool in racing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    delivered = [alert_id for batch in deliveries for alert_id in batch]
    assert sorted(delivered) == sorted(make_alert(n).id for n in range(40))  # all of them, each once
    assert not orphan.exists() and racing[0].pending() == 0

    store = SpooledStore(SqliteStore(tmp_path / "alerts.db"), DiskSpool(spool_dir))
    assert store.deliver_spooled() and store.count() == 0  # nothing left to replay a second time
    store.close()


def test_engine_killed_after_delivery_before_the_cursor_moved(tmp_path: Path) -> None:
    """A crash between delivering a batch and recording it re-delivers the batch: idempotent, so no duplicate."""
    spool_dir = tmp_path / "spool"
    writer = start_writer(spool_dir, 0, 100)  # ten records of ten alerts
    (orphan,) = segments(spool_dir)
    writer.send_signal(signal.SIGKILL)
    writer.wait(60)
    lines = orphan.read_bytes().splitlines(keepends=True)
    store = SqliteStore(tmp_path / "alerts.db")
    store.write([make_alert(n) for n in range(60)])  # six records delivered before the crash ...
    orphan.with_suffix(".cursor").write_text(str(sum(len(line) for line in lines[:4])))  # ... four recorded

    restarted = SpooledStore(store, DiskSpool(spool_dir))
    assert restarted.spool.drain(restarted._deliver) == 6
    assert store.count() == 100
    assert restarted.spool.pending() == 0 and not orphan.exists() and not orphan.with_suffix(".cursor").exists()
    restarted.close()


def orphan_ending_with(spool_dir: Path, alerts: int, tail: bytes) -> tuple[Path, int]:
    """The segment of a writer killed after spooling ``alerts`` alerts, with ``tail`` appended at (offset)."""
    writer = start_writer(spool_dir, 0, alerts)
    (orphan,) = segments(spool_dir)
    offset = orphan.stat().st_size
    with open(orphan, "ab") as handle:
        handle.write(tail)
    writer.send_signal(signal.SIGKILL)
    writer.wait(60)
    return orphan, offset


def test_record_cut_short_by_a_killed_writer_is_kept_once_not_lost(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spool_dir = tmp_path / "spool"
    torn = b'{"op":"alerts","docs":[{"@timestamp":"2026-11-01T1'
    orphan, _ = orphan_ending_with(spool_dir, 20, torn)  # what a writer killed in the middle of a write leaves

    store = SpooledStore(SqliteStore(tmp_path / "alerts.db"), DiskSpool(spool_dir))
    assert store.deliver_spooled()
    assert store.count() == 20  # the complete records before it are delivered
    assert store.spool.dead_letters.read_bytes() == torn + b"\n"  # the torn one is kept, with its bytes
    assert "record cut short at byte" in capsys.readouterr().err
    assert not orphan.exists() and store.spool.pending() == 0
    assert store.deliver_spooled()
    assert store.spool.dead_letters.read_bytes() == torn + b"\n"  # and only once
    store.close()


def test_unreadable_record_is_set_aside_and_those_after_it_delivered(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    spool_dir = tmp_path / "spool"
    after = json.dumps({"op": "alerts", "docs": [make_alert(10).to_ecs()]}).encode() + b"\n"
    orphan, offset = orphan_ending_with(spool_dir, 10, b'{"op":"alerts","docs":[{"@tim\n' + after)
    store = SpooledStore(SqliteStore(tmp_path / "alerts.db"), DiskSpool(spool_dir))
    assert store.deliver_spooled() and store.count() == 11
    assert store.spool.dead_letters.read_bytes() == b'{"op":"alerts","docs":[{"@tim\n'
    assert f"unreadable spool record at byte {offset} of {orphan}" in capsys.readouterr().err
    store.close()


def test_events_and_records_wait_in_order_with_the_alerts(tmp_path: Path) -> None:
    """An outage while an engine writes alerts, events and records (a record written twice, an alert updated):
    the spool delivers them in the order they were written, so the last version wins."""
    spool_dir = tmp_path / "spool"
    engine = down_store(spool_dir)
    engine.write([make_alert(1), make_alert(2)])
    assert engine.write_events([make_event(n) for n in range(30)]) == 30  # accepted: kept in the spool
    engine.put_record("playbook_run", "run-1", {"status": "running", "step": 1})
    engine.write([make_alert(1, count=7)])  # the same alert seen again
    assert engine.write_events([make_event(n) for n in range(30, 45)]) == 15
    engine.put_record("playbook_run", "run-1", {"status": "done", "step": 3})
    assert (engine.spooled, engine.spooled_events, engine.spooled_records) == (3, 45, 2)
    kinds = [json.loads(line)["op"] for line in segments(spool_dir)[0].read_text().splitlines()]
    assert kinds == ["alerts", "events", "record", "alerts", "events", "record"]
    engine.close()  # the engine stops with everything in its segment

    store = SqliteStore(tmp_path / "alerts.db")
    restarted = SpooledStore(store, DiskSpool(spool_dir))
    restarted.write([make_alert(3)])  # the first write delivers what the previous engine left, then its own
    assert store.count() == 3
    stored = store.get(make_alert(1).id)
    assert stored is not None and stored.count == 7
    assert store.get_record("playbook_run", "run-1") == {"status": "done", "step": 3}
    assert store.write_events([make_event(n) for n in range(45)]) == 0  # all 45 there already, each once
    assert restarted.spool.pending() == 0 and not segments(spool_dir)
    restarted.close()


def test_records_of_people_are_not_spooled_and_fail_loudly(tmp_path: Path) -> None:
    """A process that writes no alerts or events is a person's command (triage, incidents, users)."""
    from soc.core.errors import StoreUnavailable

    store = down_store(tmp_path / "spool")
    with pytest.raises(StoreUnavailable):
        store.put_record("suppression", "s-1", {"fields": {"source.ip": "10.0.0.1"}})
    assert store.spool.pending() == 0 and not (tmp_path / "spool").exists()
    store.close()


def test_readers_take_no_lock_and_create_nothing(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    writer = start_writer(spool_dir, 0, 10)
    try:
        before = sorted(p.name for p in spool_dir.iterdir())
        store = SpooledStore(SqliteStore(tmp_path / "alerts.db"), DiskSpool(spool_dir))
        assert store.count() == 0 and store.search.__name__ == "search"
        assert store.spool.pending() == segments(spool_dir)[0].stat().st_size
        store.close()
        assert sorted(p.name for p in spool_dir.iterdir()) == before
        fresh = SpooledStore(SqliteStore(tmp_path / "other.db"), DiskSpool(tmp_path / "none"))
        assert fresh.get("nothing") is None and fresh.spool.pending() == 0
        fresh.close()
        assert not (tmp_path / "none").exists()
    finally:
        writer.kill()
        writer.wait(60)


def test_previous_format_is_drained_on_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """alerts.jsonl with alerts.cursor (one ECS alert per line), written by the previous version: delivered
    from its cursor once, but only when no process of that version holds its lock any more."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    lines = [json.dumps(make_alert(n).to_ecs(), sort_keys=True).encode() + b"\n" for n in range(8)]
    (spool_dir / "alerts.jsonl").write_bytes(b"".join(lines))
    (spool_dir / "alerts.cursor").write_text(str(len(lines[0]) + len(lines[1])))  # two delivered already
    store = SpooledStore(SqliteStore(tmp_path / "alerts.db"), DiskSpool(spool_dir))
    assert store.spool.pending() == sum(len(line) for line in lines[2:])

    with open(spool_dir / "lock", "w") as old_engine:  # a soc of the previous version is running
        fcntl.flock(old_engine, fcntl.LOCK_EX)
        assert store.deliver_spooled() and store.count() == 0
        assert f"{spool_dir / 'alerts.jsonl'} is still written by a running soc" in capsys.readouterr().err
    assert store.deliver_spooled()
    assert sorted(a.id for a in store.store.search(_everything())) == sorted(make_alert(n).id for n in range(2, 8))
    assert not (spool_dir / "alerts.jsonl").exists() and not (spool_dir / "alerts.cursor").exists()
    assert store.spool.pending() == 0
    store.close()


def _everything() -> object:
    from soc.store.base import AlertQuery

    return AlertQuery(include_suppressed=True)


def test_elasticsearch_killed_during_writes_and_during_spool_replay(
    restartable_es: object, es_prefix: str, tmp_path: Path
) -> None:
    server = restartable_es
    settings = ElasticsearchSettings(index_prefix=es_prefix, request_timeout=10, max_retries=0)
    store = SpooledStore(ElasticsearchStore(server.url, settings), DiskSpool(tmp_path / "spool"))  # type: ignore[attr-defined]
    alerts = [make_alert(n, bucket=n // 50) for n in range(2400)]
    batches = [alerts[i:i + 100] for i in range(0, len(alerts), 100)]
    events = [make_event(n) for n in range(600)]

    for batch in batches[:4]:  # the store is up
        store.write(batch)
    server.stop(kill=True)  # type: ignore[attr-defined]
    for n, batch in enumerate(batches[4:20]):  # down: everything waits in the spool, in order
        store.write(batch)
        store.write_events(events[n * 30:(n + 1) * 30])
    assert store.spooled >= 1600  # more when a write timed out on a loaded machine before the kill: also spooled
    assert store.spool.pending() > 0

    server.start()  # type: ignore[attr-defined]
    # kill the node again while the spool is being replayed, as soon as the first batch has been delivered
    def kill_when_replay_has_begun() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(c.read_text() not in ("", "0") for c in (tmp_path / "spool").glob("segment-*.cursor")):
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
    store.write_events(events[480:])
    assert store.spool.pending() == 0
    ids = all_ids(store.store)  # type: ignore[arg-type]
    assert len(ids) == len(alerts)
    assert set(ids) == {a.id for a in alerts}
    inner: ElasticsearchStore = store.store  # type: ignore[assignment]
    inner.client.indices.refresh(index=f"{inner.events_prefix}*")
    hits = inner.client.search(index=f"{inner.events_prefix}*", size=1000, source=False, query={"match_all": {}})
    assert sorted(h["_id"] for h in hits["hits"]["hits"]) == sorted({event_id(e) for e in events})  # type: ignore[arg-type]
    store.close()


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

    events = [make_event(n) for n in range(6)]
    events[3] = {**events[3], "source": {"ip": "not-an-address"}}
    assert store.write_events(events) == 5
    refused = [json.loads(line) for line in store.spool.dead_letters.read_text().splitlines()]
    assert [r["op"] for r in refused] == ["alerts", "events"] and refused[1]["docs"] == [events[3]]
    assert "event refused by the store" in capsys.readouterr().err
    assert os.path.getsize(store.spool.dead_letters) > 0 and store.spool.pending() == 0
    store.close()
