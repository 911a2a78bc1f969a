"""The engine: one pipeline for `soc replay`, `soc run`, `soc ingest` and the lab.

Inputs are packet batches (capture files, live ring files) and ECS events (log sources). Packets go through the
flow meter; the observers (plug-ins: protocol analyzers, network detectors, the Sigma engine, anomaly models) see
packets, the flows that ended, and events; what they return is routed: events to the event path (coverage, the
event store, the observers of events), alerts to the sink (handling, store, playbooks). Alerts are written as soon
as an observer returns them, so damage later in a file (or a crash) never takes the alerts found before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collectors.flows import FlowMeter, flow_events
from collectors.packets import CaptureReader
from soc.core.config import Settings
from soc.core.errors import CaptureError
from soc.core.model import Alert, Event, FlowBatch, PacketBatch
from soc.core.plugins import HOOKS, Observer, Output
from soc.coverage import CoverageTracker
from soc.engine.plugins import build_observers
from soc.engine.sink import AlertSink
from soc.store import AlertStore, SpooledStore

# progress(path, bytes done, bytes in file)
Progress = Callable[[Path, int, int], None]
EVENT_BATCH = 2000  # events handed to the observers and the store at once


@dataclass(slots=True)
class FileReport:
    path: Path
    packets: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    error: CaptureError | None = None


@dataclass(slots=True)
class EngineReport:
    files: list[FileReport] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    flows: int = 0
    events: int = 0  # events through the event path (log lines, protocol metadata)
    events_written: int = 0  # flows and events stored (--events)
    playbook_runs: int = 0

    @property
    def packets(self) -> int:
        return sum(f.packets for f in self.files)

    @property
    def errors(self) -> list[CaptureError]:
        return [f.error for f in self.files if f.error is not None]


class Engine:
    """``observers``: the stages to run (default: every enabled plug-in of ``settings``)."""

    def __init__(self, settings: Settings, store: AlertStore, *, store_events: bool = False,
                 observers: Sequence[Observer] | None = None, progress: Progress | None = None) -> None:
        self.settings = settings
        self.store = store
        self.store_events = store_events
        self.progress = progress
        flows = settings.collectors.flows
        self.meter = FlowMeter(flows.idle_timeout, flows.active_timeout, max_flows=flows.max_flows)
        self.observers = list(observers) if observers is not None else build_observers(settings)
        self._hooked = {hook: [o for o in self.observers if hook in type(o).hooks()] for hook in HOOKS}
        if isinstance(store, SpooledStore):
            store.deliver_spooled()  # what an earlier run left in the spool goes first, even if no write comes
        self.sink = AlertSink(settings, store)
        self.coverage = CoverageTracker(settings, store)
        self.report = EngineReport()
        self.clock_ns = 0  # the newest packet time seen: the capture clock
        self._events: list[Event] = []

    # --- inputs -------------------------------------------------------------------------------------------------

    def feed_capture(self, path: Path) -> FileReport:
        """One more capture file of the same stream (flows continue across files, as in a capture ring). A file
        damaged part way is read up to the damage, which the report names (path and byte offset)."""
        file_report = FileReport(path)
        self.report.files.append(file_report)
        self._call("on_input", str(path))
        reader = CaptureReader(path, chunk_packets=self.settings.collectors.packets.chunk_packets)
        try:
            for batch in reader:
                self.feed_packets(batch)
                if self.progress is not None and len(batch):
                    last = len(batch) - 1
                    self.progress(path, int(batch.data_offset[last] + batch.caplen[last]), reader.size)
        except CaptureError as exc:
            file_report.error = exc
        self.flush()  # alerts found before any damage are stored now
        file_report.error = file_report.error or reader.error
        file_report.packets = reader.stats.packets
        file_report.by_status = reader.stats.by_status
        return file_report

    def feed_packets(self, batch: PacketBatch) -> None:
        if len(batch):
            self.clock_ns = max(self.clock_ns, int(batch.ts_ns.max()))
        self._flows(self.meter.update(batch))
        self._call("on_packets", batch)

    def feed_events(self, events: Iterable[Event]) -> None:
        """Events (log lines) through the event path, in batches."""
        for event in events:
            self._events.append(event)
            if len(self._events) >= EVENT_BATCH:
                self._flush_events()

    def tick(self, now_ns: int) -> None:
        """The wall clock of a live run: observers holding state for a quiet input may let it go."""
        self._call("on_tick", now_ns)
        self.flush()

    def flush(self) -> None:
        """Hand the pending events to the observers and the store now (a source commits its position after)."""
        self._flush_events()

    def finish(self) -> EngineReport:
        """End of input: expire every flow, close every observer's windows, flush what is pending."""
        self._flows(self.meter.flush())
        self._call("on_finish")
        self.flush()
        self.sink.start_playbooks()
        return self.summary()

    def summary(self) -> EngineReport:
        self.report.alerts = self.sink.alerts
        self.report.playbook_runs = self.sink.playbook_runs
        return self.report

    # --- routing ------------------------------------------------------------------------------------------------

    def _call(self, hook: str, *args: object) -> None:
        for observer in self._hooked[hook]:
            self._route(getattr(observer, hook)(*args), hook)

    def _route(self, output: Output, hook: str) -> None:
        if not output:
            return
        alerts = [item for item in output if isinstance(item, Alert)]
        if len(alerts) < len(output):
            events = [item for item in output if not isinstance(item, Alert)]
            if hook == "on_events":  # made from events: stored, not shown to the observers of events again
                self._store(events)
            else:
                self._events.extend(events)
                if len(self._events) >= EVENT_BATCH:
                    self._flush_events()
        if alerts:
            if hook != "on_alerts":  # what alert observers return is not shown to them again
                for observer in self._hooked["on_alerts"]:
                    self._route(observer.on_alerts(alerts), "on_alerts")
            self.sink.emit(alerts)

    def _flows(self, flows: FlowBatch) -> None:
        if not len(flows):
            return
        self.report.flows += len(flows)
        self.coverage.observe_flows(flows)
        self.coverage.flush()
        if self.store_events:
            self.report.events_written += self.store.write_events(flow_events(flows))
        self._call("on_flows", flows)

    def _flush_events(self) -> None:
        events, self._events = self._events, []
        if not events:
            return
        self.report.events += len(events)
        self._store(events)
        for observer in self._hooked["on_events"]:
            self._route(observer.on_events(events), "on_events")

    def _store(self, events: list[Event]) -> None:
        self.coverage.observe(events)
        self.coverage.flush()
        if self.store_events:
            self.report.events_written += self.store.write_events(events)
