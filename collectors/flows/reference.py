"""Plain-Python bidirectional flow table: the reference the fast meter (``meter.py``) is checked against, field
by field. One Python object per flow; packets are read column by column from the batch.

A flow is keyed by (VLAN, protocol, the two endpoints in canonical order); its initiator (``src``) is the sender
of its first packet. It ends when idle longer than ``idle_timeout``, older than ``active_timeout``, when a TCP
SYN opens a new connection on its port pair (below), at the end of the capture, or when the table is full: a
new flow first expires the idle ones, and if none is idle the ``max_flows // 8`` least recently seen flows are
evicted (counted in ``evicted``). Expired flows come out ordered by (first packet time, creation).
Features: see ``features.py``.

A new connection, as tshark's TCP streams define it: each side of a flow has an initial sequence number, taken
from its first packet (the number of a SYN or SYN/ACK; one less than the number of a segment picked up mid-
connection, which a SYN of the same connection would have carried). A SYN without ACK whose number differs from
its sender's is a new connection, whether or not FIN or RST was seen: a sender only picks a new number for a new
connection (port reuse after an unseen or abandoned connection, or a flood reusing ports), and each attempt must
count as one, as detectors count half-open flows. A SYN repeating its sender's number is a retransmission; a SYN
from a side that has not sent yet (a simultaneous open) joins the flow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from collectors.flows.features import FEATURES, FIRST_PACKETS, TCP_FLAGS, empty_features
from soc.core.model import DecodeStatus, FlowBatch, FlowEnd, PacketBatch, TcpFlag

_NS = 1_000_000_000
_SYN = int(TcpFlag.SYN)
_ACK = int(TcpFlag.ACK)
DEFAULT_MAX_FLOWS = 1 << 19


@dataclass(slots=True)
class _Stats:
    """Running min/max/mean/variance (Welford) of one series."""

    count: int = 0
    low: int = 0
    high: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: int) -> None:
        self.count += 1
        if self.count == 1:
            self.low = self.high = value
        else:
            self.low = min(self.low, value)
            self.high = max(self.high, value)
        x = float(value)
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0


@dataclass(slots=True)
class _Direction:
    packets: int = 0
    bytes: int = 0
    payload: int = 0
    flags: int = 0
    data_packets: int = 0
    last_ts: int = 0
    init_window: int = -1
    isn: int = -1  # initial sequence number (see the module docstring), -1: unknown
    flag_counts: list[int] = field(default_factory=lambda: [0] * len(TCP_FLAGS))
    sizes: _Stats = field(default_factory=_Stats)
    iats: _Stats = field(default_factory=_Stats)

    def add(self, ts: int, length: int, payload: int, flags: int, window: int, seq: int, tcp: bool) -> None:
        if self.packets:
            self.iats.add(ts - self.last_ts)
        elif tcp:
            self.init_window = window
            self.isn = seq if seq < 0 or flags & _SYN else (seq - 1) & 0xFFFFFFFF
        self.packets += 1
        self.bytes += length
        self.payload += payload
        self.flags |= flags
        self.data_packets += payload > 0
        self.last_ts = ts
        self.sizes.add(length)
        for bit in range(len(TCP_FLAGS)):
            self.flag_counts[bit] += (flags >> bit) & 1


@dataclass(slots=True)
class _Flow:
    seq: int
    first_ts: int
    last_ts: int
    vlan: int
    ip_version: int
    protocol: int
    src_ip: bytes
    dst_ip: bytes
    src_port: int
    dst_port: int
    fwd: _Direction = field(default_factory=_Direction)
    bwd: _Direction = field(default_factory=_Direction)
    sizes: _Stats = field(default_factory=_Stats)
    iats: _Stats = field(default_factory=_Stats)
    first_sizes: list[int] = field(default_factory=list)
    first_dirs: list[int] = field(default_factory=list)
    end_reason: int = FlowEnd.END_OF_CAPTURE

    def add(self, ts: int, forward: bool, length: int, payload: int, flags: int, window: int, seq: int) -> None:
        if self.fwd.packets or self.bwd.packets:
            self.iats.add(ts - self.last_ts)
        self.last_ts = ts
        side = self.fwd if forward else self.bwd
        side.add(ts, length, payload, flags, window, seq, self.protocol == 6)
        self.sizes.add(length)
        if len(self.first_sizes) < FIRST_PACKETS:
            self.first_sizes.append(length)
            self.first_dirs.append(1 if forward else -1)


Key = tuple[int, int, bytes, int, bytes, int]


class ReferenceFlowMeter:
    """Feed PacketBatch chunks in order with :meth:`update`; expired flows come back as FlowBatch."""

    def __init__(self, idle_timeout: float = 120.0, active_timeout: float = 1800.0,
                 max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self.idle_ns = int(idle_timeout * _NS)
        self.active_ns = int(active_timeout * _NS)
        self.max_flows = max_flows
        self._flows: dict[Key, _Flow] = {}
        self._next_seq = 0
        self.packets_not_in_flows = 0
        self.evicted = 0

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
            batch.tcp_window[index].tolist(),
            batch.tcp_seq[index].tolist(),
        )
        flows = self._flows
        for ts, vlan, version, proto, sip, dip, sport, dport, length, payload, flags, window, seq in zip(
            *columns, strict=True
        ):
            if proto not in (6, 17):  # ICMP and others: one flow per address pair and protocol
                sport = dport = 0
            forward_key = (sip, sport) <= (dip, dport)
            key = (vlan, proto, sip, sport, dip, dport) if forward_key else (vlan, proto, dip, dport, sip, sport)
            flow = flows.get(key)
            if flow is not None:
                reason = self._ends_before(flow, ts, sip == flow.src_ip and sport == flow.src_port, proto, flags,
                                           seq)
                if reason is not None:
                    flow.end_reason = reason
                    expired.append(flows.pop(key))
                    flow = None
            if flow is None:
                if len(flows) >= self.max_flows:
                    expired.extend(self._make_room(ts))
                flow = _Flow(self._next_seq, ts, ts, vlan, version, proto, sip, dip, sport, dport)
                self._next_seq += 1
                flows[key] = flow
            flow.add(ts, sip == flow.src_ip and sport == flow.src_port, length, payload, flags, window, seq)
        if len(batch):
            expired.extend(self._expire_idle(int(batch.ts_ns[-1])))
        return flows_to_batch(expired)

    def flush(self) -> FlowBatch:
        """End of input: every remaining flow expires."""
        remaining = list(self._flows.values())
        self._flows.clear()
        return flows_to_batch(remaining)

    def _ends_before(self, flow: _Flow, ts: int, forward: bool, proto: int, flags: int, seq: int) -> int | None:
        if ts - flow.last_ts > self.idle_ns:
            return FlowEnd.IDLE
        if ts - flow.first_ts > self.active_ns:
            return FlowEnd.ACTIVE
        if proto == 6 and flags & (_SYN | _ACK) == _SYN:
            isn = (flow.fwd if forward else flow.bwd).isn
            if isn >= 0 and seq >= 0 and seq != isn:  # a new connection; an unknown number (-1) proves nothing
                return FlowEnd.TCP_CLOSED
        return None

    def _expire_idle(self, now: int) -> list[_Flow]:
        stale = [key for key, flow in self._flows.items() if now - flow.last_ts > self.idle_ns]
        gone = [self._flows.pop(key) for key in stale]
        for flow in gone:
            flow.end_reason = FlowEnd.IDLE
        return gone

    def _make_room(self, now: int) -> list[_Flow]:
        gone = self._expire_idle(now)
        if gone:
            return gone
        by_age = sorted(self._flows.items(), key=lambda item: (item[1].last_ts, item[1].seq))
        for key, flow in by_age[: max(1, self.max_flows // 8)]:
            flow.end_reason = FlowEnd.EVICTED
            gone.append(self._flows.pop(key))
        self.evicted += len(gone)
        return gone


def _feature_values(flow: _Flow) -> Iterable[int | float]:
    """The values of one flow in the order of ``FEATURES``."""
    yield flow.seq
    yield flow.last_ts - flow.first_ts
    for stats in ((flow.fwd.sizes, flow.fwd.iats), (flow.bwd.sizes, flow.bwd.iats), (flow.sizes, flow.iats)):
        for series in stats:
            yield from (series.low, series.high, series.mean, series.std())
    for side in (flow.fwd, flow.bwd):
        yield from side.flag_counts
        yield side.init_window
        yield side.data_packets
    padding = FIRST_PACKETS - len(flow.first_sizes)
    for size, direction in zip(flow.first_sizes + [0] * padding, flow.first_dirs + [0] * padding, strict=True):
        yield size
        yield direction


def flows_to_batch(flows: list[_Flow]) -> FlowBatch:
    flows.sort(key=lambda f: (f.first_ts, f.seq))

    def column(values: Iterable[int], dtype: type) -> np.ndarray:
        return np.array(list(values), dtype=dtype)

    def addresses(values: Iterable[bytes]) -> np.ndarray:
        return np.frombuffer(b"".join(values), np.uint8).reshape(-1, 16).copy()

    features = empty_features()
    if flows:
        table = list(zip(*(_feature_values(f) for f in flows), strict=True))
        features = {f.name: np.array(values, dtype=f.dtype) for f, values in zip(FEATURES, table, strict=True)}
    return FlowBatch(
        first_ts_ns=column((f.first_ts for f in flows), np.int64),
        last_ts_ns=column((f.last_ts for f in flows), np.int64),
        vlan=column((f.vlan for f in flows), np.uint16),
        ip_version=column((f.ip_version for f in flows), np.uint8),
        protocol=column((f.protocol for f in flows), np.uint8),
        src_ip=addresses(f.src_ip for f in flows),
        dst_ip=addresses(f.dst_ip for f in flows),
        src_port=column((f.src_port for f in flows), np.uint16),
        dst_port=column((f.dst_port for f in flows), np.uint16),
        packets_fwd=column((f.fwd.packets for f in flows), np.uint64),
        packets_bwd=column((f.bwd.packets for f in flows), np.uint64),
        bytes_fwd=column((f.fwd.bytes for f in flows), np.uint64),
        bytes_bwd=column((f.bwd.bytes for f in flows), np.uint64),
        payload_bytes_fwd=column((f.fwd.payload for f in flows), np.uint64),
        payload_bytes_bwd=column((f.bwd.payload for f in flows), np.uint64),
        tcp_flags_fwd=column((f.fwd.flags for f in flows), np.uint8),
        tcp_flags_bwd=column((f.bwd.flags for f in flows), np.uint8),
        end_reason=column((f.end_reason for f in flows), np.uint8),
        features=features,
    )
