"""The numba meter against the reference on generated packet sequences: few endpoints (so flows collide and
repeat), small timeouts and tables (so every end reason happens), odd statuses and clocks that step back."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.flows import FlowMeter, ReferenceFlowMeter
from soc.core.model import DecodeStatus, FlowEnd, PacketBatch

from .test_flows_reference import assert_same_flows

ADDRESSES = [bytes(10) + b"\xff\xff" + bytes([10, 0, 0, k]) for k in (1, 2, 3)] + [
    bytes([0x20, 0x01, 0x0D, 0xB8]) + bytes(11) + bytes([k]) for k in (1, 2)
]

packet = st.fixed_dictionaries({
    "gap": st.one_of(st.integers(0, 3_000), st.integers(-2_000, 20_000), st.sampled_from([0, 10_000, 50_000])),
    "status": st.sampled_from([DecodeStatus.OK] * 12 + [DecodeStatus.NOT_IP, DecodeStatus.TRUNCATED]),
    "vlan": st.sampled_from([0, 0, 0, 7]),
    "protocol": st.sampled_from([6, 6, 6, 17, 17, 1, 58, 47]),
    "src": st.integers(0, len(ADDRESSES) - 1),
    "dst": st.integers(0, len(ADDRESSES) - 1),
    "sport": st.sampled_from([22, 80, 5000, 5001]),
    "dport": st.sampled_from([22, 80, 5000]),
    "wirelen": st.integers(42, 1514),
    "payload": st.integers(0, 1460),
    "flags": st.one_of(st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01]), st.integers(0, 255)),
    "window": st.integers(0, 65535),
    # repeats: a SYN that repeats its sender's first number is a retransmission; 6 and 0xFFFFFFFF are one below 7
    # and 0 (a SYN of a connection picked up mid-way at those numbers); -1: no number
    "seq": st.sampled_from([7, 7, 9, 6, 0, 0xFFFFFFFF, -1]),
})


def make_batch(packets: list[dict[str, int]], start_ts: int, first_index: int) -> PacketBatch:
    n = len(packets)

    def column(name: str, dtype: type) -> np.ndarray:
        return np.array([p[name] for p in packets], dtype=dtype)

    ts = start_ts + np.cumsum(column("gap", np.int64)) * 1_000_000  # gaps in milliseconds
    version = np.array([4 if ADDRESSES[p["src"]][:10] == bytes(10) else 6 for p in packets], np.uint8)
    offsets = np.zeros(n, dtype=np.int64)
    return PacketBatch(
        buffer=np.zeros(1, np.uint8), ts_ns=ts, caplen=np.zeros(n, np.uint32),
        wirelen=column("wirelen", np.uint32), data_offset=offsets, linktype=np.full(n, 101, np.uint16),
        status=column("status", np.uint8), vlan=column("vlan", np.uint16), ethertype=np.zeros(n, np.uint16),
        l3_offset=offsets, ip_version=version,
        src_ip=np.frombuffer(b"".join(ADDRESSES[p["src"]] for p in packets), np.uint8).reshape(n, 16),
        dst_ip=np.frombuffer(b"".join(ADDRESSES[p["dst"]] for p in packets), np.uint8).reshape(n, 16),
        protocol=column("protocol", np.uint8), src_port=column("sport", np.uint16),
        dst_port=column("dport", np.uint16), tcp_flags=column("flags", np.uint8),
        tcp_window=column("window", np.uint16), tcp_seq=column("seq", np.int64), ip_flags=np.zeros(n, np.uint8),
        payload_offset=np.zeros(n, np.int64),
        payload_len=column("payload", np.int32), first_index=first_index,
    )


@settings(max_examples=300, deadline=None)
@given(
    packets=st.lists(packet, min_size=0, max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=4),
    idle=st.sampled_from([2.0, 15.0, 120.0]),
    active=st.sampled_from([5.0, 40.0, 1800.0]),
    max_flows=st.sampled_from([1, 2, 3, 8, 4096]),
)
def test_fast_meter_equals_reference(packets: list[dict[str, int]], cuts: list[int], idle: float, active: float,
                                     max_flows: int) -> None:
    fast, reference = FlowMeter(idle, active, max_flows), ReferenceFlowMeter(idle, active, max_flows)
    bounds = [0, *sorted(c for c in cuts if c < len(packets)), len(packets)]
    ts = 1_600_000_000 * 1_000_000_000
    for lo, hi in itertools.pairwise(bounds):
        if lo == hi:
            continue
        batch = make_batch(packets[lo:hi], ts, lo)
        ts = int(batch.ts_ns[-1])
        assert_same_flows(fast.update(batch), reference.update(batch))
        assert len(fast) == len(reference) <= max_flows
    assert_same_flows(fast.flush(), reference.flush())
    assert (fast.evicted, fast.packets_not_in_flows) == (reference.evicted, reference.packets_not_in_flows)


def test_every_end_reason_is_reached() -> None:
    """A hand-made sequence on one TCP port pair, so the reasons above are known to be exercised."""
    syn, fin, ack = 0x02, 0x11, 0x10
    base = {"status": DecodeStatus.OK, "vlan": 0, "protocol": 6, "src": 0, "dst": 1, "sport": 5000, "dport": 80,
            "wirelen": 60, "payload": 0, "window": 1000, "seq": 7}
    steps = [(0, syn), (1, ack), (1, fin), (1, syn),  # closed, then the opening SYN again: a retransmission
             (1, fin), (1, syn, 8),  # a SYN with a new sequence number: TCP_CLOSED
             (3_000, ack),  # idle for 3 s > 2 s: IDLE
             *[(1_000, ack)] * 6]  # older than 5 s: ACTIVE
    packets = [{**base, "gap": step[0], "flags": step[1], "seq": step[2] if len(step) > 2 else 7} for step in steps]
    packets.append({**base, "gap": 1, "flags": syn, "sport": 5001})  # a second flow in a table of one: EVICTED
    meter = FlowMeter(idle_timeout=2.0, active_timeout=5.0, max_flows=1)
    batch = make_batch(packets, 0, 0)
    flows = [meter.update(batch), meter.flush()]
    reasons = [FlowEnd(int(r)) for f in flows for r in f.end_reason]
    assert reasons == [FlowEnd.TCP_CLOSED, FlowEnd.IDLE, FlowEnd.ACTIVE, FlowEnd.EVICTED, FlowEnd.END_OF_CAPTURE]
    assert meter.evicted == 1
    assert int(flows[0].packets_fwd[0]) == 5  # the repeated SYN stayed in the first connection
