"""Scoring in the pipeline: flows the model finds stranger than anything in its training traffic, and host windows
far from that host's baseline, reported per host and window with the features that made them unusual.

Settings (and the model file) are in ``detectors.anomaly`` of soc.yaml; with no model file the detector is off.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from detectors.anomaly.features import FLOW_FEATURES, HOST_COLUMNS, HOST_FEATURES, flow_matrix, host_windows
from detectors.anomaly.model import AnomalyModel
from detectors.anomaly.settings import AnomalySettings
from detectors.network.timewindows import (
    SAMPLE,
    Columns,
    Finding,
    WindowedFlowDetector,
    group_rows,
    ip_words,
    sample_flows,
    sorted_ips,
)
from soc.core.model import FlowBatch, Rule, Severity, ip_to_str

RULE = Rule(
    id="soc-anomaly",
    name="Anomalous traffic",
    ruleset="soc-anomaly",
    description="Flows unlike any in the learned normal traffic, or a host far from its own baseline.",
)
_EXPLAIN = 3  # features named per flow


class AnomalyDetector(WindowedFlowDetector):
    rule, technique = RULE, None
    columns = HOST_COLUMNS
    settings: AnomalySettings

    def __init__(self, model: AnomalyModel, settings: AnomalySettings | None = None) -> None:
        settings = (settings or AnomalySettings()).model_copy(update={"window_seconds": model.window_seconds})
        super().__init__(settings)
        self.model = model
        self.threshold = float(model.training_scores_.max()) + settings.score_margin

    def select(self, flows: FlowBatch) -> np.ndarray:
        return np.ones(len(flows), dtype=bool)  # a host window is judged on all its flows

    def extra_columns(self, flows: FlowBatch, rows: np.ndarray) -> Columns:
        matrix = flow_matrix(flows)[rows]
        deviations = self.model.flow_deviations(matrix)
        top = np.argsort(-np.abs(deviations), axis=1, kind="stable")[:, :_EXPLAIN]
        return {"score": self.model.flow_scores(matrix), "top": top,
                "top_deviation": np.take_along_axis(deviations, top, axis=1)}

    def judge(self, columns: Columns) -> list[Finding]:
        s = self.settings
        hosts, _, table = host_windows(columns, self.model.window_seconds)
        host_dev = self.model.host_deviations(hosts, table)
        flows_per_host = np.expm1(table[:, HOST_FEATURES.index("log_flows")])
        first, groups = group_rows(ip_words(columns["src_ip"]))
        anomalous = columns["score"] > self.threshold
        findings = []
        for g in range(len(first)):
            rows = np.flatnonzero(groups == g)
            strange = rows[anomalous[rows]]
            h = int(np.flatnonzero((hosts == ip_words(columns["src_ip"][first[g]:first[g] + 1])).all(axis=1))[0])
            unusual_host = [(HOST_FEATURES[f], float(table[h, f]), float(host_dev[h, f]))
                            for f in np.flatnonzero(np.abs(host_dev[h]) >= s.host_min_deviation).tolist()]
            if flows_per_host[h] < s.host_min_flows:
                unusual_host = []
            if len(strange) < s.min_flows and not unusual_host:
                continue
            findings.append(self._finding(columns, rows, strange, unusual_host))
        return findings

    def _finding(self, columns: Columns, rows: np.ndarray, strange: np.ndarray,
                 unusual_host: list[tuple[str, float, float]]) -> Finding:
        host = ip_to_str(columns["src_ip"][rows[0]])
        named: Counter[str] = Counter()
        deviation: dict[str, list[float]] = {}
        for i in strange.tolist():
            for f, d in zip(columns["top"][i].tolist(), columns["top_deviation"][i].tolist(), strict=True):
                named[FLOW_FEATURES[f]] += 1
                deviation.setdefault(FLOW_FEATURES[f], []).append(d)
        flow_reasons = [{"feature": name, "flows": n, "median_deviation": round(float(np.median(deviation[name])), 2)}
                        for name, n in named.most_common(_EXPLAIN)]
        host_reasons = [{"feature": name, "value": round(value, 3), "deviation": round(dev, 2)}
                        for name, value, dev in sorted(unusual_host, key=lambda r: -abs(r[2]))]
        parts = []
        if len(strange):
            parts.append(f"{len(strange)} flow(s) unlike the training traffic (most unusual: "
                         + ", ".join(f"{r['feature']} {r['median_deviation']:+.1f}" for r in flow_reasons) + ")")
        if host_reasons:
            parts.append("host window far from its baseline ("
                         + ", ".join(f"{r['feature']} {r['deviation']:+.1f} sd" for r in host_reasons[:_EXPLAIN]) + ")")
        shown = strange if len(strange) else rows
        order = shown[np.argsort(-columns["score"][shown], kind="stable")]
        top_score = float(columns["score"][order[0]])
        return Finding(
            subject=host, source=host, related=sorted_ips(columns["dst_ip"][order])[:SAMPLE],
            severity=Severity.MEDIUM if len(strange) >= 10 * self.settings.min_flows else Severity.LOW,
            first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
            count=len(strange) or len(rows),
            message=f"{host}: " + "; ".join(parts),
            evidence={"anomalous_flows": len(strange), "threshold": round(self.threshold, 4),
                      "max_score": round(top_score, 4), "flow_features": flow_reasons,
                      "host_features": host_reasons, "flows": sample_flows(columns, order),
                      "scores": [round(float(x), 4) for x in columns["score"][order[:SAMPLE]]]},
        )
