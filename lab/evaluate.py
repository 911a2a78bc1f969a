"""Scoring detections against labels: per capture and detector, recall over the labelled attacks, precision over
the alerts, background flows wrongly accused, time to detect; ROC AUC of the anomaly model on labelled flows.

Definitions (also printed by ``soc lab eval``):
- an alert *matches* an attack when its rule is the attack's detector, the attack's subject address is among the
  alert's addresses (group key, source, destination, related), and their times overlap (60 s of slack);
- *recall* = attacks matched by at least one alert / attacks; *precision* = matching alerts / alerts;
- *false-positive flows* = background flows (not labelled part of an attack) that have an endpoint equal to the
  subject of a non-matching alert within its first/last seen; the *FP rate* divides them by all background flows;
- *time to detect* = capture time of the newest packet read when the first matching alert came out, minus the
  attack's start.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from detectors.anomaly.detector import RULE as ANOMALY_RULE
from detectors.anomaly.detector import AnomalyDetector
from detectors.anomaly.features import HOST_COLUMNS, flow_matrix, host_windows
from detectors.anomaly.model import AnomalyModel
from detectors.anomaly.settings import AnomalySettings
from detectors.anomaly.train import concat_flows
from detectors.network.timewindows import flow_columns
from lab.labels import AttackLabel, CaptureLabels
from lab.replay import replay, with_small_batches
from lab.traffic import flow_key
from soc.core.config import Settings
from soc.core.model import Alert, FlowBatch, get_field, ip_to_str
from soc.store.sqlite import SqliteStore

_NS = 1_000_000_000
SLACK_NS = 60 * _NS


def alert_addresses(alert: Alert) -> set[str]:
    found = {alert.group_key}
    for name in ("source.ip", "destination.ip"):
        value = get_field(alert.ecs, name)
        if value:
            found.add(value)
    found.update(get_field(alert.ecs, "related.ip") or [])
    return found


def _iso_ns(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000) * 1000


def matches(alert: Alert, attack: AttackLabel) -> bool:
    """Whether ``alert`` reports ``attack``; the anomaly detector names no attack class, so any attack whose
    attacker or subject it points at counts for it."""
    addresses = alert_addresses(alert)
    if alert.rule.id == ANOMALY_RULE.id:
        if not addresses & {attack.subject, attack.attacker}:
            return False
    elif alert.rule.id != attack.detector or attack.subject not in addresses:
        return False
    if not attack.start_ns:  # a real capture labelled as a whole
        return True
    return _iso_ns(alert.first_seen) <= attack.end_ns + SLACK_NS and _iso_ns(alert.last_seen) >= (
        attack.start_ns - SLACK_NS)


@dataclass(slots=True)
class DetectorScore:
    capture: str
    detector: str
    attacks: int = 0
    detected: int = 0
    alerts: int = 0
    true_alerts: int = 0
    fp_flows: int = 0
    background_flows: int | None = None  # None: the capture has no flow labels
    ttd_seconds: float | None = None

    @property
    def recall(self) -> float | None:
        return self.detected / self.attacks if self.attacks else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def fp_rate(self) -> float | None:
        return self.fp_flows / self.background_flows if self.background_flows else None


@dataclass(slots=True)
class CaptureResult:
    labels: CaptureLabels
    flows: int
    scores: list[DetectorScore]
    alerts: list[Alert]
    auc: dict[str, float | None] = field(default_factory=dict)  # "flows" (IsolationForest), "hosts" (baseline)

    @property
    def missed(self) -> list[AttackLabel]:
        return [a for a in self.labels.attacks if not any(matches(alert, a) for alert in self.alerts)]


def _flow_texts(flows: FlowBatch) -> tuple[list[str], list[str], list[str]]:
    src = [ip_to_str(a) for a in flows.src_ip]
    dst = [ip_to_str(a) for a in flows.dst_ip]
    keys = [flow_key(s, int(sp), d, int(dp), int(p)) for s, sp, d, dp, p in zip(
        src, flows.src_port.tolist(), dst, flows.dst_port.tolist(), flows.protocol.tolist(), strict=True)]
    return src, dst, keys


def evaluate_capture(pcap: Path, labels: CaptureLabels, settings: Settings, model: AnomalyModel | None = None,
                     detectors: Sequence[str] = ()) -> CaptureResult:
    """Replay ``pcap`` through the pipeline and score the alerts against ``labels``. ``detectors``: rule ids that
    get a row even when silent (the expected ones always do)."""
    anomaly = settings.plugin_settings("detectors", "anomaly", AnomalySettings)
    extra = [AnomalyDetector(model, anomaly)] if model is not None else []
    settings = with_small_batches(settings)  # detection times to the second, not to the end of a lab capture
    with tempfile.TemporaryDirectory(prefix="soc-lab-") as tmp:
        store = SqliteStore(Path(tmp) / "alerts.db")
        try:
            lab = replay([pcap], settings, store, keep_flows=True, extra_observers=extra)
        finally:
            store.close()
    alerts = lab.raw_alerts
    flows = concat_flows(lab.recorder.flows)
    src, dst, keys = _flow_texts(flows)
    attack_keys = labels.attack_flow_keys()
    is_attack = np.array([k in attack_keys for k in keys], dtype=bool)
    flow_labelled = bool(attack_keys) or labels.seed is not None
    first_ts = flows.first_ts_ns
    always = {*detectors, *([ANOMALY_RULE.id] if model is not None else [])}
    rule_ids = sorted({a.rule.id for a in alerts} | {a.detector for a in labels.attacks} | always)
    scores = []
    for rule_id in rule_ids:
        own = [a for a in alerts if a.rule.id == rule_id]
        attacks = [a for a in labels.attacks if a.detector == rule_id or rule_id == ANOMALY_RULE.id]
        score = DetectorScore(labels.capture, rule_id, attacks=len(attacks), alerts=len(own),
                              background_flows=int((~is_attack).sum()) if flow_labelled else None)
        score.true_alerts = sum(any(matches(alert, attack) for attack in attacks) for alert in own)
        for attack in attacks:
            hits = [lab.detected_ns[alert.id] for alert in own if matches(alert, attack)]
            if hits:
                score.detected += 1
                if attack.start_ns:
                    ttd = (min(hits) - attack.start_ns) / _NS
                    score.ttd_seconds = ttd if score.ttd_seconds is None else max(score.ttd_seconds, ttd)
        accused = np.zeros(len(keys), dtype=bool)
        for alert in own:
            if any(matches(alert, attack) for attack in attacks):
                continue
            subjects = {alert.group_key, get_field(alert.ecs, "source.ip"), get_field(alert.ecs, "destination.ip")}
            ends = np.array([s in subjects or d in subjects for s, d in zip(src, dst, strict=True)], dtype=bool)
            accused |= ends & (first_ts >= _iso_ns(alert.first_seen)) & (first_ts <= _iso_ns(alert.last_seen))
        score.fp_flows = int((accused & ~is_attack).sum())
        scores.append(score)
    result = CaptureResult(labels, len(flows), scores, alerts)
    if model is not None:
        result.auc = anomaly_auc(model, flows, is_attack, labels)
    return result


def anomaly_auc(model: AnomalyModel, flows: FlowBatch, is_attack: np.ndarray,
                labels: CaptureLabels) -> dict[str, float | None]:
    """ROC AUC of the flow scores against flow labels, and of the host-window deviations against the attackers'
    and subjects' windows; None where a capture has only one class."""
    auc: dict[str, float | None] = {"flows": None, "hosts": None}
    if len(flows) and 0 < is_attack.sum() < len(is_attack):
        auc["flows"] = float(roc_auc_score(is_attack, model.flow_scores(flow_matrix(flows))))
    hosts, _, table = host_windows(flow_columns(flows, np.arange(len(flows)), HOST_COLUMNS), model.window_seconds)
    if len(hosts):
        named = {a for attack in labels.attacks for a in (attack.attacker, attack.subject)}
        host_text = [ip_to_str(np.array(h, dtype=">u8").view(np.uint8)) for h in hosts.tolist()]
        bad = np.array([h in named for h in host_text], dtype=bool)
        if 0 < bad.sum() < len(bad):
            deviation = np.abs(model.host_deviations(hosts, table)).max(axis=1)
            auc["hosts"] = float(roc_auc_score(bad, deviation))
    return auc

