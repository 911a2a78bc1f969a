"""Replaying captures through the engine for the lab: the engine as `soc replay` runs it, with an observer that
paces the replay at real or scaled time, keeps the flows, and records each alert as its detector raised it (before
grouping) with when, in capture time, it came out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from soc.core.config import Settings
from soc.core.model import Alert, FlowBatch, PacketBatch
from soc.core.plugins import Observer, Output
from soc.engine.engine import Engine, EngineReport
from soc.engine.plugins import build_observers
from soc.engine.sources import CaptureFiles, run_to_end
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
class LabRecorder(Observer):
    """The lab's observer: paces packets, keeps flows, and records the detectors' alerts with the capture clock
    (``detected_ns[alert id]``: time of the newest packet read when the alert came out)."""

    pace: Pace | None = None
    keep_flows: bool = False
    engine: Engine | None = None
    flows: list[FlowBatch] = field(default_factory=list)
    raw_alerts: list[Alert] = field(default_factory=list)
    detected_ns: dict[str, int] = field(default_factory=dict)

    def on_packets(self, batch: PacketBatch) -> Output:
        if self.pace is not None and len(batch):
            self.pace.wait(int(batch.ts_ns[0]))
        return ()

    def on_flows(self, flows: FlowBatch) -> Output:
        if self.keep_flows:
            self.flows.append(flows)
        return ()

    def on_alerts(self, alerts: list[Alert]) -> Output:
        now = self.engine.clock_ns if self.engine is not None else 0
        for alert in alerts:
            self.raw_alerts.append(alert)
            self.detected_ns.setdefault(alert.id, now)
        return ()


@dataclass(slots=True)
class LabRun:
    report: EngineReport
    recorder: LabRecorder

    @property
    def raw_alerts(self) -> list[Alert]:
        return self.recorder.raw_alerts

    @property
    def detected_ns(self) -> dict[str, int]:
        return self.recorder.detected_ns


def replay(paths: Sequence[Path], settings: Settings, store: AlertStore, speed: float | None = None,
           keep_flows: bool = False, extra_observers: Sequence[Observer] = ()) -> LabRun:
    """Run ``paths`` (one stream) through the engine with every configured observer plus ``extra_observers``."""
    settings = with_small_batches(settings) if speed else settings
    recorder = LabRecorder(Pace(speed) if speed else None, keep_flows=keep_flows)
    engine = Engine(settings, store, observers=[recorder, *build_observers(settings), *extra_observers])
    recorder.engine = engine
    report = run_to_end(engine, [CaptureFiles(paths)])
    return LabRun(report, recorder)


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
