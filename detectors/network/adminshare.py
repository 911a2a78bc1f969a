"""Remote execution over admin shares: a client connecting to a host's ``ADMIN$`` or ``C$`` share and creating an
executable there, the first step of PsExec and of most SMB lateral-movement tools (a service is then made to run
it).

Reads SMB client payloads (TCP 445 and 139) from the packets with a numba search for the UTF-16 share and file
names; sessions with SMB 3 encryption hide them (the flow-based lateral-movement detector still counts them).
The window is in ``detectors.admin_share`` of soc.yaml.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from detectors.base import PacketDetector
from detectors.network.timewindows import (
    NS,
    Columns,
    Finding,
    FlowWindows,
    WindowJudge,
    WindowSettings,
    group_rows,
    in_networks,
    ip_words,
    sample_flows,
)
from soc.core.kernels import kernel
from soc.core.model import Alert, DecodeStatus, PacketBatch, Rule, Severity, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-admin-share",
    name="Executable written to an admin share",
    ruleset="soc-network",
    description="A client opened a host's ADMIN$ or C$ share and created an executable there (PsExec style).",
    reference="https://attack.mitre.org/techniques/T1021/002/",
)
TECHNIQUE = Technique("T1021.002", "Remote Services: SMB/Windows Admin Shares", "TA0008", "Lateral Movement")
SMB_PORTS = (445, 139)


def _utf16(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-16-le"), dtype=np.uint8).copy()


SHARE_NAMES = [_utf16("ADMIN$"), _utf16("admin$"), _utf16("\\C$"), _utf16("\\c$")]
EXECUTABLES = [_utf16(".exe"), _utf16(".EXE"), _utf16(".dll"), _utf16(".DLL"), _utf16(".ps1"), _utf16(".bat")]


class AdminShareSettings(WindowSettings):
    window_seconds: float = Field(300.0, gt=0)


@kernel("b1[::1](buffer, ro(i8[::1]), ro(i8[::1]), ro(u1[::1]))")
def _contains(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """For each payload (offset, length) in ``buffer``: does it contain ``pattern``?"""
    found = np.zeros(offsets.shape[0], dtype=np.bool_)
    m = pattern.shape[0]
    for i in range(offsets.shape[0]):
        start, end = offsets[i], offsets[i] + lengths[i] - m
        for pos in range(start, end + 1):
            hit = True
            for k in range(m):
                if buffer[pos + k] != pattern[k]:
                    hit = False
                    break
            if hit:
                found[i] = True
                break
    return found


def contains_any(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                 patterns: list[np.ndarray]) -> np.ndarray:
    found = np.zeros(len(offsets), dtype=bool)
    for pattern in patterns:
        found |= _contains(buffer, offsets, lengths, pattern)
    return found


@plugin("admin_share", settings=AdminShareSettings)
class AdminShareDetector(WindowJudge, PacketDetector):
    rule, technique = RULE, TECHNIQUE
    rule_id = RULE.id

    def __init__(self, settings: AdminShareSettings | None = None) -> None:
        self.settings = settings or AdminShareSettings()
        self.windows = FlowWindows(int(self.settings.window_seconds * NS))

    def observe_packets(self, batch: PacketBatch) -> list[Alert]:
        if not len(batch):
            return []
        rows = np.flatnonzero((batch.status == DecodeStatus.OK) & (batch.protocol == 6)
                              & np.isin(batch.dst_port, np.array(SMB_PORTS, dtype=np.uint16))
                              & (batch.payload_len > 0))
        if self.settings.ignore_sources and len(rows):
            rows = rows[~in_networks(batch.src_ip[rows], self.settings.ignore_sources)]
        # a capture's buffer ends where its last frame does: never read past the captured bytes
        available = np.minimum(batch.payload_len[rows].astype(np.int64),
                               batch.data_offset[rows] + batch.caplen[rows] - batch.payload_offset[rows])
        offsets = batch.payload_offset[rows].astype(np.int64)
        share = contains_any(batch.buffer, offsets, available, SHARE_NAMES)
        executable = contains_any(batch.buffer, offsets, available, EXECUTABLES)
        keep = rows[share | executable]
        ts = batch.ts_ns[keep]
        self.windows.add({"first_ts_ns": ts, "last_ts_ns": ts, "src_ip": batch.src_ip[keep],
                          "dst_ip": batch.dst_ip[keep], "src_port": batch.src_port[keep],
                          "dst_port": batch.dst_port[keep], "protocol": batch.protocol[keep],
                          "share": share[share | executable], "executable": executable[share | executable]},
                         int(batch.ts_ns.max()))
        return self._alerts(self.windows.closed())

    def judge(self, columns: Columns) -> list[Finding]:
        first, groups = group_rows(ip_words(columns["src_ip"]), ip_words(columns["dst_ip"]))
        findings = []
        for g in range(len(first)):
            rows = np.flatnonzero(groups == g)
            shares, executables = int(columns["share"][rows].sum()), int(columns["executable"][rows].sum())
            if not (shares and executables):
                continue
            client, host = ip_to_str(columns["src_ip"][first[g]]), ip_to_str(columns["dst_ip"][first[g]])
            findings.append(Finding(
                subject=client, source=client, destination=host, severity=Severity.HIGH,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{client} opened an admin share on {host} and created an executable there over SMB "
                         f"({shares} share request(s), {executables} executable name(s))"),
                ecs={"destination": {"port": int(columns["dst_port"][rows[0]])}},
                evidence={"share_requests": shares, "executable_requests": executables,
                          "flows": sorted(set(sample_flows(columns, rows)))},
            ))
        return findings
