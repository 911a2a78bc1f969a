"""Lateral movement: one of our hosts logging on to many of our other hosts over remote-administration services
(SMB, RPC, RDP, SSH, WinRM) within a window.

Only sessions that worked count (handshake completed, data both ways): failed probes are the port-scan
detector's. Jump hosts and management servers that do this by design go in ``ignore_sources``.
Thresholds and the window are in ``detectors.lateral`` of soc.yaml.
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
    distinct_per_group,
    group_rows,
    in_networks,
    ip_words,
    sample_flows,
    sorted_ips,
)
from soc.core.model import FlowBatch, Rule, Severity, TcpFlag, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-lateral",
    name="Lateral movement",
    ruleset="soc-network",
    description="A host opened remote-administration sessions to many internal hosts within a window.",
    reference="https://attack.mitre.org/techniques/T1021/",
)
TECHNIQUE = Technique("T1021", "Remote Services", "TA0008", "Lateral Movement")
ADMIN_PORTS = {22: "ssh", 135: "msrpc", 445: "smb", 3389: "rdp", 5985: "winrm", 5986: "winrm"}


class LateralSettings(PerimeterSettings):
    window_seconds: float = Field(300.0, gt=0)
    ports: list[int] = Field(default_factory=lambda: sorted(ADMIN_PORTS), description="remote-administration ports")
    min_hosts: int = Field(8, ge=2, description="internal hosts one source logs on to that make lateral movement")


@plugin("lateral", settings=LateralSettings)
class LateralMovementDetector(WindowedFlowDetector):
    rule, technique = RULE, TECHNIQUE
    settings: LateralSettings

    def __init__(self, settings: LateralSettings | None = None) -> None:
        super().__init__(settings or LateralSettings())

    def select(self, flows: FlowBatch) -> np.ndarray:
        inside = self.settings.internal_networks
        synack = int(TcpFlag.SYN | TcpFlag.ACK)
        established = (flows.tcp_flags_bwd.astype(np.int64) & synack) == synack
        return ((flows.protocol == 6) & np.isin(flows.dst_port, np.array(self.settings.ports, dtype=np.uint16))
                & established & (flows.payload_bytes_fwd > 0) & (flows.payload_bytes_bwd > 0)
                & in_networks(flows.src_ip, inside) & in_networks(flows.dst_ip, inside))

    def judge(self, columns: Columns) -> list[Finding]:
        s = self.settings
        first, groups = group_rows(ip_words(columns["src_ip"]))
        hosts = distinct_per_group(groups, len(first), ip_words(columns["dst_ip"]))
        findings = []
        for g in np.flatnonzero(hosts >= s.min_hosts).tolist():
            rows = np.flatnonzero(groups == g)
            source = ip_to_str(columns["src_ip"][first[g]])
            targets = sorted_ips(columns["dst_ip"][rows])
            services = sorted({ADMIN_PORTS.get(int(p), str(int(p))) for p in columns["dst_port"][rows]})
            findings.append(Finding(
                subject=source, source=source, related=targets[:SAMPLE],
                severity=Severity.HIGH if len(targets) >= 2 * s.min_hosts else Severity.MEDIUM,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{source} opened {len(rows)} remote-administration session(s) ({', '.join(services)}) to "
                         f"{len(targets)} internal hosts within {s.window_seconds:g} s"),
                evidence={"distinct_hosts": len(targets), "sessions": len(rows), "services": services,
                          "hosts": targets[:SAMPLE], "flows": sample_flows(columns, rows)},
            ))
        return findings
