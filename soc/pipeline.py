"""The main job: capture files through the flow meter and the network detectors into an alert store.

Alerts are written as soon as a detector closes a window, so damage later in a file (or a crash) never takes the
alerts found before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collectors.flows import ReferenceFlowMeter, flow_events
from collectors.packets import CaptureReader
from detectors.base import FlowDetector
from detectors.network import PortScanDetector
from soc.alerts.handling import AlertHandler
from soc.config import Settings
from soc.errors import CaptureError
from soc.model import Alert, FlowBatch
from soc.response import PlaybookEngine, load_playbooks
from soc.store import AlertStore

# progress(path, bytes done, bytes in file)
Progress = Callable[[Path, int, int], None]


@dataclass(slots=True)
class FileReport:
    path: Path
    packets: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    error: CaptureError | None = None


@dataclass(slots=True)
class ReplayReport:
    files: list[FileReport] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    flows: int = 0
    events_written: int = 0
    playbook_runs: int = 0

    @property
    def errors(self) -> list[CaptureError]:
        return [f.error for f in self.files if f.error is not None]


def build_detectors(settings: Settings) -> list[FlowDetector]:
    return [PortScanDetector(settings.detectors.portscan)]


def _playbook_engine(settings: Settings, store: AlertStore) -> PlaybookEngine:
    return PlaybookEngine(settings, store, load_playbooks([settings.resolve(p) for p in settings.playbooks]))


class Replay:
    """One pass over capture files: reader → flow meter → detectors → store."""

    def __init__(self, settings: Settings, store: AlertStore, store_events: bool = False,
                 progress: Progress | None = None) -> None:
        self.settings = settings
        self.store = store
        self.store_events = store_events
        self.progress = progress
        flows = settings.collectors.flows
        self.meter = ReferenceFlowMeter(flows.idle_timeout, flows.active_timeout)
        self.detectors = build_detectors(settings)
        self.handler = AlertHandler(settings, store)
        self.playbooks = _playbook_engine(settings, store) if settings.response.auto_run else None
        self._alerts: dict[str, Alert] = {}
        self.report = ReplayReport()

    def run(self, paths: Sequence[str | Path]) -> ReplayReport:
        for path in paths:
            self.feed(Path(path))
        return self.finish()

    def finish(self) -> ReplayReport:
        """End of input: expire every flow and close every detector window."""
        self._flows(self.meter.flush())
        self._emit([alert for detector in self.detectors for alert in detector.flush()])
        return self.report

    def feed(self, path: Path) -> FileReport:
        """One more capture file of the same stream (flows continue across files, as in a capture ring)."""
        file_report = FileReport(path)
        self.report.files.append(file_report)
        reader = CaptureReader(path, chunk_packets=self.settings.collectors.packets.chunk_packets)
        try:
            for batch in reader:
                self._flows(self.meter.update(batch))
                if self.progress is not None:
                    last = len(batch) - 1
                    self.progress(path, int(batch.data_offset[last] + batch.caplen[last]), reader.size)
        except CaptureError as exc:
            file_report.error = exc
        file_report.error = file_report.error or reader.error
        file_report.packets = reader.stats.packets
        file_report.by_status = reader.stats.by_status
        return file_report

    def _flows(self, flows: FlowBatch) -> None:
        self.report.flows += len(flows)
        if self.store_events and len(flows):
            self.report.events_written += self.store.write_events(flow_events(flows))
        self._emit([alert for detector in self.detectors for alert in detector.observe(flows)])

    def _emit(self, alerts: list[Alert]) -> None:
        """Handle and write alerts; the report keeps the latest version of each."""
        if not alerts:
            return
        alerts = self.handler.handle(alerts)
        self.store.write(alerts)
        for alert in alerts:
            self._alerts[alert.id] = alert
            if self.playbooks is not None and alert.suppressed_by is None:
                self.report.playbook_runs += len(self.playbooks.start_all(alert))
        self.report.alerts = list(self._alerts.values())
