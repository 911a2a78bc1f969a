"""Beaconing: one of our hosts connecting to the same internet service again and again at a steady interval
with requests of the same size: malware checking in with its command server.

Per (host, outside address, port, transport) in a window: at least ``min_connections`` connections; their
intervals within ``max_jitter`` of their median (median absolute deviation over median, so one missed beat does
not hide a beacon); few of our hosts talking to that service (a popular site is not a command server); request
sizes all within a few percent (a range: a median deviation of three random sizes can be tiny by chance); reply
sizes alike. Services periodic by design (NTP, DNS) are ignored by port. Thresholds and the window are in
``detectors.beacon`` of soc.yaml.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from collectors.flows.events import transport_name
from detectors.network.timewindows import (
    NS,
    Columns,
    Finding,
    PerimeterSettings,
    WindowedFlowDetector,
    distinct_per_group,
    group_rows,
    in_networks,
    ip_words,
    sample_flows,
)
from soc.core.model import FlowBatch, Rule, Severity, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-beacon",
    name="Periodic beaconing",
    ruleset="soc-network",
    description="A host connected to one internet service at a steady interval with alike requests.",
    reference="https://attack.mitre.org/techniques/T1071/001/",
)
TECHNIQUE = Technique("T1071", "Application Layer Protocol", "TA0011", "Command and Control")


class BeaconSettings(PerimeterSettings):
    window_seconds: float = Field(3600.0, gt=0)
    min_connections: int = Field(3, ge=3, description="connections to one service that can show a rhythm")
    min_interval_seconds: float = Field(5.0, gt=0, description="faster repetition is a busy client, not a beacon")
    max_jitter: float = Field(0.35, ge=0, description="median absolute deviation of the intervals over their median")
    max_size_spread: float = Field(0.05, ge=0, description="range of the request (initiator payload) sizes over "
                                   "their median: an implant sends the same check-in every time")
    max_reply_spread: float = Field(0.25, ge=0, description="the same over the reply sizes (most answers are "
                                    "'nothing to do'; a median, so an occasional tasking does not hide it)")
    max_peers: int = Field(3, ge=1, description="internal hosts that may talk to the service in the window: a "
                           "command server has few clients, a popular site many")
    ignore_ports: list[int] = Field(default_factory=lambda: [53, 123], description="periodic by design")


def rhythm(times_ns: np.ndarray) -> tuple[float, float]:
    """(median interval in seconds, jitter) of sorted connection times."""
    intervals = np.diff(times_ns).astype(np.float64) / NS
    median = float(np.median(intervals))
    return median, float(np.median(np.abs(intervals - median))) / median if median > 0 else float("inf")


def spread(values: np.ndarray) -> float:
    median = float(np.median(values))
    return float(np.median(np.abs(values - median))) / median if median > 0 else float("inf")


@plugin("beacon", settings=BeaconSettings)
class BeaconDetector(WindowedFlowDetector):
    rule, technique = RULE, TECHNIQUE
    columns = ("payload_bytes_fwd", "payload_bytes_bwd")
    settings: BeaconSettings

    def __init__(self, settings: BeaconSettings | None = None) -> None:
        super().__init__(settings or BeaconSettings())

    def select(self, flows: FlowBatch) -> np.ndarray:
        inside = self.settings.internal_networks
        return (in_networks(flows.src_ip, inside) & ~in_networks(flows.dst_ip, inside)
                & ~np.isin(flows.dst_port, np.array(self.settings.ignore_ports, dtype=np.uint16))
                & (flows.payload_bytes_fwd > 0))

    def judge(self, columns: Columns) -> list[Finding]:
        s = self.settings
        first, groups = group_rows(ip_words(columns["src_ip"]), ip_words(columns["dst_ip"]), columns["dst_port"],
                                   columns["protocol"])
        counts = np.bincount(groups, minlength=len(first))
        service_first, services = group_rows(ip_words(columns["dst_ip"]), columns["dst_port"], columns["protocol"])
        peers = distinct_per_group(services, len(service_first), ip_words(columns["src_ip"]))[services]
        findings = []
        for g in np.flatnonzero(counts >= s.min_connections).tolist():
            if peers[first[g]] > s.max_peers:
                continue
            rows = np.flatnonzero(groups == g)
            rows = rows[np.argsort(columns["first_ts_ns"][rows], kind="stable")]
            interval, jitter = rhythm(columns["first_ts_ns"][rows])
            requests = columns["payload_bytes_fwd"][rows].astype(np.float64)
            size_spread = float(np.ptp(requests) / np.median(requests))
            reply_spread = spread(columns["payload_bytes_bwd"][rows].astype(np.float64))
            if (interval < s.min_interval_seconds or jitter > s.max_jitter or size_spread > s.max_size_spread
                    or reply_spread > s.max_reply_spread):
                continue
            i = int(rows[0])
            host, server = ip_to_str(columns["src_ip"][i]), ip_to_str(columns["dst_ip"][i])
            port, proto = int(columns["dst_port"][i]), transport_name(int(columns["protocol"][i]))
            findings.append(Finding(
                subject=host, source=host, destination=server,
                severity=Severity.HIGH if len(rows) >= 2 * s.min_connections else Severity.MEDIUM,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{host} connected to {server}:{port}/{proto} {len(rows)} times every {interval:.1f} s "
                         f"(jitter {jitter:.2f}, request size spread {size_spread:.2f})"),
                ecs={"destination": {"port": port}},
                evidence={"connections": len(rows), "interval_seconds": round(interval, 3),
                          "jitter": round(jitter, 4), "request_size_spread": round(size_spread, 4),
                          "reply_size_spread": round(reply_spread, 4),
                          "flows": sample_flows(columns, rows)},
            ))
        return findings
