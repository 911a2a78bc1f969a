"""FlowBatch rows to ECS network events (``source.*``, ``destination.*``, ``network.*``, ``event.duration``).

A separate cheap step: the detectors work on the arrays; events are made only for what is stored or matched.
"""

from __future__ import annotations

from collections.abc import Iterator

from soc.core.model import Event, FlowBatch, ip_to_str, ns_to_iso

TRANSPORTS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 47: "gre", 50: "esp"}
FLOW_LOGSOURCE = {"product": None, "category": "flow", "service": None}


def transport_name(protocol: int) -> str:
    return TRANSPORTS.get(protocol, str(protocol))


def flow_events(flows: FlowBatch) -> Iterator[Event]:
    for i in range(len(flows)):
        packets_fwd, packets_bwd = int(flows.packets_fwd[i]), int(flows.packets_bwd[i])
        bytes_fwd, bytes_bwd = int(flows.bytes_fwd[i]), int(flows.bytes_bwd[i])
        first, last = int(flows.first_ts_ns[i]), int(flows.last_ts_ns[i])
        yield {
            "@timestamp": ns_to_iso(first),
            "event": {
                "kind": "event",
                "category": ["network"],
                "type": ["connection"],
                "dataset": "soc.flow",
                "start": ns_to_iso(first),
                "end": ns_to_iso(last),
                "duration": last - first,
            },
            "source": {"ip": ip_to_str(flows.src_ip[i]), "port": int(flows.src_port[i]),
                       "packets": packets_fwd, "bytes": bytes_fwd},
            "destination": {"ip": ip_to_str(flows.dst_ip[i]), "port": int(flows.dst_port[i]),
                            "packets": packets_bwd, "bytes": bytes_bwd},
            "network": {
                "transport": transport_name(int(flows.protocol[i])),
                "iana_number": str(int(flows.protocol[i])),
                "type": f"ipv{int(flows.ip_version[i])}",
                "packets": packets_fwd + packets_bwd,
                "bytes": bytes_fwd + bytes_bwd,
                "vlan": {"id": str(int(flows.vlan[i]))} if flows.vlan[i] else None,
            },
            "soc": {"logsource": dict(FLOW_LOGSOURCE)},
        }
