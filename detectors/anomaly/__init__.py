"""Anomaly models: scikit-learn models of normal traffic (flows and per-host windows) that score new traffic.

``detector`` (AnomalyDetector), ``model`` (AnomalyModel, ModelError), ``features``, ``settings`` (AnomalySettings).
Nothing is imported here: soc.core.config reads the settings on every command, and scikit-learn takes seconds to load.
"""
