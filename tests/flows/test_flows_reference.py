"""Flow meters on real captures: the numba meter equals the reference meter on every field, and both agree with
tshark's TCP and UDP conversations (frames and bytes) on every attack capture."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import fields
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from collectors.flows import FlowMeter, ReferenceFlowMeter, flow_events
from collectors.flows.features import FEATURE_NAMES
from collectors.packets import CaptureReader
from soc.core.model import FlowBatch, FlowEnd, PacketBatch

from ..conftest import ATTACKS, SHARED
from ..test_packet_reader import tshark_fields
from .oracle import compare, flow_conversations, packet_conversations, tshark_rows, tshark_streams

MIX_30K = SHARED / "pcaps" / "throughput" / "ordinary_mix_first30k.pcap"
CAPTURES = sorted(ATTACKS.glob("*.pcap*"))


def assert_same_flows(fast: FlowBatch, reference: FlowBatch) -> None:
    """Every column and every feature: same dtype, same values (floats bit for bit)."""
    for column in fields(FlowBatch):
        if column.name == "features":
            continue
        ours, theirs = getattr(fast, column.name), getattr(reference, column.name)
        assert ours.dtype == theirs.dtype, column.name
        np.testing.assert_array_equal(ours, theirs, err_msg=column.name)
    assert tuple(fast.features) == FEATURE_NAMES == tuple(reference.features)
    for name in FEATURE_NAMES:
        assert fast.features[name].dtype == reference.features[name].dtype, name
        np.testing.assert_array_equal(fast.features[name], reference.features[name], err_msg=name)


def run(meter: FlowMeter | ReferenceFlowMeter, batches: list[PacketBatch]) -> list[FlowBatch]:
    flows = [meter.update(batch) for batch in batches]
    flows.append(meter.flush())
    return flows


@cache
def metered(path: Path, chunk_packets: int = 500) -> tuple[list[PacketBatch], list[FlowBatch], list[FlowBatch]]:
    """Batches (small chunks: flows must continue across them), then the fast and the reference meter's flows."""
    batches = list(CaptureReader(path, chunk_packets=chunk_packets))
    return batches, run(FlowMeter(), batches), run(ReferenceFlowMeter(), batches)


@pytest.mark.parametrize("capture", [*CAPTURES, MIX_30K], ids=lambda p: p.name)
def test_fast_meter_equals_reference_on_every_field(capture: Path) -> None:
    _, fast, reference = metered(capture, 4096 if capture == MIX_30K else 500)
    assert len(fast) == len(reference)
    for ours, theirs in zip(fast, reference, strict=True):
        assert_same_flows(ours, theirs)
    assert sum(len(f) for f in fast) > 0


def test_growing_hash_table_keeps_every_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table starts small and is rehashed into larger ones as live flows pile up (a SYN scan: one flow per
    port), several times within one batch (metering stops, the table doubles, metering resumes at the same packet);
    no flow is lost, split or changed on the way. A batch with few flows leaves the table small."""
    from collectors.flows import meter as fast_meter

    monkeypatch.setattr(fast_meter, "_MIN_TABLE", 16)
    batches, _, reference = metered(ATTACKS / "chrissanders__synscan.pcapng")
    meter = FlowMeter()
    sizes = [meter._table.shape[0]]
    flows = []
    for batch in batches:
        flows.append(meter.update(batch))
        sizes.append(meter._table.shape[0])
    flows.append(meter.flush())
    assert sizes[0] == 16 and len(set(sizes)) >= 3  # grew more than once, with live flows in the table
    for ours, theirs in zip(flows, reference, strict=True):
        assert_same_flows(ours, theirs)
    # sized for the live flows, not for the batch: 431 packets in one batch, 11 flows -> 32 slots (room for 16),
    # where sizing for the batch would have given 1,024
    few = FlowMeter()
    (batch,) = CaptureReader(ATTACKS / "zeek__sshguess.pcap", chunk_packets=500)
    few.update(batch)
    assert len(batch) == 431 and few._table.shape[0] <= 64


def tshark_conversations(path: Path) -> Counter[tuple[tuple[str, str, int, str, int], int, int]]:
    """(conversation, frames, bytes) per TCP/UDP stream, as tshark dissects them (ICMP-quoted headers left out)."""
    return Counter((s.key, s.frames, s.bytes) for s in tshark_streams(tshark_rows(path)))


# Fragmented datagrams: tshark reassembles and counts the fragments in the UDP stream; we count every fragment
# after the first in an address-pair flow. A documented difference (category "fragment" of the mix test).
FRAGMENTED = {"StopDDoS__amp.dns.RRSIG.fragmented.pcap"}


@pytest.mark.parametrize("capture", [p for p in CAPTURES if p.name not in FRAGMENTED], ids=lambda p: p.name)
def test_conversations_equal_tshark(capture: Path) -> None:
    expected = tshark_conversations(capture)
    assert expected, "tshark found no conversations: the oracle did not run"
    _, fast, _ = metered(capture)
    found = Counter((key, frames, size) for key, frames, size, _ in flow_conversations(fast))
    assert found == expected


def test_mix_conversations_against_tshark() -> None:
    """The first 30k packets of the throughput mix: at least 97% of tshark's conversations identical, and every
    difference in a documented category (see ``oracle.py``; the whole mix is measured in bench/RESULTS.md)."""
    batches, _, _ = metered(MIX_30K, 4096)
    # no timeouts: tshark has none, so only keying and counting are compared
    flows = run(FlowMeter(idle_timeout=1e9, active_timeout=1e9), batches)
    result = compare(tshark_rows(MIX_30K), flow_conversations(flows), packet_conversations(batches))
    assert result.unexplained == []
    assert (result.tshark, result.identical) == (548, 533)
    assert result.identical_share >= 0.97
    assert result.by_category == {"merged+tunnel": 7, "fragment+merged+tunnel": 5, "tunnel": 5}


def test_table_full_evicts_the_least_recently_seen_and_counts_them() -> None:
    batches, _, _ = metered(ATTACKS / "StopDDoS__pkt.TCP.synflood.spoofed.pcap")
    fast, reference = FlowMeter(max_flows=1000), ReferenceFlowMeter(max_flows=1000)
    fast_flows, reference_flows = run(fast, batches), run(reference, batches)
    for ours, theirs in zip(fast_flows, reference_flows, strict=True):
        assert_same_flows(ours, theirs)
    reasons = Counter(int(r) for f in fast_flows for r in f.end_reason)
    assert fast.evicted == reference.evicted == reasons[FlowEnd.EVICTED] > 30000
    assert len(fast) == 0
    packets = sum(int(f.packets_fwd.sum() + f.packets_bwd.sum()) for f in fast_flows)
    assert packets + fast.packets_not_in_flows == sum(len(b) for b in batches)


def test_features_of_a_known_connection() -> None:
    """zeek's sshguess: the first flow is one SSH connection; its features checked against tshark's view."""
    capture = ATTACKS / "zeek__sshguess.pcap"
    _, fast, _ = metered(capture)
    flows = next(f for f in fast if len(f))
    first = int(np.argmin(flows.features["id"]))
    src_port = int(flows.src_port[first])
    rows = [row for row in tshark_fields(capture, "tcp.srcport", "tcp.dstport", "frame.len", "tcp.flags",
                                         "tcp.window_size_value", "frame.time_epoch")
            if src_port in (int(row[0]), int(row[1])) and 22 in (int(row[0]), int(row[1]))]
    forward = [row for row in rows if int(row[0]) == src_port]
    backward = [row for row in rows if int(row[0]) != src_port]
    features = {name: values[first] for name, values in flows.features.items()}
    assert int(flows.packets_fwd[first]) == len(forward) and int(flows.packets_bwd[first]) == len(backward)
    sizes = [int(row[2]) for row in rows]
    assert [features[f"first_size_{k}"] for k in range(1, 9)] == sizes[:8]
    assert [features[f"first_dir_{k}"] for k in range(1, 9)] == [1 if r in forward else -1 for r in rows[:8]]
    assert features["fwd_size_max"] == max(int(row[2]) for row in forward)
    assert features["bwd_size_min"] == min(int(row[2]) for row in backward)
    assert features["bi_size_mean"] == pytest.approx(sum(sizes) / len(sizes), rel=1e-12)
    assert features["bi_size_std"] == pytest.approx(float(np.std(sizes, ddof=1)), rel=1e-9)
    for side, name in ((forward, "fwd"), (backward, "bwd")):
        for bit, flag in enumerate(("fin", "syn", "rst", "psh", "ack")):
            assert features[f"{name}_{flag}_count"] == sum(1 for row in side if int(row[3], 16) >> bit & 1)
        assert features[f"{name}_init_window"] == int(side[0][4])
    times = [round(float(row[5]) * 1e6) for row in forward]  # tshark prints microseconds here
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert features["fwd_iat_min"] == min(gaps) * 1000 and features["fwd_iat_max"] == max(gaps) * 1000
    assert features["duration_ns"] == int(flows.last_ts_ns[first] - flows.first_ts_ns[first]) > 0


def test_tcp_sequence_numbers_match_tshark() -> None:
    capture = ATTACKS / "zeek__ftp_bruteforce.pcap"
    expected = [int(row[0]) if row[0] else -1 for row in tshark_fields(capture, "tcp.seq_raw")]
    found = np.concatenate([b.tcp_seq for b in CaptureReader(capture, chunk_packets=100)])
    assert found.tolist() == expected
    assert (found >= 0).sum() > 500


def test_flow_events_are_ecs() -> None:
    meter = FlowMeter()
    for batch in CaptureReader(ATTACKS / "zeek__sshguess.pcap"):
        meter.update(batch)
    events = list(flow_events(meter.flush()))
    first = events[0]
    assert first["network"]["transport"] == "tcp"
    assert first["destination"]["port"] == 22
    assert first["event"]["duration"] >= 0
    assert first["network"]["packets"] == first["source"]["packets"] + first["destination"]["packets"]
    assert first["soc"]["logsource"]["category"] == "flow"
