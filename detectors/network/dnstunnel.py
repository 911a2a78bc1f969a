"""DNS tunnelling: one client sending many queries whose names carry data: long, high-entropy labels.

Each query is scored on its own (length of the name below its last two labels, the longest label, the Shannon
entropy of those characters); a client whose suspicious queries in a window pass a count is reported with the
domains they went to. Grouping by client rather than by domain also catches tools that query bare encoded names
(dnscat2 without a domain). Reads query names from the packets (flows do not keep them) with the DNS parser of
``collectors.protocols``. Thresholds and the window are in ``detectors.dns_tunnel`` of soc.yaml.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np
from pydantic import Field

from collectors.protocols.base import Malformed
from collectors.protocols.dns import read_name
from detectors.base import PacketDetector
from detectors.network.timewindows import (
    NS,
    SAMPLE,
    Columns,
    Finding,
    FlowWindows,
    WindowJudge,
    WindowSettings,
    group_rows,
    in_networks,
    ip_words,
    sample_flows,
    sorted_ips,
)
from soc.core.model import Alert, DecodeStatus, PacketBatch, Rule, Severity, Technique, ip_to_str
from soc.core.plugins import plugin

log = logging.getLogger("detectors.network.dnstunnel")

RULE = Rule(
    id="soc-net-dns-tunnel",
    name="DNS tunnelling",
    ruleset="soc-network",
    description="One client sent many DNS queries with long, high-entropy names (data carried in the names).",
    reference="https://attack.mitre.org/techniques/T1071/004/",
)
TECHNIQUE = Technique("T1071.004", "Application Layer Protocol: DNS", "TA0011", "Command and Control")
_DNS_PORT = 53
_HEADER = 12


class DnsTunnelSettings(WindowSettings):
    window_seconds: float = Field(300.0, gt=0)
    min_queries: int = Field(30, ge=1, description="suspicious queries from one client that make a tunnel")
    min_subdomain_length: int = Field(30, ge=1, description="characters below the last two labels that make a "
                                      "query suspicious")
    min_label_length: int = Field(24, ge=1, description="a label this long makes a query suspicious")
    min_entropy: float = Field(3.2, ge=0, description="bits per character of the subdomain a suspicious query "
                               "needs as well (hostnames repeat letters; encodings do not)")


def name_scores(name: str) -> tuple[int, int, float]:
    """(subdomain length, longest label, entropy of the subdomain in bits per character) of one query name."""
    labels = name.rstrip(".").split(".")
    sub = ".".join(labels[:-2]) if len(labels) > 2 else labels[0]
    letters = sub.replace(".", "")
    if not letters:
        return 0, 0, 0.0
    counts = Counter(letters)
    total = len(letters)
    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    return len(sub), max(len(label) for label in labels), entropy


@plugin("dns_tunnel", settings=DnsTunnelSettings)
class DnsTunnelDetector(WindowJudge, PacketDetector):
    rule, technique = RULE, TECHNIQUE
    rule_id = RULE.id

    def __init__(self, settings: DnsTunnelSettings | None = None) -> None:
        self.settings = settings or DnsTunnelSettings()
        self.windows = FlowWindows(int(self.settings.window_seconds * NS))
        self.skipped: Counter[str] = Counter()

    def observe_packets(self, batch: PacketBatch) -> list[Alert]:
        if not len(batch):
            return []
        rows = np.flatnonzero((batch.status == DecodeStatus.OK) & (batch.protocol == 17)
                              & (batch.dst_port == _DNS_PORT) & (batch.payload_len > 0))
        if self.settings.ignore_sources and len(rows):
            rows = rows[~in_networks(batch.src_ip[rows], self.settings.ignore_sources)]
        keep, names, scores = [], [], []
        for i in rows.tolist():
            start = int(batch.payload_offset[i])
            message = batch.buffer[start:start + int(batch.payload_len[i])].tobytes()
            try:
                if len(message) < _HEADER:
                    raise Malformed("dns.truncated", f"{len(message)} bytes, shorter than the 12-byte header")
                if message[2] & 0x80:  # an answer sent to port 53 (a resolver's reply to a resolver)
                    continue
                name, _ = read_name(message, _HEADER)
            except Malformed as exc:
                self.skipped[exc.reason] += 1
                log.warning("frame %d at byte offset %d: DNS query skipped: %s", batch.first_index + i + 1,
                            int(batch.data_offset[i]), exc)
                continue
            keep.append(i)
            names.append(name)
            scores.append(name_scores(name))
        index = np.array(keep, dtype=np.int64)
        table = np.array(scores, dtype=np.float64).reshape(-1, 3)
        s = self.settings
        suspicious = ((table[:, 0] >= s.min_subdomain_length) | (table[:, 1] >= s.min_label_length)) & (
            table[:, 2] >= s.min_entropy)
        ts = batch.ts_ns[index]
        columns: Columns = {
            "first_ts_ns": ts[suspicious], "last_ts_ns": ts[suspicious],
            "src_ip": batch.src_ip[index][suspicious], "dst_ip": batch.dst_ip[index][suspicious],
            "src_port": batch.src_port[index][suspicious], "dst_port": batch.dst_port[index][suspicious],
            "protocol": batch.protocol[index][suspicious],
            "name": np.array(names, dtype=object)[suspicious], "length": table[suspicious, 0],
            "entropy": table[suspicious, 2],
        }
        self.windows.add(columns, int(batch.ts_ns.max()))
        return self._alerts(self.windows.closed())

    def judge(self, columns: Columns) -> list[Finding]:
        s = self.settings
        first, groups = group_rows(ip_words(columns["src_ip"]))
        counts = np.bincount(groups, minlength=len(first))
        findings = []
        for g in np.flatnonzero(counts >= s.min_queries).tolist():
            rows = np.flatnonzero(groups == g)
            client = ip_to_str(columns["src_ip"][first[g]])
            names = columns["name"][rows].tolist()
            domains = Counter(".".join(n.rstrip(".").split(".")[-2:]) for n in names)
            resolvers = sorted_ips(columns["dst_ip"][rows])
            top = domains.most_common(1)[0][0]
            findings.append(Finding(
                subject=client, source=client, destination=resolvers[0] if len(resolvers) == 1 else None,
                related=resolvers[:SAMPLE],
                severity=Severity.HIGH,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{client} sent {len(rows)} DNS queries with long, high-entropy names within "
                         f"{s.window_seconds:g} s (mostly under {top}; mean subdomain "
                         f"{float(columns['length'][rows].mean()):.0f} characters)"),
                ecs={"dns": {"question": {"registered_domain": top}}},
                evidence={"queries": len(rows), "domains": dict(domains.most_common(SAMPLE)),
                          "mean_subdomain_length": round(float(columns["length"][rows].mean()), 1),
                          "mean_entropy": round(float(columns["entropy"][rows].mean()), 3),
                          "resolvers": resolvers[:SAMPLE], "names": names[:SAMPLE],
                          "flows": sample_flows(columns, rows)},
            ))
        return findings
