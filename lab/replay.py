"""Replaying captures through the pipeline for the lab: the pipeline's own replay, with optional pacing at real
or scaled time, and a record of when (in capture time) each alert came out.

A tap standing in for the flow meter sees each batch first (for pacing and the capture clock), so the pipeline's
reading loop is used as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collectors.flows import FlowMeter
from soc.core.config import Settings
from soc.core.model import Alert, FlowBatch, PacketBatch
from soc.pipeline import Replay
from soc.sink import AlertSink
from soc.store.base import AlertStore

_NS = 1_000_000_000


def with_small_batches(settings: Settings) -> Settings:
    """The settings with the smallest read batches: pacing and detection times are then measured per ~1k packets
    rather than per capture."""
    packets = settings.collectors.packets.model_copy(update={"chunk_packets": 1024})
    return settings.model_copy(update={"collectors": settings.collectors.model_copy(update={"packets": packets})})


@dataclass(slots=True)
class Pace:
    """Sleeps so that capture time advances ``speed`` times faster than the wall clock (1.0: real time)."""

    speed: float
    _origin: tuple[float, int] | None = None

    def wait(self, ts_ns: int) -> None:
        if self._origin is None:
            self._origin = (time.monotonic(), ts_ns)
            return
        wall, first = self._origin
        delay = wall + (ts_ns - first) / _NS / self.speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class _PacketTap:
    """Stands in for the flow meter: paces the replay and keeps the capture clock."""

    meter: FlowMeter
    pace: Pace | None = None
    now_ns: int = 0
    flows: list[FlowBatch] = field(default_factory=list)
    keep_flows: bool = False

    def update(self, batch: PacketBatch) -> FlowBatch:
        if len(batch):
            if self.pace is not None:
                self.pace.wait(int(batch.ts_ns[0]))
            self.now_ns = max(self.now_ns, int(batch.ts_ns.max()))
        return self._kept(self.meter.update(batch))

    def flush(self) -> FlowBatch:
        return self._kept(self.meter.flush())

    def _kept(self, flows: FlowBatch) -> FlowBatch:
        if self.keep_flows and len(flows):
            self.flows.append(flows)
        return flows


class LabReplay(Replay):
    """The pipeline's replay with packet detectors, pacing, the raw detector alerts and their detection times
    (``detected_ns[alert id]``: capture time of the newest packet read when the alert came out)."""

    def __init__(self, settings: Settings, store: AlertStore, speed: float | None = None, keep_flows: bool = False,
                 extra_detectors: Sequence[object] = ()) -> None:
        super().__init__(settings, store)
        self.detectors.extend(extra_detectors)  # type: ignore[arg-type]
        self.sink = _RecordingSink(self.sink, self._record)  # type: ignore[assignment]
        self.tap = _PacketTap(self.meter, Pace(speed) if speed else None, keep_flows=keep_flows)
        self.meter = self.tap  # type: ignore[assignment]
        self.raw_alerts: list[Alert] = []
        self.detected_ns: dict[str, int] = {}

    def _record(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.raw_alerts.append(alert)
            self.detected_ns.setdefault(alert.id, self.tap.now_ns)


class _RecordingSink:
    """The pipeline's alert sink, recording the detectors' alerts as they come out (before grouping)."""

    def __init__(self, sink: AlertSink, record: Callable[[list[Alert]], None]) -> None:
        self._sink = sink
        self._record = record

    def emit(self, alerts: list[Alert]) -> None:
        self._record(alerts)
        self._sink.emit(alerts)

    def __getattr__(self, name: str) -> object:
        return getattr(self._sink, name)


def replay(paths: Sequence[Path], settings: Settings, store: AlertStore, speed: float | None = None) -> LabReplay:
    """Run ``paths`` (one stream) through the pipeline; the finished replay holds report and alerts."""
    lab = LabReplay(with_small_batches(settings) if speed else settings, store, speed=speed)
    lab.run(paths)
    return lab


def replay_onto_interface(path: Path, interface: str, speed: float = 1.0) -> int:
    """Send a capture's frames out of ``interface`` (e.g. a veth in a test namespace) at scaled time, for tests
    of live capture; returns the frames sent. Needs CAP_NET_RAW."""
    from scapy.sendrecv import sendp
    from scapy.utils import PcapReader  # reads pcap and pcapng

    pace, sent = Pace(speed), 0
    with PcapReader(str(path)) as reader:
        for packet in reader:
            pace.wait(int(packet.time * _NS))
            sendp(packet, iface=interface, verbose=False)
            sent += 1
    return sent
