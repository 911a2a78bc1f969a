"""Exfiltration: one of our hosts sending far more to the internet within a window than it normally does.

Outbound volume is what a host sends on the connections it opens to outside addresses (bytes initiator →
responder); answers our servers give to internet clients are not counted (a web portal serves a lot). The normal
volume of each host is learned as it runs (an exponentially weighted mean of its earlier windows); a window is
reported when it passes both an absolute floor and a multiple of that baseline.
Thresholds and the window are in ``detectors.exfiltration`` of soc.yaml.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from detectors.network.timewindows import (
    SAMPLE,
    Columns,
    Finding,
    PerimeterSettings,
    WindowedFlowDetector,
    group_rows,
    in_networks,
    ip_words,
    sample_flows,
    sorted_ips,
)
from soc.core.model import FlowBatch, Rule, Severity, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-exfiltration",
    name="Large outbound transfer",
    ruleset="soc-network",
    description="A host sent far more to internet addresses within a window than its own baseline.",
    reference="https://attack.mitre.org/techniques/T1048/",
)
TECHNIQUE = Technique("T1048", "Exfiltration Over Alternative Protocol", "TA0010", "Exfiltration")


class ExfiltrationSettings(PerimeterSettings):
    window_seconds: float = Field(300.0, gt=0)
    min_bytes: int = Field(10_000_000, ge=1, description="outbound bytes in a window below which nothing is reported")
    baseline_factor: float = Field(10.0, gt=1, description="how many times its usual volume a host must send")
    baseline_weight: float = Field(0.1, gt=0, le=1, description="weight of each new window in the baseline")


@plugin("exfiltration", settings=ExfiltrationSettings)
class ExfiltrationDetector(WindowedFlowDetector):
    rule, technique = RULE, TECHNIQUE
    columns = ("bytes_fwd",)
    settings: ExfiltrationSettings

    def __init__(self, settings: ExfiltrationSettings | None = None) -> None:
        super().__init__(settings or ExfiltrationSettings())
        self.baseline: dict[str, float] = {}  # host → usual outbound bytes per window

    def select(self, flows: FlowBatch) -> np.ndarray:
        inside = self.settings.internal_networks
        return in_networks(flows.src_ip, inside) & ~in_networks(flows.dst_ip, inside) & (flows.bytes_fwd > 0)

    def judge(self, columns: Columns) -> list[Finding]:
        s = self.settings
        first, groups = group_rows(ip_words(columns["src_ip"]))
        totals = np.bincount(groups, weights=columns["bytes_fwd"].astype(np.float64), minlength=len(first))
        findings = []
        for g in range(len(first)):
            host, sent = ip_to_str(columns["src_ip"][first[g]]), float(totals[g])
            usual = self.baseline.get(host)
            self.baseline[host] = sent if usual is None else (1 - s.baseline_weight) * usual + s.baseline_weight * sent
            if sent < s.min_bytes or (usual is not None and sent < s.baseline_factor * usual):
                continue
            rows = np.flatnonzero(groups == g)
            rows = rows[np.argsort(-columns["bytes_fwd"][rows].astype(np.int64), kind="stable")]
            destinations = sorted_ips(columns["dst_ip"][rows])
            top = ip_to_str(columns["dst_ip"][rows[0]])
            findings.append(Finding(
                subject=host, source=host, destination=top, related=destinations[:SAMPLE],
                severity=Severity.HIGH if sent >= 10 * s.min_bytes else Severity.MEDIUM,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{host} sent {sent / 1e6:.1f} MB to {len(destinations)} internet address(es) within "
                         f"{s.window_seconds:g} s (most to {top}; usual "
                         + ("unknown" if usual is None else f"{usual / 1e6:.2f} MB") + ")"),
                evidence={"bytes_out": int(sent), "baseline_bytes": None if usual is None else round(usual),
                          "destinations": destinations[:SAMPLE], "flows": sample_flows(columns, rows),
                          "flow_bytes": columns["bytes_fwd"][rows[:SAMPLE]].astype(np.int64).tolist()},
            ))
        return findings
