"""The per-flow features both flow meters put in ``FlowBatch.features``: names, array types and meaning.

One catalogue, so the fast meter, the reference meter, the tests and the anomaly models agree on what a name means.
Directions: ``fwd`` is initiator → responder (the ``src`` of the flow), ``bwd`` the reverse, ``bi`` both.
Sizes are frame lengths on the wire (``frame.len``); times are integer nanoseconds. Statistics over fewer than
two values are 0 (std is the sample standard deviation, n − 1, as in nfstream and CICFlowMeter). Inter-arrival
times follow capture order, so a capture whose clock steps back gives negative ones. Every feature is int64 or
float64: the fast meter hands out columns of its output matrices (one row per flow) as views, without copying them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIRST_PACKETS = 8  # how many leading packets have their size and direction recorded
DIRECTIONS = ("fwd", "bwd", "bi")
# TCP flag names in bit order (bit 0 is FIN); one count per flag and direction
TCP_FLAGS = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    dtype: type[np.generic]
    doc: str


def _catalogue() -> tuple[Feature, ...]:
    features = [
        Feature("id", np.int64, "sequence number of the flow in this meter (creation order), unique per meter"),
        Feature("duration_ns", np.int64, "last packet time minus first packet time"),
    ]
    for d in DIRECTIONS:
        features += [
            Feature(f"{d}_size_min", np.int64, f"smallest frame ({d})"),
            Feature(f"{d}_size_max", np.int64, f"largest frame ({d})"),
            Feature(f"{d}_size_mean", np.float64, f"mean frame size ({d})"),
            Feature(f"{d}_size_std", np.float64, f"sample standard deviation of frame sizes ({d})"),
            Feature(f"{d}_iat_min", np.int64, f"smallest inter-arrival time, ns ({d})"),
            Feature(f"{d}_iat_max", np.int64, f"largest inter-arrival time, ns ({d})"),
            Feature(f"{d}_iat_mean", np.float64, f"mean inter-arrival time, ns ({d})"),
            Feature(f"{d}_iat_std", np.float64, f"sample standard deviation of inter-arrival times, ns ({d})"),
        ]
    for d in DIRECTIONS[:2]:
        features += [Feature(f"{d}_{flag}_count", np.int64, f"packets with TCP {flag.upper()} set ({d})")
                     for flag in TCP_FLAGS]
        features += [
            Feature(f"{d}_init_window", np.int64, f"TCP window of the first packet ({d}); -1 if none or not TCP"),
            Feature(f"{d}_data_packets", np.int64, f"packets carrying transport payload ({d})"),
        ]
    for k in range(1, FIRST_PACKETS + 1):
        features += [
            Feature(f"first_size_{k}", np.int64, f"frame size of packet {k} of the flow; 0 if it has fewer"),
            Feature(f"first_dir_{k}", np.int64, f"direction of packet {k}: 1 forward, -1 backward, 0 none"),
        ]
    return tuple(features)


FEATURES: tuple[Feature, ...] = _catalogue()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


def empty_features() -> dict[str, np.ndarray]:
    return {f.name: np.zeros(0, f.dtype) for f in FEATURES}
