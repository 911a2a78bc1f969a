"""Detectors: network detectors, anomaly models and the Sigma engine turn events into alerts."""
