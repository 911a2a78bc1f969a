"""Learning the anomaly model from captures of normal traffic, and the scheduled job that relearns it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from collectors.flows import FlowMeter
from collectors.flows.reference import flows_to_batch
from collectors.packets import CaptureReader
from detectors.anomaly.features import HOST_COLUMNS
from detectors.anomaly.model import AnomalyModel, ModelError
from detectors.anomaly.settings import AnomalySettings
from detectors.network.timewindows import flow_columns
from soc.core.model import FlowBatch

log = logging.getLogger("detectors.anomaly")
RETRAIN_JOB_ID = "soc-anomaly-retrain"


def read_flows(paths: Sequence[Path], idle_timeout: float = 120.0, active_timeout: float = 1800.0) -> FlowBatch:
    """Every flow of the captures, as one batch (each capture metered on its own)."""
    batches = []
    for path in paths:
        meter = FlowMeter(idle_timeout, active_timeout)
        reader = CaptureReader(path)
        batches += [meter.update(batch) for batch in reader]
        batches.append(meter.flush())
        if reader.error is not None:
            log.warning("%s", reader.error)
    return concat_flows(batches)


def concat_flows(batches: Sequence[FlowBatch]) -> FlowBatch:
    parts = [b for b in batches if len(b)]
    if not parts:
        return flows_to_batch([])
    names = [f.name for f in dataclasses.fields(FlowBatch) if f.name != "features"]
    common = set.intersection(*(set(b.features) for b in parts))
    merged = {name: np.concatenate([getattr(b, name) for b in parts]) for name in names}
    features = {name: np.concatenate([b.features[name] for b in parts]) for name in sorted(common)}
    return FlowBatch(**merged, features=features)


def train(paths: Sequence[Path], out: Path, model: AnomalyModel | None = None) -> AnomalyModel:
    """Learn from ``paths`` and save to ``out``; the file is replaced only once the new model is complete."""
    flows = read_flows(paths)
    model = (model or AnomalyModel()).fit(flows, flow_columns(flows, np.arange(len(flows)), HOST_COLUMNS))
    partial = out.with_name(out.name + ".partial")
    model.save(partial)
    partial.replace(out)
    return model


def add_retraining_job(scheduler: BaseScheduler, settings: AnomalySettings, base_dir: Path) -> Job:
    """Relearn the model from ``baseline_pcaps`` on ``retrain_cron``; the running detector picks the new file up
    at its next start. A failed run is logged and the old model stays."""
    if not settings.model_path or not settings.baseline_pcaps:
        raise ModelError("retraining needs detectors.anomaly.model_path and baseline_pcaps")
    out = base_dir / settings.model_path
    paths = [base_dir / p for p in settings.baseline_pcaps]
    return scheduler.add_job(_retrain, CronTrigger.from_crontab(settings.retrain_cron, timezone="UTC"),
                             args=[paths, out], id=RETRAIN_JOB_ID, replace_existing=True, coalesce=True,
                             max_instances=1)


def _retrain(paths: list[Path], out: Path) -> None:
    try:
        model = train(paths, out)
        log.info("anomaly model relearned from %d flows into %s", model.n_flows_, out)
    except Exception:  # a scheduled job must never take the scheduler down; the old model stays in place
        log.exception("anomaly model retraining failed; keeping %s", out)
