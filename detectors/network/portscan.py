"""Port scan: one source probing many ports or hosts within a window, or sending half-open SYN probes.

A *probe* is a flow that tried to open something and exchanged no data: a TCP flow whose initiator sent SYN,
with no payload either way, that got no answer or was reset; or a few small UDP datagrams that got no answer.
A *half-open* probe is the raw-socket SYN scan's signature: the target answers SYN/ACK and the initiator replies
with a bare RST, which an ordinary TCP stack never does.
Thresholds and the window are in ``detectors.portscan`` of soc.yaml.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from collectors.flows.events import transport_name
from detectors.base import FlowDetector
from detectors.network.timewindows import WindowSettings
from soc.core.model import Alert, FlowBatch, Rule, Severity, TcpFlag, Technique, ip_to_str, ns_to_iso
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-portscan",
    name="Port scan",
    ruleset="soc-network",
    description="One source probed many ports or hosts, or used half-open SYN probes, within a time window.",
    reference="https://attack.mitre.org/techniques/T1046/",
)
TECHNIQUE = Technique("T1046", "Network Service Discovery", "TA0007", "Discovery")
_NS = 1_000_000_000
_SAMPLE = 20  # evidence lists keep this many items
_UDP_PROBE_PACKETS = 3  # scanners retry a silent port at most a couple of times
_UDP_PROBE_PAYLOAD = 128  # bytes per datagram: empty or a protocol's minimal request


class PortScanSettings(WindowSettings):
    min_ports: int = Field(20, ge=1, description="distinct ports probed on one host that make a vertical scan")
    min_hosts: int = Field(20, ge=1, description="distinct hosts probed that make a horizontal scan")
    min_half_open: int = Field(1, ge=1, description="half-open SYN probes that make a stealth scan")


@dataclass(slots=True)
class _Window:
    first_ns: int
    last_ns: int
    targets: set[tuple[str, int, int]] = field(default_factory=set)  # (host, port, protocol)
    hosts: set[str] = field(default_factory=set)
    half_open: int = 0
    probes: int = 0
    samples: list[str] = field(default_factory=list)


@plugin("portscan", settings=PortScanSettings)
class PortScanDetector(FlowDetector):
    rule_id = RULE.id

    def __init__(self, settings: PortScanSettings | None = None) -> None:
        self.settings = settings or PortScanSettings()
        self._window_ns = int(self.settings.window_seconds * _NS)
        self._windows: dict[tuple[str, int], _Window] = {}
        self._watermark = 0

    def observe(self, flows: FlowBatch) -> list[Alert]:
        self._count(flows)
        if len(flows):
            self._watermark = max(self._watermark, int(flows.last_ts_ns.max()))
        # a window is final once flows that started in it can no longer be pending: one more window of slack
        closed = [key for key in self._windows if (key[1] + 2) * self._window_ns < self._watermark]
        return self._alerts(closed)

    def flush(self) -> list[Alert]:
        return self._alerts(list(self._windows))

    def _count(self, flows: FlowBatch) -> None:
        syn, rst, ack = int(TcpFlag.SYN), int(TcpFlag.RST), int(TcpFlag.ACK)
        fwd, bwd = flows.tcp_flags_fwd.astype(np.int64), flows.tcp_flags_bwd.astype(np.int64)
        silent = (flows.payload_bytes_fwd == 0) & (flows.payload_bytes_bwd == 0)
        tcp = flows.protocol == 6
        tcp_probe = tcp & silent & ((fwd & syn) != 0) & ((flows.packets_bwd == 0) | (((fwd | bwd) & rst) != 0))
        half_open = tcp_probe & ((fwd & rst) != 0) & ((fwd & ack) == 0) & ((bwd & (syn | ack)) == (syn | ack))
        # an unanswered UDP probe is short; a stream of large unanswered datagrams is a reply or a flood instead
        udp_probe = (
            (flows.protocol == 17) & (flows.packets_bwd == 0) & (flows.packets_fwd <= _UDP_PROBE_PACKETS)
            & (flows.payload_bytes_fwd <= _UDP_PROBE_PAYLOAD * flows.packets_fwd)
        )
        for i in np.flatnonzero(tcp_probe | udp_probe).tolist():
            source = ip_to_str(flows.src_ip[i])
            if self._ignored(source):
                continue
            first, last = int(flows.first_ts_ns[i]), int(flows.last_ts_ns[i])
            key = (source, first // self._window_ns)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(first, last)
            window.first_ns, window.last_ns = min(window.first_ns, first), max(window.last_ns, last)
            host, port, protocol = ip_to_str(flows.dst_ip[i]), int(flows.dst_port[i]), int(flows.protocol[i])
            window.targets.add((host, port, protocol))
            window.hosts.add(host)
            window.probes += 1
            window.half_open += int(half_open[i])
            if len(window.samples) < _SAMPLE:
                window.samples.append(f"{source}:{int(flows.src_port[i])}->{host}:{port}/{transport_name(protocol)}")

    def _ignored(self, source: str) -> bool:
        if not self.settings.ignore_sources:
            return False
        address = ipaddress.ip_address(source)
        return any(address in network for network in self.settings.ignore_sources)

    def _alerts(self, keys: list[tuple[str, int]]) -> list[Alert]:
        alerts = []
        for key in sorted(keys, key=lambda k: (k[1], k[0])):
            window = self._windows.pop(key)
            alert = self._judge(key[0], key[1], window)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _judge(self, source: str, bucket: int, window: _Window) -> Alert | None:
        s = self.settings
        ports_per_host: dict[str, set[int]] = {}
        for host, port, _ in window.targets:
            ports_per_host.setdefault(host, set()).add(port)
        max_ports = max(len(ports) for ports in ports_per_host.values())
        hosts = len(window.hosts)
        vertical, horizontal = max_ports >= s.min_ports, hosts >= s.min_hosts
        stealth = window.half_open >= s.min_half_open
        if not (vertical or horizontal or stealth):
            return None
        if max_ports >= 10 * s.min_ports or hosts >= 10 * s.min_hosts:
            severity = Severity.HIGH
        elif vertical or horizontal:
            severity = Severity.MEDIUM
        else:
            severity = Severity.LOW
        kinds = [name for name, hit in (("vertical", vertical), ("horizontal", horizontal),
                                        ("half-open SYN", stealth)) if hit]
        all_ports = sorted({port for _, port, _ in window.targets})
        target_hosts = sorted(window.hosts)
        ecs: dict = {"source": {"ip": source}, "related": {"ip": [source, *target_hosts[:_SAMPLE]]},
                     "event": {"category": ["network", "intrusion_detection"], "type": ["info"]}}
        if hosts == 1:
            ecs["destination"] = {"ip": target_hosts[0]}
        message = (
            f"{source} probed {len(all_ports)} port(s) on {hosts} host(s) within {s.window_seconds:g} s "
            f"({', '.join(kinds)} scan; {window.probes} probe flows, {window.half_open} half-open)"
        )
        return Alert(
            rule=RULE,
            severity=severity,
            group_key=source,
            time_bucket=bucket,
            first_seen=ns_to_iso(window.first_ns),
            last_seen=ns_to_iso(window.last_ns),
            message=message,
            techniques=[TECHNIQUE],
            ecs=ecs,
            evidence={
                "scan_types": kinds,
                "distinct_ports": len(all_ports),
                "max_ports_per_host": max_ports,
                "distinct_hosts": hosts,
                "probe_flows": window.probes,
                "half_open_probes": window.half_open,
                "ports": all_ports[:_SAMPLE],
                "hosts": target_hosts[:_SAMPLE],
                "flows": window.samples,
            },
            count=window.probes,
        )
