"""Anomaly models: learned from a baseline scenario, saved with skops and a feature-set version, refused on a
mismatch; scores separate attack flows from background, alerts name the unusual features; retraining job."""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from apscheduler.schedulers.background import BackgroundScheduler

from detectors.anomaly.detector import AnomalyDetector
from detectors.anomaly.features import FEATURE_SET_VERSION
from detectors.anomaly.model import AnomalyModel, ModelError
from detectors.anomaly.settings import AnomalySettings, anomaly_detector
from detectors.anomaly.train import RETRAIN_JOB_ID, add_retraining_job, train
from lab.evaluate import evaluate_capture
from lab.labels import CaptureLabels
from lab.scenarios import generate
from soc.core.config import Settings
from soc.core.plugins import PluginContext


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    baseline, _ = generate("baseline", folder, seed=1003, duration=300)  # another seed than the scenarios
    train([baseline], folder / "model.skops")
    return folder / "model.skops"


def test_saved_model_loads_with_its_learned_state(model_file: Path) -> None:
    model = AnomalyModel.load(model_file)
    assert model.n_flows_ > 500
    assert model.flow_scores(np.zeros((0, len(model.center_)))).shape == (0,)
    assert len(model.host_keys_) == len(model.host_mean_) > 40  # every lab host that opened a connection


def test_model_of_another_feature_set_is_refused(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=f"trained on feature set '{FEATURE_SET_VERSION}'.*computes 'flow-host-v2'"):
        AnomalyModel.load(model_file, expected_version="flow-host-v2")
    with pytest.raises(ModelError, match="features differ"):
        AnomalyModel.load(model_file, flow_features=("log_packets_fwd",))


def test_unsafe_or_damaged_files_are_refused(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.skops"
    damaged.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a skops model file"):
        AnomalyModel.load(damaged)
    with pytest.raises(ModelError, match="model file not found"):
        AnomalyModel.load(tmp_path / "missing.skops")
    unsafe = tmp_path / "unsafe.skops"
    sio.dump({"feature_set_version": FEATURE_SET_VERSION, "thing": fractions.Fraction(1, 3)}, unsafe)
    with pytest.raises(ModelError, match=r"refusing to load types.*fractions\.Fraction"):
        AnomalyModel.load(unsafe)


def test_scores_rank_attack_flows_above_background(model_file: Path,
                                                   scenarios: dict[str, tuple[Path, CaptureLabels]]) -> None:
    model = AnomalyModel.load(model_file)
    aucs = {}
    for name in ("syn_scan", "dns_tunnel", "exfiltration", "lateral_movement", "ssh_bruteforce"):
        pcap, labels = scenarios[name]
        aucs[name] = evaluate_capture(pcap, labels, Settings(), model).auc
    for name, auc in aucs.items():
        assert auc["flows"] is not None and auc["flows"] > 0.85, (name, auc)
        assert auc["hosts"] is not None and auc["hosts"] > 0.85, (name, auc)


def test_alert_explains_the_unusual_host_features(model_file: Path,
                                                  scenarios: dict[str, tuple[Path, CaptureLabels]]) -> None:
    pcap, labels = scenarios["syn_scan"]
    result = evaluate_capture(pcap, labels, Settings(), AnomalyModel.load(model_file))
    [alert] = [a for a in result.alerts if a.rule.id == "soc-anomaly"]
    assert alert.group_key == "198.51.100.7"
    features = [r["feature"] for r in alert.evidence["host_features"]]
    assert "log_ports" in features
    assert "log_ports" in alert.message and "sd" in alert.message
    baseline_pcap, baseline_labels = scenarios["baseline"]
    quiet = evaluate_capture(baseline_pcap, baseline_labels, Settings(), AnomalyModel.load(model_file))
    assert quiet.alerts == []


def test_detector_is_off_without_a_model_and_loads_the_configured_one(model_file: Path) -> None:
    context = PluginContext(Settings(base_dir=model_file.parent))
    assert anomaly_detector(AnomalySettings(), context) is None
    detector = anomaly_detector(AnomalySettings(model_path=model_file.name), context)
    assert isinstance(detector, AnomalyDetector)
    assert detector.threshold > float(detector.model.training_scores_.max())


def test_retraining_job_is_scheduled_by_cron(model_file: Path) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    settings = AnomalySettings(model_path="model.skops", baseline_pcaps=["normal.pcap"], retrain_cron="30 2 * * 1")
    job = add_retraining_job(scheduler, settings, model_file.parent)
    assert job.id == RETRAIN_JOB_ID
    assert str(job.trigger) == "cron[month='*', day='*', day_of_week='1', hour='2', minute='30']"
    assert job.args == ([model_file.parent / "normal.pcap"], model_file.parent / "model.skops")
    with pytest.raises(ModelError, match=r"needs detectors\.anomaly\.model_path and baseline_pcaps"):
        add_retraining_job(scheduler, AnomalySettings(), model_file.parent)
