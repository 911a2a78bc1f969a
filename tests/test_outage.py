"""Elasticsearch (a node of our own) killed while `soc replay --events` and `soc run` write: the commands go on,
their writes wait in the spool, and after a restart every alert and every event is stored exactly once — the same
alerts (ids and counts) and the same number of events as a run into a fresh index without an outage."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ATTACKS, load_es_server_module
from .test_concurrency import TIMEOUT, auth_lines, listed, soc, start, stop, wait_for, write_config

CAPTURES = [ATTACKS / "chrissanders__synscan.pcapng", ATTACKS / "StopDDoS__pkt.TCP.synflood.spoofed.pcap",
            ATTACKS / "esnet-security__nmap_80_all.pcap"]  # the big one in the middle: the kill lands in it
SECOND_SOURCE = "203.0.113.78"


@pytest.fixture(scope="module")
def node() -> Iterator[object]:
    """A node only this module uses, so it may be killed (never the shared one in SOC_TEST_ES_URL)."""
    server = load_es_server_module().ElasticsearchServer()
    try:
        server.start()
    except Exception as exc:  # no JDK or Maven here
        pytest.skip(f"Elasticsearch could not be started here: {exc}")
    yield server
    server.cleanup()


@pytest.fixture
def running(node: object) -> object:
    if node.process is None or node.process.poll() is not None:  # type: ignore[attr-defined]
        node.start()  # type: ignore[attr-defined]
    return node


def client(url: str) -> object:
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, request_timeout=30)


def events_stored(url: str, prefix: str) -> int:
    es = client(url)
    es.indices.refresh(index=f"{prefix}-events-*")  # type: ignore[attr-defined]
    return int(es.count(index=f"{prefix}-events-*")["count"])  # type: ignore[attr-defined]


def alert_counts(folder: Path) -> dict[str, int]:
    return {d["event"]["id"]: d["soc"]["alert"]["count"] for d in listed(folder)}


def kill_when(condition: object, server: object) -> threading.Thread:
    """Kill the node (SIGKILL, as a crash) as soon as ``condition()`` holds."""
    def watch() -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if condition():  # type: ignore[operator]
                    break
            except Exception:  # the node answers slowly under load: ask again
                pass
            time.sleep(0.05)
        server.stop(kill=True)  # type: ignore[attr-defined]

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def spooled_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (folder / "spool").glob("segment-*.jsonl"))


def two_folders(tmp_path: Path, url: str, name: str) -> tuple[Path, Path]:
    """A run without outage into a fresh index (``baseline``) and one with (``outage``), each with its soc.yaml."""
    folders = tmp_path / "baseline", tmp_path / "outage"
    for folder in folders:
        folder.mkdir()
        write_config(folder, url, f"soctest-outage-{name}-{folder.name}", request_timeout=10)
    return folders


def test_elasticsearch_killed_during_replay_with_events(running: object, tmp_path: Path) -> None:
    url = running.url  # type: ignore[attr-defined]
    baseline, outage = two_folders(tmp_path, url, "replay")
    captures = [str(c) for c in CAPTURES]
    fresh = soc("replay", "-q", "--events", "-c", "soc.yaml", *captures, cwd=baseline)
    assert fresh.returncode == 0, fresh.stderr

    es = client(url)
    killer = kill_when(lambda: es.indices.exists(index="soctest-outage-replay-outage-events-*"),  # type: ignore[attr-defined]
                       running)
    interrupted = soc("replay", "-q", "--events", "-c", "soc.yaml", *captures, cwd=outage)
    killer.join()
    assert interrupted.returncode == 75, interrupted.stderr  # did not abort: its writes wait in the spool
    assert f"Elasticsearch at {url} unreachable" in interrupted.stderr
    assert spooled_text(outage)

    running.start()  # type: ignore[attr-defined]
    again = soc("replay", "-q", "--events", "-c", "soc.yaml", *captures, cwd=outage)
    assert again.returncode == 0, again.stderr
    assert not spooled_text(outage)
    assert alert_counts(outage) == alert_counts(baseline)  # the same alerts, each once, with the same counts
    assert events_stored(url, "soctest-outage-replay-outage") == events_stored(url, "soctest-outage-replay-baseline")


def test_elasticsearch_killed_during_run_on_a_log_file(running: object, tmp_path: Path) -> None:
    url = running.url  # type: ignore[attr-defined]
    baseline, outage = two_folders(tmp_path, url, "run")
    later = auth_lines(40, 41, "198.51.100.9")  # one more line after the restart: its write delivers the spool
    everything = auth_lines(0, 14) + auth_lines(20, 34, SECOND_SOURCE) + later

    (baseline / "auth.log").write_text(everything)
    run = start("run", "--events", "-c", "soc.yaml", "--state-dir", "state", cwd=baseline)
    _wait(lambda: {a["source"]["ip"] for a in listed(baseline)} >= {"203.0.113.77", SECOND_SOURCE}
          and events_stored(url, "soctest-outage-run-baseline") == everything.count("\n"), run)
    code, stderr = stop(run)
    assert code == 0, stderr

    (outage / "auth.log").write_text(auth_lines(0, 14))
    run = start("run", "--events", "-c", "soc.yaml", "--state-dir", "state", cwd=outage)
    try:
        _wait(lambda: any(a["source"]["ip"] == "203.0.113.77" for a in listed(outage)), run)
        running.stop(kill=True)  # type: ignore[attr-defined]
        with open(outage / "auth.log", "a") as log:  # the log goes on while the store is down
            log.write(auth_lines(20, 34, SECOND_SOURCE))
        _wait(lambda: any(line.startswith('{"op":"alerts"') and SECOND_SOURCE in line
                          for line in spooled_text(outage).splitlines()), run)
        assert run.poll() is None, "soc run goes on while the store is down"
    finally:
        code, stderr = stop(run)
    assert code == 75, stderr  # stopped with writes waiting in the spool

    running.start()  # type: ignore[attr-defined]
    run = start("run", "--events", "-c", "soc.yaml", "--state-dir", "state", cwd=outage)
    with open(outage / "auth.log", "a") as log:
        log.write(later)
    _wait(lambda: not spooled_text(outage) and len(listed(outage)) == 2, run)
    code, stderr = stop(run)
    assert code == 0, stderr
    assert alert_counts(outage) == alert_counts(baseline)
    assert events_stored(url, "soctest-outage-run-outage") == events_stored(url, "soctest-outage-run-baseline") \
        == everything.count("\n")


def _wait(condition: object, process: object) -> None:
    wait_for(condition, "the expected state", process)  # type: ignore[arg-type]
