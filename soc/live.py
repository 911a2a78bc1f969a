"""`soc run`: capture from live interfaces through the same pipeline as a replay, until stopped.

Files left in the ring folder by a previous run are processed first, so a restart loses nothing that dumpcap
had written; then dumpcap captures and each finished ring file is replayed and removed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.packets.live import DropCounters, RingCapture, RingFollower
from soc.config import Settings
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
    capture = RingCapture(interfaces, ring_dir, capture_filter=capture_filter)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    follower.new_run()
    capture.start()
    deadline = time.monotonic() + duration if duration else None
    try:
        while not stop.is_set() and capture.running():
            if deadline is not None and time.monotonic() >= deadline:
                break
            process(follower.pending())
            if on_status is not None:
                on_status(_status(pipeline.report, capture.drops, follower))
            stop.wait(0.5)
    finally:
        drops = capture.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    process(follower.pending(include_newest=True))
    drops.own = follower.lost_files
    report = pipeline.finish()
    if on_status is not None:
        on_status(_status(report, drops, follower))
    return report, drops


def _status(report: ReplayReport, drops: DropCounters, follower: RingFollower) -> LiveStatus:
    drops.own = follower.lost_files
    return LiveStatus(len(report.files), sum(f.packets for f in report.files), report.flows, len(report.alerts),
                      drops)
