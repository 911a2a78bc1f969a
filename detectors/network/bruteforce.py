"""Password brute force: one source opening many short, alike sessions to a login service of one host.

A *login attempt* is a TCP session on a login port that completed its handshake, exchanged a little data both
ways and ended soon: the shape of connect, banner, a few credentials, refusal. Guessing tools repeat it with the
same message sizes, so the server's replies in a window barely vary; ordinary clients (an application's pool of
database connections, a mail reader) send requests of every size and get answers of every size.
Thresholds and the window are in ``detectors.bruteforce`` of soc.yaml.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from collectors.flows.events import transport_name
from detectors.network.timewindows import (
    NS,
    Columns,
    Finding,
    WindowedFlowDetector,
    WindowSettings,
    group_rows,
    ip_words,
    sample_flows,
)
from soc.core.model import FlowBatch, Rule, Severity, TcpFlag, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-bruteforce",
    name="Password brute force",
    ruleset="soc-network",
    description="One source made many short, alike login sessions to one service within a window.",
    reference="https://attack.mitre.org/techniques/T1110/001/",
)
TECHNIQUE = Technique("T1110.001", "Brute Force: Password Guessing", "TA0006", "Credential Access")
SERVICES = {21: "ftp", 22: "ssh", 23: "telnet", 110: "pop3", 143: "imap", 389: "ldap", 445: "smb", 993: "imaps",
            995: "pop3s", 1433: "mssql", 3306: "mysql", 3389: "rdp", 5432: "postgresql", 5900: "vnc"}


class BruteForceSettings(WindowSettings):
    window_seconds: float = Field(600.0, gt=0)
    ports: list[int] = Field(default_factory=lambda: sorted(SERVICES), description="login services watched")
    min_attempts: int = Field(8, ge=2, description="login attempts from one source to one service")
    max_attempt_seconds: float = Field(60.0, gt=0, description="a longer session is a working login")
    max_attempt_bytes: int = Field(32_768, ge=1, description="payload both ways; more is a working session")
    max_reply_spread: float = Field(0.1, ge=0, description="median absolute deviation of the server's reply bytes "
                                    "over their median: guesses get the same refusal")


@plugin("bruteforce", settings=BruteForceSettings)
class BruteForceDetector(WindowedFlowDetector):
    rule, technique = RULE, TECHNIQUE
    columns = ("payload_bytes_fwd", "payload_bytes_bwd")
    settings: BruteForceSettings

    def __init__(self, settings: BruteForceSettings | None = None) -> None:
        super().__init__(settings or BruteForceSettings())
        self._ports = np.array(self.settings.ports, dtype=np.uint16)

    def select(self, flows: FlowBatch) -> np.ndarray:
        s = self.settings
        fwd, bwd = flows.tcp_flags_fwd.astype(np.int64), flows.tcp_flags_bwd.astype(np.int64)
        synack = int(TcpFlag.SYN | TcpFlag.ACK)
        established = ((bwd & synack) == synack) & ((fwd & int(TcpFlag.ACK)) != 0)
        payload = flows.payload_bytes_fwd + flows.payload_bytes_bwd
        return ((flows.protocol == 6) & np.isin(flows.dst_port, self._ports) & established
                & (flows.payload_bytes_fwd > 0) & (flows.payload_bytes_bwd > 0) & (payload <= s.max_attempt_bytes)
                & (flows.last_ts_ns - flows.first_ts_ns <= int(s.max_attempt_seconds * NS)))

    def judge(self, columns: Columns) -> list[Finding]:
        s = self.settings
        first, groups = group_rows(ip_words(columns["src_ip"]), ip_words(columns["dst_ip"]), columns["dst_port"])
        counts = np.bincount(groups, minlength=len(first))
        findings = []
        for g in np.flatnonzero(counts >= s.min_attempts).tolist():
            rows = np.flatnonzero(groups == g)
            replies = columns["payload_bytes_bwd"][rows].astype(np.float64)
            median = float(np.median(replies))
            spread = float(np.median(np.abs(replies - median))) / median
            if spread > s.max_reply_spread:
                continue
            i = int(first[g])
            source, target, port = ip_to_str(columns["src_ip"][i]), ip_to_str(columns["dst_ip"][i]), int(
                columns["dst_port"][i])
            service = SERVICES.get(port, transport_name(6))
            attempts = len(rows)
            findings.append(Finding(
                subject=source, source=source, destination=target,
                severity=Severity.HIGH if attempts >= 5 * s.min_attempts else Severity.MEDIUM,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=attempts,
                message=(f"{source} made {attempts} short {service} login sessions to {target}:{port} within "
                         f"{s.window_seconds:g} s (replies of {median:.0f} bytes, spread {spread:.2f})"),
                ecs={"destination": {"port": port}, "network": {"protocol": service}},
                evidence={"attempts": attempts, "service": service, "port": port,
                          "median_reply_bytes": median, "reply_spread": round(spread, 4),
                          "median_request_bytes": float(np.median(columns["payload_bytes_fwd"][rows])),
                          "flows": sample_flows(columns, rows)},
            ))
        return findings
