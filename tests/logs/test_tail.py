"""File tails: checkpoints resume exactly, rotation by rename and by copy-truncate loses and repeats nothing,
and a collector killed with SIGKILL in the middle of a file produces every line exactly once after restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from collectors.logs.base import Diagnostics
from collectors.logs.checkpoint import CheckpointStore
from collectors.logs.tail import FileSource
from soc.core.model import Event

REPO = Path(__file__).resolve().parents[2]


def auth_line(n: int) -> str:
    stamp = f"Nov 25 07:{n // 60 % 60:02d}:{n % 60:02d}"
    ip = f"10.0.{n % 250}.{n % 200 + 1}"
    port = 20000 + n % 40000
    return f"{stamp} web01 sshd[{1000 + n % 5000}]: Failed password for user{n} from {ip} port {port} ssh2\n"


def write_lines(path: Path, numbers: range, mode: str = "a") -> None:
    with path.open(mode) as handle:
        handle.write("".join(auth_line(n) for n in numbers))


def users(events: list[Event]) -> list[int]:
    return [int(e["user"]["name"][4:]) for e in events]


def test_checkpoint_resumes_at_next_line(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    write_lines(log, range(100))
    store = CheckpointStore(tmp_path / "cp.json")
    first = FileSource(log, "syslog", checkpoints=store, options={"year": 2026})
    taken = []
    for event in first:
        taken.append(event)
        first.commit()
        if len(taken) == 37:
            break
    first.close()
    assert users(taken) == list(range(37))
    saved = json.loads((tmp_path / "cp.json").read_text())[first.name]
    assert saved["offset"] == sum(len(auth_line(n).encode()) for n in range(37))
    assert saved["inode"] == log.stat().st_ino
    second = FileSource(log, "syslog", checkpoints=CheckpointStore(tmp_path / "cp.json"), options={"year": 2026})
    rest = list(second)
    assert users(rest) == list(range(37, 100))
    assert rest[0]["log"]["offset"] == saved["offset"]
    assert rest[0]["log"]["file"]["path"] == str(log)


class Follower:
    """A followed FileSource drained by a thread, committing after each event as a pipeline would."""

    def __init__(self, path: Path, store: CheckpointStore, fmt: str | None = "syslog") -> None:
        self.source = FileSource(path, fmt, checkpoints=store, follow=True, poll_interval=0.01)
        self.events: list[Event] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @classmethod
    def sniffing(cls, path: Path, store: CheckpointStore) -> Follower:
        return cls(path, store, None)

    def _run(self) -> None:
        for event in self.source:
            self.events.append(event)
            self.source.commit()

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.events) >= count, f"got {len(self.events)} of {count} events"

    def stop(self) -> None:
        self.source.close()
        self.thread.join(timeout=5)


def test_follow_across_rename_and_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    write_lines(log, range(0, 50), "w")
    follower = Follower(log, CheckpointStore(tmp_path / "cp.json"))
    follower.wait_for(50)
    write_lines(log, range(50, 80))
    follower.wait_for(80)
    # rename rotation: the writer still appends to the old file before reopening
    log.rename(tmp_path / "auth.log.1")
    write_lines(tmp_path / "auth.log.1", range(80, 90))
    write_lines(log, range(90, 120), "w")
    follower.wait_for(120)
    # copy-truncate rotation: contents copied away, file emptied in place, writing continues at 0
    (tmp_path / "auth.log.2").write_bytes(log.read_bytes())
    os.truncate(log, 0)
    write_lines(log, range(120, 125))
    follower.wait_for(125)
    follower.stop()
    assert sorted(users(follower.events)) == list(range(125))
    assert len(follower.events) == 125
    assert follower.source.stats.rotations == {"rename": 1, "truncate": 1}
    assert follower.source.stats.malformed == {}


def test_restart_finishes_file_renamed_while_down(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    write_lines(log, range(0, 40), "w")
    store = CheckpointStore(tmp_path / "cp.json")
    source = FileSource(log, "syslog", checkpoints=store)
    for i, _ in enumerate(source):
        source.commit()
        if i == 24:
            break
    source.close()
    write_lines(log, range(40, 60))
    log.rename(tmp_path / "auth.log.1")
    write_lines(log, range(60, 70), "w")
    again = FileSource(log, "syslog", checkpoints=CheckpointStore(tmp_path / "cp.json"))
    events = list(again)
    assert users(events) == list(range(25, 70))
    assert events[0]["log"]["file"]["path"] == str(tmp_path / "auth.log.1")
    assert events[-1]["log"]["file"]["path"] == str(log)


def test_partial_last_line_waits_when_following(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(auth_line(0) + auth_line(1)[:30])
    follower = Follower(log, CheckpointStore(tmp_path / "cp.json"))
    follower.wait_for(1)
    time.sleep(0.1)
    assert len(follower.events) == 1  # the half-written line is not parsed early
    with log.open("a") as handle:
        handle.write(auth_line(1)[30:])
    follower.wait_for(2)
    follower.stop()
    assert users(follower.events) == [0, 1]


def _ingest(log: Path, out: Path, cp: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "soc.cli.logs", "ingest", str(log), "--format", "syslog"]
    command += ["--output", str(out), "--checkpoint", str(cp), "--dead-letter", str(out) + ".dead"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _output_lines(out: Path) -> int:
    try:
        with out.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def test_sigkill_mid_file_then_restart_processes_every_line_once(tmp_path: Path) -> None:
    total = 60_000
    log = tmp_path / "auth.log"
    with log.open("w") as handle:
        for start in range(0, total, 10_000):
            handle.write("".join(auth_line(n) for n in range(start, start + 10_000)))
            if start == 30_000:
                handle.write("this line is not syslog\n")  # one malformed line on the way
    out, cp = tmp_path / "events.jsonl", tmp_path / "cp.json"
    kills = 0
    for threshold in (10_000, 35_000):
        proc = _ingest(log, out, cp)
        while proc.poll() is None and _output_lines(out) < threshold:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1, "the collector finished before it could be killed"
    assert _output_lines(out) < total
    proc = _ingest(log, out, cp)
    assert proc.wait(timeout=120) == 0
    seen: list[int] = []
    with out.open() as handle:
        for line in handle:
            seen.append(int(json.loads(line)["user"]["name"][4:]))
    assert len(seen) == total
    assert sorted(seen) == list(range(total))
    dead = [json.loads(line) for line in Path(str(out) + ".dead").read_text().splitlines()]
    assert {d["reason"] for d in dead} == {"no_match"}
    assert {d["raw"] for d in dead} == {"this line is not syslog"}


def test_poll_never_waits_and_covers_rotation(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    store = CheckpointStore(tmp_path / "cp.json")
    source = FileSource(log, "syslog", checkpoints=store, follow=True, poll_interval=0.01)
    assert source.poll() == []  # not there yet: nothing, at once
    write_lines(log, range(0, 30), "w")
    assert users(source.poll(max_events=20)) == list(range(20))
    assert users(source.poll()) == list(range(20, 30))
    source.commit()
    log.rename(tmp_path / "auth.log.1")
    write_lines(log, range(30, 35), "w")
    started = time.monotonic()
    got = source.poll(timeout=2)
    got += source.poll()
    assert users(got) == list(range(30, 35))
    assert time.monotonic() - started < 2
    assert source.poll(timeout=0.05) == [] and not source.done
    source.close()
    once = FileSource(log, "syslog")
    assert users(once.poll()) == list(range(30, 35))
    assert once.poll() == [] and once.done


def test_followed_file_may_appear_later(tmp_path: Path) -> None:
    log = tmp_path / "late.log"
    follower = Follower.sniffing(log, CheckpointStore(tmp_path / "cp.json"))
    time.sleep(0.05)
    log.write_text("")  # created empty first, as loggers do
    time.sleep(0.05)
    write_lines(log, range(3))
    follower.wait_for(3)
    follower.stop()
    assert users(follower.events) == [0, 1, 2]
    assert follower.source.stats.malformed == {}


def test_unknown_format_and_missing_file_are_counted(tmp_path: Path) -> None:
    weird = tmp_path / "weird.log"
    weird.write_text("hello\nworld\n")
    diag = Diagnostics()
    assert list(FileSource(weird, diagnostics=diag)) == []
    assert list(FileSource(tmp_path / "absent.log", "syslog", diagnostics=diag)) == []
    (tmp_path / "empty.log").write_text("")
    assert list(FileSource(tmp_path / "empty.log", diagnostics=diag)) == []
    assert diag.stats.malformed == {"unknown_format": 1, "unreadable_file": 1}
    assert diag.stats.skipped == {"empty_file": 1}
