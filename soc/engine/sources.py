"""What feeds the engine: capture files, the live capture ring, log files read once, and live log sources.

Every source has ``poll(engine)``: hand the engine what is there now, return False once the source has ended.
Live sources commit their position only after the engine has stored what came from it, so a restart loses
nothing and repeats nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

from collectors.logs import LogsConfig, SyslogSource
from collectors.logs import Source as LogSource
from collectors.packets.live import DropCounters, RingCapture, RingFollower
from soc.core.config import Settings
from soc.core.model import Event
from soc.engine.engine import Engine, EngineReport
from soc.store import AlertStore


class Source(ABC):
    @abstractmethod
    def poll(self, engine: Engine) -> bool:
        """Feed the engine what is available now; False when nothing more will come."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing
        """Release what the source holds (listeners, capture processes)."""


class CaptureFiles(Source):
    """pcap/pcapng files, replayed in order as one stream."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]

    def poll(self, engine: Engine) -> bool:
        for path in self.paths:
            engine.feed_capture(path)
        return False


class EventStream(Source):
    """Events read once (``soc ingest``: log files parsed by collectors.logs)."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events = events

    def poll(self, engine: Engine) -> bool:
        engine.feed_events(self.events)
        engine.flush()
        return False


class CaptureRing(Source):
    """Live interfaces through dumpcap's ring of one-second files: each finished file is replayed and removed, and
    a checkpoint names the last one done. Files left by a previous run are processed first."""

    def __init__(self, interfaces: list[str], state_dir: Path, capture_filter: str | None = None) -> None:
        ring_dir = state_dir / "ring"
        ring_dir.mkdir(parents=True, exist_ok=True)
        self.follower = RingFollower(ring_dir, state_dir / "ring.checkpoint")
        self.capture = RingCapture(interfaces, ring_dir, capture_filter=capture_filter) if interfaces else None
        self.drops = DropCounters()

    def start(self, engine: Engine) -> None:
        self._replay(engine, include_newest=True)  # leftovers of a previous run: dumpcap is not writing them
        self.follower.new_run()
        if self.capture is not None:
            self.capture.start()

    def poll(self, engine: Engine) -> bool:
        self._replay(engine)
        return self.capture is not None and self.capture.running()

    def stop(self, engine: Engine) -> None:
        if self.capture is not None:
            self.drops = self.capture.stop()
        self._replay(engine, include_newest=True)
        self.drops.own = self.follower.lost_files

    def current_drops(self) -> DropCounters:
        drops = self.capture.drops if self.capture is not None else self.drops
        drops.own = self.follower.lost_files
        return drops

    def _replay(self, engine: Engine, include_newest: bool = False) -> None:
        for path in self.follower.pending(include_newest=include_newest):
            engine.feed_capture(path)
            self.follower.mark_done(path)


class LogSources(Source):
    """The log sources of ``collectors.logs`` (syslog listeners, followed files, EVTX), with their checkpoint and
    dead-letter file in ``state_dir``."""

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self.sources: list[LogSource] = []
        if settings.collectors.logs:
            config = LogsConfig.from_list(settings.collectors.logs, checkpoint=str(state_dir / "logs.checkpoint"),
                                          dead_letter=str(state_dir / "logs.dead-letter.jsonl"))
            self.sources = config.open()

    def start(self) -> None:
        for source in self.sources:
            if isinstance(source, SyslogSource):
                source.start()

    def poll(self, engine: Engine) -> bool:
        for source in self.sources:
            events = source.poll(max_events=10_000, timeout=0.0)
            if events:
                engine.feed_events(events)
                engine.flush()
                source.commit()  # only once the alerts of these events are stored (or spooled)
        return bool(self.sources)

    def close(self) -> None:
        for source in self.sources:
            source.close()


def run_to_end(engine: Engine, sources: Sequence[Source]) -> EngineReport:
    """Feed every source until each has ended (files, folders: `soc replay`, `soc ingest`, the lab), then finish."""
    try:
        live = list(sources)
        while live:
            live = [source for source in live if source.poll(engine)]
    finally:
        for source in sources:
            source.close()
    return engine.finish()


def replay_files(settings: Settings, store: AlertStore, paths: Sequence[str | Path],
                 store_events: bool = False) -> EngineReport:
    """Capture files through a new engine with every configured plug-in: what `soc replay` does."""
    return run_to_end(Engine(settings, store, store_events=store_events), [CaptureFiles(paths)])
