"""The features the anomaly models see: one row per flow, and one row per host and window.

``FEATURE_SET_VERSION`` names this exact list; a saved model carries it and is refused by code with another, so
change the version whenever a feature is added, removed, reordered or computed differently.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from detectors.network.timewindows import NS, group_rows, ip_words
from soc.core.model import FlowBatch, TcpFlag

FEATURE_SET_VERSION = "flow-host-v1"

FLOW_FEATURES: tuple[str, ...] = (
    "log_packets_fwd", "log_packets_bwd", "log_bytes_fwd", "log_bytes_bwd", "log_payload_fwd", "log_payload_bwd",
    "log_duration_ms", "tcp", "udp", "other_transport", "service_port", "answered", "syn_fwd", "rst_fwd", "rst_bwd",
    "fin_fwd", "log_mean_size_fwd", "log_mean_size_bwd", "log_mean_iat_ms",
)
HOST_FEATURES: tuple[str, ...] = (
    "log_flows", "log_peers", "log_ports", "log_bytes_out", "log_bytes_in", "unanswered_share", "mean_log_duration",
)


def _flag(flags: np.ndarray, bit: TcpFlag) -> np.ndarray:
    return ((flags.astype(np.int64) & int(bit)) != 0).astype(np.float64)


def flow_matrix(flows: FlowBatch) -> np.ndarray:
    """(n, len(FLOW_FEATURES)) float64, in the order of ``FLOW_FEATURES``."""
    n = len(flows)
    features = flows.features

    def extra(name: str) -> np.ndarray:  # per-flow statistics of the meter; absent in an old FlowBatch
        return features[name].astype(np.float64) if name in features and len(features[name]) == n else np.zeros(n)

    duration_ms = (flows.last_ts_ns - flows.first_ts_ns).astype(np.float64) / 1e6
    columns = [
        np.log1p(flows.packets_fwd.astype(np.float64)), np.log1p(flows.packets_bwd.astype(np.float64)),
        np.log1p(flows.bytes_fwd.astype(np.float64)), np.log1p(flows.bytes_bwd.astype(np.float64)),
        np.log1p(flows.payload_bytes_fwd.astype(np.float64)), np.log1p(flows.payload_bytes_bwd.astype(np.float64)),
        np.log1p(np.maximum(duration_ms, 0)),
        (flows.protocol == 6).astype(np.float64), (flows.protocol == 17).astype(np.float64),
        ((flows.protocol != 6) & (flows.protocol != 17)).astype(np.float64),
        (flows.dst_port < 1024).astype(np.float64), (flows.packets_bwd > 0).astype(np.float64),
        _flag(flows.tcp_flags_fwd, TcpFlag.SYN), _flag(flows.tcp_flags_fwd, TcpFlag.RST),
        _flag(flows.tcp_flags_bwd, TcpFlag.RST), _flag(flows.tcp_flags_fwd, TcpFlag.FIN),
        np.log1p(np.maximum(extra("fwd_size_mean"), 0)), np.log1p(np.maximum(extra("bwd_size_mean"), 0)),
        np.log1p(np.maximum(extra("bi_iat_mean"), 0) / 1e6),
    ]
    return np.column_stack(columns) if n else np.zeros((0, len(FLOW_FEATURES)))


HOST_COLUMNS = ("bytes_fwd", "bytes_bwd", "packets_bwd")  # FlowBatch fields host_windows needs besides the keys


def host_windows(flows: Mapping[str, np.ndarray], window_seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (initiating host, window) of flow columns (``flow_columns(..., HOST_COLUMNS)``): (host words (m, 2)
    uint64, window index (m,), features (m, len(HOST_FEATURES)))."""
    if not len(flows["first_ts_ns"]):
        return np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), np.zeros((0, len(HOST_FEATURES)))
    hosts = ip_words(flows["src_ip"])
    buckets = flows["first_ts_ns"] // int(window_seconds * NS)
    first, groups = group_rows(hosts, buckets.astype(np.uint64))
    m = len(first)

    def per_group(values: np.ndarray) -> np.ndarray:
        return np.bincount(groups, weights=values.astype(np.float64), minlength=m)

    def distinct(*values: np.ndarray) -> np.ndarray:
        pair_first, _ = group_rows(groups.astype(np.uint64), *values)
        return np.bincount(groups[pair_first], minlength=m).astype(np.float64)

    count = per_group(np.ones(len(hosts)))
    duration = np.log1p(np.maximum((flows["last_ts_ns"] - flows["first_ts_ns"]).astype(np.float64) / 1e6, 0))
    matrix = np.column_stack([
        np.log1p(count), np.log1p(distinct(ip_words(flows["dst_ip"]))), np.log1p(distinct(flows["dst_port"])),
        np.log1p(per_group(flows["bytes_fwd"])), np.log1p(per_group(flows["bytes_bwd"])),
        per_group(flows["packets_bwd"] == 0) / count, per_group(duration) / count,
    ])
    return hosts[first], buckets[first], matrix
