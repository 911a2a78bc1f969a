"""The learned model of normal traffic: an IsolationForest over flow features, robust per-feature statistics to
explain what is unusual about a flow, and a per-host baseline of window features.

scikit-learn style: parameters in ``__init__``, learned state in attributes ending in ``_`` set by :meth:`fit`.
Saved with skops (no pickle) together with ``FEATURE_SET_VERSION`` and the feature names; :meth:`load` refuses a
file made for another feature set, and any type in it that is not numpy's or scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler

from detectors.anomaly.features import FEATURE_SET_VERSION, FLOW_FEATURES, HOST_FEATURES, flow_matrix, host_windows
from soc.core.errors import SocError
from soc.core.model import FlowBatch

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")
_EPS = 1e-6


class ModelError(SocError):
    """A model file is missing, unreadable, unsafe, or made for another feature set."""


class AnomalyModel:
    """Fit on flows of normal traffic; score and explain new flows and host windows."""

    def __init__(self, n_estimators: int = 200, max_samples: int = 4096, window_seconds: float = 300.0,
                 random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.window_seconds = window_seconds
        self.random_state = random_state

    # --- learning ---------------------------------------------------------------------------------------------

    def fit(self, flows: FlowBatch, host_columns: Mapping[str, np.ndarray]) -> AnomalyModel:
        """``host_columns``: the same flows as ``flow_columns(flows, all, HOST_COLUMNS)``."""
        matrix = flow_matrix(flows)
        if len(matrix) < 10:
            raise ModelError(f"{len(matrix)} flows are too few to learn normal traffic from")
        self.pipeline_ = Pipeline([
            ("scale", RobustScaler()),
            ("forest", IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(matrix)),
                                       random_state=self.random_state)),
        ]).fit(matrix)
        self.center_ = np.median(matrix, axis=0)
        low, high = np.percentile(matrix, [5, 95], axis=0)
        self.spread_ = np.maximum((high - low) / 2, np.maximum(matrix.std(axis=0), 0.05))
        self.training_scores_ = self.flow_scores(matrix)
        self.n_flows_ = len(matrix)
        hosts, _, table = host_windows(host_columns, self.window_seconds)
        self.global_mean_ = table.mean(axis=0)
        self.global_std_ = np.maximum(table.std(axis=0), 0.1)
        unique, groups = np.unique(hosts, axis=0, return_inverse=True)
        groups = groups.reshape(-1)
        counts = np.bincount(groups, minlength=len(unique)).astype(np.float64)[:, None]
        mean = np.zeros((len(unique), table.shape[1]))
        square = np.zeros_like(mean)
        np.add.at(mean, groups, table)
        np.add.at(square, groups, table ** 2)
        mean /= counts
        std = np.sqrt(np.maximum(square / counts - mean ** 2, 0))
        self.host_keys_ = unique.astype(np.uint64)
        self.host_mean_ = mean
        self.host_std_ = np.maximum(std, self.global_std_ / 2)  # few windows of a host: do not trust a tiny spread
        self.host_windows_ = counts[:, 0]
        return self

    # --- scoring ----------------------------------------------------------------------------------------------

    def flow_scores(self, matrix: np.ndarray) -> np.ndarray:
        """Higher is stranger (the negated IsolationForest score, in about 0.3 … 0.8)."""
        if not len(matrix):
            return np.zeros(0)
        return -self.pipeline_.score_samples(matrix)

    def flow_deviations(self, matrix: np.ndarray) -> np.ndarray:
        """Per flow and feature: distance from the training median in units of its training spread."""
        return (matrix - self.center_) / self.spread_

    def host_deviations(self, hosts: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Per host window and feature: distance from that host's usual value in its standard deviations (hosts
        never seen in training are compared with all hosts)."""
        mean = np.broadcast_to(self.global_mean_, table.shape).copy()
        std = np.broadcast_to(self.global_std_, table.shape).copy()
        if len(self.host_keys_) and len(hosts):
            keys = self.host_keys_.view([("h", np.uint64), ("l", np.uint64)]).reshape(-1)
            probe = np.ascontiguousarray(hosts.astype(np.uint64)).view(keys.dtype).reshape(-1)
            position = np.clip(np.searchsorted(keys, probe), 0, len(keys) - 1)
            known = keys[position] == probe
            mean[known] = self.host_mean_[position[known]]
            std[known] = self.host_std_[position[known]]
        return (table - mean) / std

    # --- persistence ------------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        state: dict[str, Any] = {
            "feature_set_version": FEATURE_SET_VERSION,
            "flow_features": list(FLOW_FEATURES),
            "host_features": list(HOST_FEATURES),
            "params": {"n_estimators": self.n_estimators, "max_samples": self.max_samples,
                       "window_seconds": self.window_seconds, "random_state": self.random_state},
            "fitted": {name: getattr(self, name) for name in _FITTED},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        sio.dump(state, path)

    @classmethod
    def load(cls, path: Path, expected_version: str = FEATURE_SET_VERSION,
             flow_features: Sequence[str] = FLOW_FEATURES, host_features: Sequence[str] = HOST_FEATURES,
             ) -> AnomalyModel:
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except FileNotFoundError:
            raise ModelError("model file not found", path=str(path)) from None
        except Exception as exc:  # skops raises zipfile, JSON and its own errors on damaged files
            raise ModelError(f"not a skops model file: {exc}", path=str(path)) from None
        unsafe = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
        if unsafe:
            raise ModelError(f"refusing to load types that are not numpy's or scikit-learn's: {', '.join(unsafe)}",
                             path=str(path))
        state = sio.load(path, trusted=untrusted)
        version = state.get("feature_set_version") if isinstance(state, dict) else None
        if version != expected_version:
            raise ModelError(f"model was trained on feature set {version!r}, this engine computes "
                             f"{expected_version!r}: retrain it (soc model train)", path=str(path))
        if state["flow_features"] != list(flow_features) or state["host_features"] != list(host_features):
            raise ModelError("model features differ from this engine's although the version matches: retrain it",
                             path=str(path))
        model = cls(**state["params"])
        for name, value in state["fitted"].items():
            setattr(model, name, value)
        return model


_FITTED = ("pipeline_", "center_", "spread_", "training_scores_", "n_flows_", "global_mean_", "global_std_",
           "host_keys_", "host_mean_", "host_std_", "host_windows_")
