"""Floods: one destination receiving more half-open TCP connections, or more unanswered UDP, than any service
asks for within a short window (SYN floods, UDP floods, reflection/amplification, DHCP starvation).

A *half-open* flow here is a TCP flow whose initiator sent SYN and never ACK: a spoofed or abandoned handshake.
An *unanswered UDP* flow got no datagram back; amplification shows as large ones coming from a service port.
Thresholds and the window are in ``detectors.flood`` of soc.yaml.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from detectors.network.timewindows import (
    SAMPLE,
    Columns,
    Finding,
    WindowedFlowDetector,
    WindowSettings,
    distinct_per_group,
    group_rows,
    ip_words,
    sample_flows,
    sorted_ips,
)
from soc.core.model import FlowBatch, Rule, Severity, TcpFlag, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-flood",
    name="Network flood",
    ruleset="soc-network",
    description="One destination received a flood of half-open TCP connections or unanswered UDP within a window.",
    reference="https://attack.mitre.org/techniques/T1498/",
)
TECHNIQUE = Technique("T1498", "Network Denial of Service", "TA0040", "Impact")
_DHCP_SERVER = 67


class FloodSettings(WindowSettings):
    window_seconds: float = Field(10.0, gt=0)
    min_half_open: int = Field(500, ge=1, description="half-open TCP connections to one port of one host that make "
                               "a SYN flood (a scan spreads its probes over ports instead)")
    min_udp_packets: int = Field(400, ge=1, description="unanswered UDP datagrams to one host that make a flood")
    min_udp_bytes: int = Field(1_000_000, ge=1, description="unanswered UDP bytes to one host that make a flood")
    min_dhcp_requests: int = Field(100, ge=1, description="DHCP client messages on the segment that make a flood "
                                   "(answered or not: starvation tools take every lease they are offered)")


@plugin("flood", settings=FloodSettings)
class FloodDetector(WindowedFlowDetector):
    rule, technique = RULE, TECHNIQUE
    columns = ("packets_fwd", "bytes_fwd", "tcp_flags_fwd")
    settings: FloodSettings

    def __init__(self, settings: FloodSettings | None = None) -> None:
        super().__init__(settings or FloodSettings())

    def select(self, flows: FlowBatch) -> np.ndarray:
        fwd = flows.tcp_flags_fwd.astype(np.int64)
        half_open = (flows.protocol == 6) & ((fwd & int(TcpFlag.SYN)) != 0) & ((fwd & int(TcpFlag.ACK)) == 0)
        udp = flows.protocol == 17
        return half_open | (udp & (flows.packets_bwd == 0)) | (udp & (flows.dst_port == _DHCP_SERVER))

    def judge(self, columns: Columns) -> list[Finding]:
        dhcp = (columns["protocol"] == 17) & (columns["dst_port"] == _DHCP_SERVER)
        findings = self._dhcp(columns, np.flatnonzero(dhcp))
        return findings + self._per_victim({k: v[~dhcp] for k, v in columns.items()})

    def _dhcp(self, columns: Columns, rows: np.ndarray) -> list[Finding]:
        """DHCP floods hit the segment, not one host: clients broadcast, and any server may answer."""
        messages = int(columns["packets_fwd"][rows].sum())
        if messages < self.settings.min_dhcp_requests:
            return []
        servers, clients = sorted_ips(columns["dst_ip"][rows]), sorted_ips(columns["src_ip"][rows])
        return [Finding(
            subject=f"dhcp:{servers[0]}", destination=servers[0] if len(servers) == 1 else None,
            related=servers[:SAMPLE] + clients[:SAMPLE], severity=Severity.HIGH,
            first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
            count=messages,
            message=(f"DHCP flood within {self.settings.window_seconds:g} s: {messages} client messages from "
                     f"{len(clients)} address(es) to {len(servers)} server address(es)"),
            evidence={"flood_types": ["DHCP"], "dhcp_messages": messages, "distinct_sources": len(clients),
                      "servers": servers[:SAMPLE], "flows": sample_flows(columns, rows)},
        )]

    def _per_victim(self, columns: Columns) -> list[Finding]:
        s = self.settings
        if not len(columns["first_ts_ns"]):
            return []
        first, groups = group_rows(ip_words(columns["dst_ip"]))
        n = len(first)
        tcp = columns["protocol"] == 6
        half_open = np.bincount(groups, weights=tcp, minlength=n).astype(np.int64)
        port_first, port_groups = group_rows(groups.astype(np.uint64), columns["dst_port"])
        per_port = np.bincount(port_groups, weights=tcp, minlength=len(port_first))
        busiest_port = np.zeros(n)
        np.maximum.at(busiest_port, groups[port_first], per_port)
        udp_packets = np.bincount(groups, weights=np.where(tcp, 0, columns["packets_fwd"]), minlength=n)
        udp_bytes = np.bincount(groups, weights=np.where(tcp, 0, columns["bytes_fwd"]), minlength=n)
        sources = distinct_per_group(groups, n, ip_words(columns["src_ip"]))
        syn_flood = busiest_port >= s.min_half_open
        udp_flood = (udp_packets >= s.min_udp_packets) | (udp_bytes >= s.min_udp_bytes)
        findings = []
        for g in np.flatnonzero(syn_flood | udp_flood).tolist():
            rows = np.flatnonzero(groups == g)
            victim = ip_to_str(columns["dst_ip"][first[g]])
            kinds = [k for k, hit in (("SYN", syn_flood[g]), ("UDP", udp_flood[g])) if hit]
            ports = np.unique(columns["dst_port"][rows])
            from_ports = np.unique(columns["src_port"][rows][~tcp[rows]])
            top = max(busiest_port[g] / s.min_half_open, udp_packets[g] / s.min_udp_packets,
                      udp_bytes[g] / s.min_udp_bytes)
            findings.append(Finding(
                subject=victim, destination=victim,
                severity=Severity.CRITICAL if top >= 10 else Severity.HIGH,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{victim} flooded within {s.window_seconds:g} s ({' and '.join(kinds)}): "
                         f"{half_open[g]} half-open TCP connections, {int(udp_packets[g])} unanswered UDP datagrams "
                         f"({int(udp_bytes[g])} bytes) from {sources[g]} source(s)"),
                evidence={"flood_types": kinds, "half_open_flows": int(half_open[g]),
                          "udp_packets": int(udp_packets[g]), "udp_bytes": int(udp_bytes[g]),
                          "distinct_sources": int(sources[g]), "ports": ports[:20].tolist(),
                          "udp_source_ports": from_ports[:20].tolist(), "flows": sample_flows(columns, rows)},
            ))
        return findings
