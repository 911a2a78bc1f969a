"""Plain-Python bidirectional flow table: the reference the fast meter is checked against, and the meter used
until it lands. One Python object per flow; packets are read column by column from the batch.

A flow is keyed by (VLAN, protocol, the two endpoints in canonical order); its initiator (``src``) is the sender
of its first packet. It ends when idle longer than ``idle_timeout``, older than ``active_timeout``, when a TCP
SYN opens a new connection on a flow that already saw FIN or RST, or at the end of the capture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from soc.model import DecodeStatus, FlowBatch, FlowEnd, PacketBatch, TcpFlag

_NS = 1_000_000_000
_FIN_OR_RST = int(TcpFlag.FIN | TcpFlag.RST)
_SYN = int(TcpFlag.SYN)
_ACK = int(TcpFlag.ACK)


@dataclass(slots=True)
class _Flow:
    first_ts: int
    last_ts: int
    vlan: int
    ip_version: int
    protocol: int
    src_ip: bytes
    dst_ip: bytes
    src_port: int
    dst_port: int
    packets_fwd: int = 0
    packets_bwd: int = 0
    bytes_fwd: int = 0
    bytes_bwd: int = 0
    payload_fwd: int = 0
    payload_bwd: int = 0
    flags_fwd: int = 0
    flags_bwd: int = 0
    end_reason: int = FlowEnd.END_OF_CAPTURE


class ReferenceFlowMeter:
    """Feed PacketBatch chunks in order with :meth:`update`; expired flows come back as FlowBatch."""

    def __init__(self, idle_timeout: float = 120.0, active_timeout: float = 1800.0) -> None:
        self.idle_ns = int(idle_timeout * _NS)
        self.active_ns = int(active_timeout * _NS)
        self._flows: dict[tuple[int, int, bytes, int, bytes, int], _Flow] = {}
        self.packets_not_in_flows = 0

    def __len__(self) -> int:
        return len(self._flows)

    def update(self, batch: PacketBatch) -> FlowBatch:
        expired: list[_Flow] = []
        usable = batch.status == DecodeStatus.OK
        self.packets_not_in_flows += int((~usable).sum())
        index = np.flatnonzero(usable)
        columns = (
            batch.ts_ns[index].tolist(),
            batch.vlan[index].tolist(),
            batch.ip_version[index].tolist(),
            batch.protocol[index].tolist(),
            [bytes(row) for row in batch.src_ip[index]],
            [bytes(row) for row in batch.dst_ip[index]],
            batch.src_port[index].tolist(),
            batch.dst_port[index].tolist(),
            batch.wirelen[index].tolist(),
            batch.payload_len[index].tolist(),
            batch.tcp_flags[index].tolist(),
        )
        flows = self._flows
        for ts, vlan, version, proto, sip, dip, sport, dport, length, payload, flags in zip(*columns, strict=True):
            if proto not in (6, 17):  # ICMP and others: one flow per address pair and protocol
                sport = dport = 0
            forward_key = (sip, sport) <= (dip, dport)
            key = (vlan, proto, sip, sport, dip, dport) if forward_key else (vlan, proto, dip, dport, sip, sport)
            flow = flows.get(key)
            if flow is not None:
                reason = self._ends_before(flow, ts, proto, flags)
                if reason is not None:
                    flow.end_reason = reason
                    expired.append(flow)
                    flow = None
            if flow is None:
                flow = _Flow(ts, ts, vlan, version, proto, sip, dip, sport, dport)
                flows[key] = flow
            flow.last_ts = ts
            if sip == flow.src_ip and sport == flow.src_port:
                flow.packets_fwd += 1
                flow.bytes_fwd += length
                flow.payload_fwd += payload
                flow.flags_fwd |= flags
            else:
                flow.packets_bwd += 1
                flow.bytes_bwd += length
                flow.payload_bwd += payload
                flow.flags_bwd |= flags
        if len(batch):
            expired.extend(self._expire_idle(int(batch.ts_ns[-1])))
        return flows_to_batch(expired)

    def flush(self) -> FlowBatch:
        """End of input: every remaining flow expires."""
        remaining = list(self._flows.values())
        self._flows.clear()
        return flows_to_batch(remaining)

    def _ends_before(self, flow: _Flow, ts: int, proto: int, flags: int) -> int | None:
        if ts - flow.last_ts > self.idle_ns:
            return FlowEnd.IDLE
        if ts - flow.first_ts > self.active_ns:
            return FlowEnd.ACTIVE
        closed = (flow.flags_fwd | flow.flags_bwd) & _FIN_OR_RST
        if proto == 6 and closed and flags & _SYN and not flags & _ACK:
            return FlowEnd.TCP_CLOSED
        return None

    def _expire_idle(self, now: int) -> Iterator[_Flow]:
        stale = [key for key, flow in self._flows.items() if now - flow.last_ts > self.idle_ns]
        for key in stale:
            flow = self._flows.pop(key)
            flow.end_reason = FlowEnd.IDLE
            yield flow


def flows_to_batch(flows: list[_Flow]) -> FlowBatch:
    flows.sort(key=lambda f: (f.first_ts, f.src_ip, f.src_port, f.dst_ip, f.dst_port))

    def column(name: str, dtype: type) -> np.ndarray:
        return np.array([getattr(f, name) for f in flows], dtype=dtype)

    def addresses(name: str) -> np.ndarray:
        if not flows:
            return np.zeros((0, 16), np.uint8)
        return np.frombuffer(b"".join(getattr(f, name) for f in flows), np.uint8).reshape(-1, 16).copy()

    return FlowBatch(
        first_ts_ns=column("first_ts", np.int64),
        last_ts_ns=column("last_ts", np.int64),
        vlan=column("vlan", np.uint16),
        ip_version=column("ip_version", np.uint8),
        protocol=column("protocol", np.uint8),
        src_ip=addresses("src_ip"),
        dst_ip=addresses("dst_ip"),
        src_port=column("src_port", np.uint16),
        dst_port=column("dst_port", np.uint16),
        packets_fwd=column("packets_fwd", np.uint64),
        packets_bwd=column("packets_bwd", np.uint64),
        bytes_fwd=column("bytes_fwd", np.uint64),
        bytes_bwd=column("bytes_bwd", np.uint64),
        payload_bytes_fwd=column("payload_fwd", np.uint64),
        payload_bytes_bwd=column("payload_bwd", np.uint64),
        tcp_flags_fwd=column("flags_fwd", np.uint8),
        tcp_flags_bwd=column("flags_bwd", np.uint8),
        end_reason=column("end_reason", np.uint8),
    )
