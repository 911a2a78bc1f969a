"""`soc run`: live interfaces and log sources through the same pipeline as a replay, until stopped.

Files left in the ring folder by a previous run are processed first, so a restart loses nothing that dumpcap
had written; then dumpcap captures and each finished ring file is replayed and removed. The log sources of
``collectors.logs`` (syslog listeners, followed files, EVTX) are polled in the same loop; each source's position
is committed once its events' alerts are stored, so a restart repeats nothing and loses nothing.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.logs import LogsConfig, Source, SyslogSource
from collectors.packets.live import DropCounters, RingCapture, RingFollower
from soc.core.config import Settings
from soc.core.errors import CaptureError
from soc.pipeline import Replay, ReplayReport
from soc.store import AlertStore


@dataclass(slots=True)
class LiveStatus:
    files: int
    packets: int
    flows: int
    alerts: int
    drops: DropCounters


def run_live(
    settings: Settings,
    store: AlertStore,
    interfaces: list[str],
    state_dir: Path,
    duration: float | None = None,
    store_events: bool = False,
    capture_filter: str | None = None,
    on_status: Callable[[LiveStatus], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[ReplayReport, DropCounters]:
    """Capture until ``duration`` seconds pass, SIGINT/SIGTERM arrives, or ``stop`` is set."""
    stop = stop or threading.Event()
    ring_dir = state_dir / "ring"
    follower = RingFollower(ring_dir, state_dir / "ring.checkpoint")
    pipeline = Replay(settings, store, store_events=store_events)
    ring_dir.mkdir(parents=True, exist_ok=True)

    def process(files: list[Path]) -> None:
        for path in files:
            pipeline.feed(path)
            follower.mark_done(path)

    process(follower.pending(include_newest=True))  # leftovers of a previous run: dumpcap is not writing them
    logs = open_log_sources(settings, state_dir)
    capture = RingCapture(interfaces, ring_dir, capture_filter=capture_filter) if interfaces else None
    if capture is None and not logs:
        raise CaptureError("nothing to watch: give --interface, collectors.packets.interfaces or collectors.logs")
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    follower.new_run()
    if capture is not None:
        capture.start()
    deadline = time.monotonic() + duration if duration else None
    drops = DropCounters()
    try:
        while not stop.is_set() and (capture is None or capture.running()):
            if deadline is not None and time.monotonic() >= deadline:
                break
            process(follower.pending())
            poll_logs(logs, pipeline)
            if on_status is not None:
                on_status(_status(pipeline.report, capture.drops if capture else drops, follower))
            stop.wait(0.2)
    finally:
        if capture is not None:
            drops = capture.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    process(follower.pending(include_newest=True))
    poll_logs(logs, pipeline)
    for source in logs:
        source.close()
    drops.own = follower.lost_files
    report = pipeline.finish()
    if on_status is not None:
        on_status(_status(report, drops, follower))
    return report, drops


def open_log_sources(settings: Settings, state_dir: Path) -> list[Source]:
    """The configured log sources, started, with their checkpoint and dead-letter file in ``state_dir``."""
    if not settings.collectors.logs:
        return []
    config = LogsConfig.from_list(settings.collectors.logs, checkpoint=str(state_dir / "logs.checkpoint"),
                                  dead_letter=str(state_dir / "logs.dead-letter.jsonl"))
    sources = config.open()
    for source in sources:
        if isinstance(source, SyslogSource):
            source.start()
    return sources


def poll_logs(sources: list[Source], pipeline: Replay) -> None:
    """What each source has now, through the event path; its position is committed once the alerts are stored."""
    for source in sources:
        events = source.poll(max_events=10_000, timeout=0.0)
        if events:
            pipeline.events.feed(events)
            pipeline.events.flush()
            source.commit()


def _status(report: ReplayReport, drops: DropCounters, follower: RingFollower) -> LiveStatus:
    drops.own = follower.lost_files
    return LiveStatus(len(report.files), sum(f.packets for f in report.files), report.flows, len(report.alerts),
                      drops)
