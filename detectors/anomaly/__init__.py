"""Anomaly models: scikit-learn models of normal traffic (flows and per-host windows) that score new traffic."""

from detectors.anomaly.detector import AnomalyDetector
from detectors.anomaly.features import FEATURE_SET_VERSION, FLOW_FEATURES, HOST_FEATURES
from detectors.anomaly.model import AnomalyModel, ModelError
from detectors.anomaly.settings import AnomalySettings

__all__ = ["FEATURE_SET_VERSION", "FLOW_FEATURES", "HOST_FEATURES", "AnomalyDetector", "AnomalyModel",
           "AnomalySettings", "ModelError"]
