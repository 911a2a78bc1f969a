"""The shared pieces of the network detectors, each checked against a plain-Python reference."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.packets import CaptureReader
from detectors.network.adminshare import SHARE_NAMES, _utf16, contains_any
from detectors.network.dnstunnel import DnsTunnelDetector, name_scores
from detectors.network.timewindows import FlowWindows, distinct_per_group, group_rows, in_networks, sorted_ips
from lab.traffic import Capture

NETWORKS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "192.168.7.0/24", "1.2.3.4/32", "fc00::/7",
                                              "2001:db8:0:1::/64", "2001:db8::/127")]


def as_row(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> np.ndarray:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}") if address.version == 4 else address
    return np.frombuffer(mapped.packed, dtype=np.uint8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6),
                          st.sampled_from([ipaddress.ip_address(a) for a in ("10.255.0.1", "1.2.3.4", "1.2.3.5",
                                                                             "2001:db8::1", "2001:db8::2")])),
                min_size=1, max_size=30))
def test_in_networks_matches_ipaddress(addresses: list) -> None:
    rows = np.stack([as_row(a) for a in addresses])
    expected = [any(a.version == n.version and a in n for n in NETWORKS) for a in addresses]
    assert in_networks(rows, NETWORKS).tolist() == expected


def test_grouping_and_distinct_counts() -> None:
    keys = np.array([5, 3, 5, 3, 9], dtype=np.uint64)
    values = np.array([1, 1, 2, 1, 7], dtype=np.uint64)
    first, groups = group_rows(keys)
    assert keys[first].tolist() == [3, 5, 9] and groups.tolist() == [1, 0, 1, 0, 2]
    assert distinct_per_group(groups, 3, values).tolist() == [1, 2, 1]
    assert group_rows(np.zeros(0, dtype=np.uint64))[0].shape == (0,)
    rows = np.stack([as_row(ipaddress.ip_address(a)) for a in ("10.0.0.2", "10.0.0.10", "10.0.0.2")])
    assert sorted_ips(rows) == ["10.0.0.2", "10.0.0.10"]


def test_windows_close_one_window_after_their_end() -> None:
    windows = FlowWindows(10)
    windows.add({"first_ts_ns": np.array([1, 12, 15]), "x": np.array([1, 2, 3])}, seen_until=15)
    assert windows.closed() == []
    windows.add({"first_ts_ns": np.zeros(0, dtype=np.int64), "x": np.zeros(0, dtype=np.int64)}, seen_until=21)
    [(bucket, columns)] = windows.closed()
    assert bucket == 0 and columns["x"].tolist() == [1]
    [(bucket, columns)] = windows.flush()
    assert bucket == 1 and columns["x"].tolist() == [2, 3]


def test_dns_name_scores() -> None:
    assert name_scores("www.example.com") == (3, 7, name_scores("www.example.com")[2])
    length, longest, entropy = name_scores("mzxw6ytboi2dqmjqgezdgnbvgy3tqojq.0001.t.cdn-sync.example")
    assert (length, longest) == (39, 32) and entropy > 3.5
    assert name_scores("localhost")[0] == 9
    assert name_scores(".") == (0, 0, 0.0)


def test_malformed_dns_query_is_counted_and_skipped(tmp_path: Path) -> None:
    capture = Capture("10.0.0.1", [ipaddress.IPv4Network("10.0.0.0/8")])
    # header says one question, the name's label runs past the end of the message
    capture.udp(1_000_000_000, "10.0.0.5", 40000, "10.0.0.53", 53, b"\x00\x01\x01\x00\x00\x01" + bytes(6) + b"\x3fab",
                None)
    capture.dns(2_000_000_000, "10.0.0.5", 40001, "10.0.0.53", "www.example.com")
    capture.write(tmp_path / "bad.pcap")
    detector = DnsTunnelDetector()
    for batch in CaptureReader(tmp_path / "bad.pcap"):
        assert detector.observe_packets(batch) == []
    assert detector.flush() == []
    assert detector.skipped == {"dns.truncated": 1}


def test_numba_search_matches_bytes_find() -> None:
    rng = np.random.default_rng(7)
    buffer = rng.integers(0, 256, 4000, dtype=np.uint8)
    pattern = _utf16("ADMIN$")
    buffer[1000:1012] = pattern
    buffer[3990:3998] = pattern[:8]  # cut by the end of its payload: no match
    offsets = np.array([0, 990, 1500, 3980, 1005], dtype=np.int64)
    lengths = np.array([500, 30, 10, 18, 3], dtype=np.int64)
    expected = [bytes(pattern) in bytes(buffer[o:o + n]) for o, n in zip(offsets, lengths, strict=True)]
    assert contains_any(buffer, offsets, lengths, SHARE_NAMES).tolist() == expected == [False, True, False, False,
                                                                                        False]
