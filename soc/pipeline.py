"""The main job: capture files through the flow meter and the network detectors into an alert store.

Alerts are written as soon as a detector closes a window, so damage later in a file (or a crash) never takes the
alerts found before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.flows import FlowMeter, flow_events
from collectors.packets import CaptureReader
from collectors.protocols import ProtocolExtractor
from collectors.protocols.http import HOME_NETWORKS
from detectors.anomaly.settings import AnomalySettings
from detectors.base import FlowDetector, PacketDetector
from detectors.network import (
    AdminShareDetector,
    ArpSpoofDetector,
    BeaconDetector,
    BruteForceDetector,
    DnsTunnelDetector,
    ExfiltrationDetector,
    FloodDetector,
    LateralMovementDetector,
    PortScanDetector,
)
from soc.core.config import Settings
from soc.core.errors import CaptureError
from soc.core.model import Alert, FlowBatch
from soc.events import EventPipeline
from soc.sink import AlertSink
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


def build_packet_detectors(settings: Settings) -> list[PacketDetector]:
    """Detectors that read packets flows do not keep: ARP replies, DNS query names, SMB writes."""
    d = settings.detectors
    return [ArpSpoofDetector(d.arp_spoof), DnsTunnelDetector(d.dns_tunnel), AdminShareDetector(d.admin_share)]


def build_detectors(settings: Settings) -> list[FlowDetector]:
    return [
        PortScanDetector(settings.detectors.portscan),
        FloodDetector(settings.detectors.flood),
        BruteForceDetector(settings.detectors.bruteforce),
        BeaconDetector(settings.detectors.beacon),
        ExfiltrationDetector(settings.detectors.exfiltration),
        LateralMovementDetector(settings.detectors.lateral),
        *AnomalySettings.detectors(settings.detectors.anomaly, settings.resolve),
    ]


def protocol_settings(settings: Settings) -> dict[str, Any]:
    """The protocol parsers' options; requests to the inventory's systems count as ``webserver`` traffic (ours
    to serve), the rest as ``proxy`` (our users going out), unless the configuration names home networks."""
    config = dict(settings.collectors.protocols)
    http = dict(config.get("http") or {})
    if "home_networks" not in http:
        inventory = [str(network) for system in settings.inventory for network in system.addresses]
        http["home_networks"] = [*HOME_NETWORKS, *inventory]
    config["http"] = http
    return config


class Replay:
    """One pass over capture files: reader → flow meter → flow detectors, and protocol metadata → Sigma rules;
    every alert through the sink (handling, store, playbooks)."""

    def __init__(self, settings: Settings, store: AlertStore, store_events: bool = False,
                 progress: Progress | None = None) -> None:
        self.settings = settings
        self.store = store
        self.store_events = store_events
        self.progress = progress
        flows = settings.collectors.flows
        self.meter = FlowMeter(flows.idle_timeout, flows.active_timeout, max_flows=flows.max_flows)
        self.detectors = build_detectors(settings)
        self.packet_detectors = build_packet_detectors(settings)
        self.sink = AlertSink(settings, store)
        self.protocols = ProtocolExtractor.from_dict(protocol_settings(settings))
        self.events = EventPipeline(settings, self.sink, store_events=store_events)
        self.report = ReplayReport()
        self._flow_events_written = 0

    def run(self, paths: Sequence[str | Path]) -> ReplayReport:
        for path in paths:
            self.feed(Path(path))
        return self.finish()

    def finish(self) -> ReplayReport:
        """End of input: expire every flow, close every detector window, flush pending protocol events."""
        self._flows(self.meter.flush())
        detectors: list[FlowDetector | PacketDetector] = [*self.detectors, *self.packet_detectors]
        self.sink.emit([alert for detector in detectors for alert in detector.flush()])
        self.events.feed(self.protocols.finish())
        self.events.flush()
        return self._report()

    def feed(self, path: Path) -> FileReport:
        """One more capture file of the same stream (flows continue across files, as in a capture ring)."""
        file_report = FileReport(path)
        self.report.files.append(file_report)
        reader = CaptureReader(path, chunk_packets=self.settings.collectors.packets.chunk_packets)
        try:
            for batch in reader:
                self._flows(self.meter.update(batch))
                self.sink.emit([alert for detector in self.packet_detectors
                                for alert in detector.observe_packets(batch)])
                self.events.feed(self.protocols.process(batch))
                if self.progress is not None:
                    last = len(batch) - 1
                    self.progress(path, int(batch.data_offset[last] + batch.caplen[last]), reader.size)
        except CaptureError as exc:
            file_report.error = exc
        self.events.flush()  # alerts found before any damage are stored now
        file_report.error = file_report.error or reader.error
        file_report.packets = reader.stats.packets
        file_report.by_status = reader.stats.by_status
        self._report()
        return file_report

    def _flows(self, flows: FlowBatch) -> None:
        self.report.flows += len(flows)
        self.events.coverage.observe_flows(flows)
        self.events.coverage.flush()
        if self.store_events and len(flows):
            self._flow_events_written += self.store.write_events(flow_events(flows))
        self.sink.emit([alert for detector in self.detectors for alert in detector.observe(flows)])

    def _report(self) -> ReplayReport:
        self.report.alerts = self.sink.alerts
        self.report.playbook_runs = self.sink.playbook_runs
        self.report.events_written = self._flow_events_written + self.events.counts["stored"]
        return self.report
