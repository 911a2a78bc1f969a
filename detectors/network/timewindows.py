"""What the windowed network detectors share: buffering selected flow columns per time bucket until the bucket is
final, grouping rows by address with numpy, and the alert they all build.

A bucket is final once flows that started in it can no longer be pending in the flow meter: one more window of
slack past its end (the rule the port-scan detector follows too).
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from collectors.flows.events import transport_name
from detectors.base import FlowDetector
from soc.core.model import Alert, FlowBatch, Rule, Severity, Technique, ip_to_str, ns_to_iso
from soc.core.plugins import PluginSettings

NS = 1_000_000_000
SAMPLE = 20  # evidence lists keep this many items
Columns = dict[str, np.ndarray]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PRIVATE_NETWORKS: list[IpNetwork] = [ipaddress.ip_network(n) for n in
                                     ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


class WindowSettings(PluginSettings):
    """Settings every windowed detector has."""

    window_seconds: float = Field(60.0, gt=0, description="length of the counting window")
    ignore_sources: list[IpNetwork] = Field(default_factory=list,
                                            description="sources never reported (our own scanners, jump hosts)")


class PerimeterSettings(WindowSettings):
    """Settings of detectors that tell our addresses from the rest."""

    internal_networks: list[IpNetwork] = Field(default_factory=lambda: list(PRIVATE_NETWORKS),
                                               description="our own address ranges (the rest is the internet)")


@dataclass(slots=True)
class FlowWindows:
    """Selected flow rows (a few named columns each) kept per bucket of ``first_ts_ns // window``."""

    window_ns: int
    watermark: int = 0
    _buckets: dict[int, list[Columns]] = field(default_factory=dict)

    def add(self, columns: Columns, seen_until: int) -> None:
        """``columns`` must hold ``first_ts_ns``; ``seen_until`` is the newest time of the batch they came from."""
        self.watermark = max(self.watermark, seen_until)
        if not len(columns["first_ts_ns"]):
            return
        buckets = columns["first_ts_ns"] // self.window_ns
        for bucket in np.unique(buckets).tolist():
            rows = buckets == bucket
            self._buckets.setdefault(bucket, []).append({k: v[rows] for k, v in columns.items()})

    def closed(self) -> list[tuple[int, Columns]]:
        done = [b for b in self._buckets if (b + 2) * self.window_ns < self.watermark]
        return self._take(done)

    def flush(self) -> list[tuple[int, Columns]]:
        return self._take(list(self._buckets))

    def _take(self, buckets: list[int]) -> list[tuple[int, Columns]]:
        out = []
        for bucket in sorted(buckets):
            parts = self._buckets.pop(bucket)
            out.append((bucket, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}))
        return out


def flow_columns(flows: FlowBatch, rows: np.ndarray, extra: Sequence[str] = ()) -> Columns:
    """The columns every detector's evidence needs, for the selected ``rows``, plus ``extra`` FlowBatch fields."""
    names = ("first_ts_ns", "last_ts_ns", "src_ip", "dst_ip", "src_port", "dst_port", "protocol", *extra)
    return {name: getattr(flows, name)[rows] for name in names}


def ip_words(addresses: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 addresses to (n, 2) uint64, so numpy can sort and group them."""
    return np.ascontiguousarray(addresses).view(">u8").reshape(-1, 2).astype(np.uint64)


def group_rows(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by the concatenated ``keys`` (each (n,) or (n, k)): (index of a first row per group, group of
    every row)."""
    if not len(keys[0]):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    table = np.column_stack([k.reshape(len(k), -1).astype(np.uint64) for k in keys])
    _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def distinct_per_group(groups: np.ndarray, n_groups: int, *values: np.ndarray) -> np.ndarray:
    """How many distinct ``values`` (rows of the concatenated arrays) each group has."""
    first, _ = group_rows(groups.astype(np.uint64), *values)
    return np.bincount(groups[first], minlength=n_groups)


def in_networks(addresses: np.ndarray, networks: Sequence[IpNetwork]) -> np.ndarray:
    """Boolean mask: which (n, 16) addresses fall in any of ``networks`` (IPv4 as IPv4-mapped)."""
    words = ip_words(addresses)
    mask = np.zeros(len(addresses), dtype=bool)
    for network in networks:
        if network.version == 4:
            net = ipaddress.IPv6Network(f"::ffff:{network.network_address}/{96 + network.prefixlen}")
        else:
            net = network
        high, low = divmod(int(net.network_address), 1 << 64)
        bits = net.prefixlen
        mask_high = ((1 << 64) - 1) ^ ((1 << max(0, 64 - bits)) - 1) if bits else 0
        mask_low = ((1 << 64) - 1) ^ ((1 << max(0, 128 - bits)) - 1) if bits > 64 else 0
        mask |= ((words[:, 0] & np.uint64(mask_high)) == np.uint64(high)) & (
            (words[:, 1] & np.uint64(mask_low)) == np.uint64(low & mask_low))
    return mask


def flow_text(columns: Columns, i: int) -> str:
    """One flow as the labels and every detector's evidence write it."""
    return (f"{ip_to_str(columns['src_ip'][i])}:{int(columns['src_port'][i])}->"
            f"{ip_to_str(columns['dst_ip'][i])}:{int(columns['dst_port'][i])}/"
            f"{transport_name(int(columns['protocol'][i]))}")


@dataclass(slots=True)
class Finding:
    """One detection before it becomes an Alert: who, whom, when, what was counted."""

    subject: str
    message: str
    severity: Severity
    first_ns: int
    last_ns: int
    count: int
    evidence: dict[str, Any]
    source: str | None = None
    destination: str | None = None
    related: list[str] = field(default_factory=list)
    ecs: dict[str, Any] = field(default_factory=dict)


def make_alert(rule: Rule, technique: Technique | None, bucket: int, finding: Finding) -> Alert:
    ecs: dict[str, Any] = {"event": {"category": ["network", "intrusion_detection"], "type": ["info"]}, **finding.ecs}
    if finding.source:
        ecs.setdefault("source", {})["ip"] = finding.source
    if finding.destination:
        ecs.setdefault("destination", {})["ip"] = finding.destination
    related = [ip for ip in (finding.source, finding.destination, *finding.related) if ip]
    if related:
        ecs["related"] = {"ip": list(dict.fromkeys(related))[:SAMPLE + 2]}
    return Alert(rule=rule, severity=finding.severity, group_key=finding.subject, time_bucket=bucket,
                 first_seen=ns_to_iso(finding.first_ns), last_seen=ns_to_iso(finding.last_ns), message=finding.message,
                 techniques=[technique] if technique else [], ecs=ecs, evidence=finding.evidence, count=finding.count)


def sample_flows(columns: Columns, rows: np.ndarray) -> list[str]:
    return [flow_text(columns, int(i)) for i in rows[:SAMPLE]]


def sorted_ips(addresses: np.ndarray) -> list[str]:
    """Distinct addresses of an (n, 16) array, as text, in numeric order."""
    if not len(addresses):
        return []
    unique = np.unique(ip_words(addresses), axis=0)
    return [ip_to_str(np.array([int(h), int(lo)], dtype=">u8").view(np.uint8)) for h, lo in unique.tolist()]


class WindowJudge(ABC):
    """Selected rows buffered per window (``self.windows``), each window judged once final, as alerts of
    ``rule``: what flow and packet detectors share. Subclasses say what a final window means (:meth:`judge`)."""

    rule: ClassVar[Rule]
    technique: ClassVar[Technique | None]
    windows: FlowWindows

    def flush(self) -> list[Alert]:
        return self._alerts(self.windows.flush())

    def _alerts(self, buckets: list[tuple[int, Columns]]) -> list[Alert]:
        return [make_alert(self.rule, self.technique, bucket, finding)
                for bucket, columns in buckets if len(columns["first_ts_ns"])
                for finding in self.judge(columns)]

    @abstractmethod
    def judge(self, columns: Columns) -> list[Finding]:
        """The findings of one final window (its selected rows)."""


class WindowedFlowDetector(WindowJudge, FlowDetector):
    """A flow detector that selects some flows, buffers them per window and judges each window once final.

    Subclasses say which flows count (:meth:`select`), which extra columns they keep (``columns``) and what a
    final window means (:meth:`judge`).
    """

    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: WindowSettings) -> None:
        self.settings = settings
        self.rule_id = self.rule.id
        self.windows = FlowWindows(int(settings.window_seconds * NS))

    def observe(self, flows: FlowBatch) -> list[Alert]:
        if len(flows):
            rows = self.select(flows)
            if self.settings.ignore_sources:
                rows &= ~in_networks(flows.src_ip, self.settings.ignore_sources)
            index = np.flatnonzero(rows)
            columns = flow_columns(flows, index, self.columns)
            columns.update(self.extra_columns(flows, index))
            self.windows.add(columns, int(flows.last_ts_ns.max()))
        return self._alerts(self.windows.closed())

    @abstractmethod
    def select(self, flows: FlowBatch) -> np.ndarray:
        """Boolean mask of the flows this detector counts."""

    def extra_columns(self, flows: FlowBatch, rows: np.ndarray) -> Columns:
        """Columns computed by the detector for the selected ``rows`` (scores, ...), kept with them."""
        return {}
