"""The event path: ECS events (log lines, protocol metadata from packets) through the Sigma engine into the
alert sink, optionally stored themselves (``soc-events-*``), in batches so a store write carries many."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from detectors.sigma import SigmaEngine
from soc.core.config import Settings
from soc.core.model import Event
from soc.coverage import CoverageTracker
from soc.sink import AlertSink

BATCH = 2000


def sigma_engine(settings: Settings) -> SigmaEngine | None:
    """The in-process engine over ``sigma.rules``; None when no rule folder exists."""
    paths = [settings.resolve(p) for p in settings.sigma.rules]
    existing = [p for p in paths if Path(p).exists()]
    if not existing:
        return None
    return SigmaEngine.from_paths(existing, settings.sigma.pipeline)


class EventPipeline:
    def __init__(self, settings: Settings, sink: AlertSink, store_events: bool = False,
                 engine: SigmaEngine | None = None) -> None:
        self.sink = sink
        self.coverage = CoverageTracker(settings, sink.store)
        self.store_events = store_events
        self.engine = engine if engine is not None else sigma_engine(settings)
        self.counts: Counter[str] = Counter()
        self._pending: list[Event] = []

    def feed(self, events: Iterable[Event]) -> None:
        for event in events:
            self._pending.append(event)
            if len(self._pending) >= BATCH:
                self.flush()

    def flush(self) -> None:
        events, self._pending = self._pending, []
        if not events:
            return
        self.counts["events"] += len(events)
        self.coverage.observe(events)
        self.coverage.flush()
        if self.store_events:
            self.counts["stored"] += self.sink.store.write_events(events)
        if self.engine is None:
            return
        alerts = [alert for event in events for alert in self.engine.process(event)]
        self.counts["matches"] += len(alerts)
        self.sink.emit(alerts)
