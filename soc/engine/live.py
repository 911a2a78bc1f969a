"""`soc run`: live interfaces and log sources through the engine until stopped.

Files left in the ring folder by a previous run are processed first, so a restart loses nothing that dumpcap had
written; then dumpcap captures and each finished ring file is replayed and removed. The log sources of
``collectors.logs`` are polled in the same loop; each source's position is committed once its events' alerts are
stored, so a restart repeats nothing and loses nothing.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.packets.live import DropCounters
from soc.core.config import Settings
from soc.core.errors import CaptureError
from soc.engine.engine import Engine, EngineReport
from soc.engine.sources import CaptureRing, LogSources
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
    engine: Engine | None = None,
) -> tuple[EngineReport, DropCounters]:
    """Capture until ``duration`` seconds pass, SIGINT/SIGTERM arrives, or ``stop`` is set."""
    stop = stop or threading.Event()
    engine = engine or Engine(settings, store, store_events=store_events)
    ring = CaptureRing(interfaces, state_dir, capture_filter)
    logs = LogSources(settings, state_dir)
    if ring.capture is None and not logs.sources:
        raise CaptureError("nothing to watch: give --interface, collectors.packets.interfaces or collectors.logs")
    logs.start()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    ring.start(engine)
    deadline = time.monotonic() + duration if duration else None
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            capturing = ring.poll(engine)
            logs.poll(engine)
            if ring.capture is not None and not capturing:
                break  # dumpcap ended
            if on_status is not None:
                on_status(_status(engine.summary(), ring.current_drops()))
            stop.wait(0.2)
    finally:
        ring.stop(engine)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logs.poll(engine)
    logs.close()
    report = engine.finish()
    if on_status is not None:
        on_status(_status(report, ring.drops))
    return report, ring.drops


def _status(report: EngineReport, drops: DropCounters) -> LiveStatus:
    return LiveStatus(len(report.files), report.packets, report.flows, len(report.alerts), drops)
