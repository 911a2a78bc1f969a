"""Scheduled jobs (apscheduler): the store's jobs (``soc.jobs``: summaries, retention, what other parts register)
and the detectors' (scheduled Sigma queries, model retraining). `soc jobs` lists them; `soc jobs run NAME` runs one
now; `soc jobs start` runs the scheduler in the foreground.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from detectors.anomaly.settings import AnomalySettings
from soc.audit import AuditLog
from soc.core.config import Settings
from soc.jobs import EXTRA_JOBS, Job, daily_summary, retention, weekly_report
from soc.store.base import AlertStore


def _anomaly(settings: Settings) -> AnomalySettings:
    return settings.plugin_settings("detectors", "anomaly", AnomalySettings)


def retrain_model(settings: Settings, store: AlertStore) -> dict[str, Any]:
    """Relearn the anomaly model from ``detectors.anomaly.baseline_pcaps``; the detector loads it at its next start."""
    from detectors.anomaly.train import train  # scikit-learn loads only for this job

    anomaly = _anomaly(settings)
    assert anomaly.model_path is not None
    out = settings.resolve(anomaly.model_path)
    model = train([settings.resolve(p) for p in anomaly.baseline_pcaps], out)
    AuditLog(store).append("soc scheduler", "model.retrained", "model:anomaly", {"path": str(out),
                                                                                 "flows": model.n_flows_})
    return {"model": str(out), "flows": model.n_flows_}


def jobs(settings: Settings) -> dict[str, Job]:
    s = settings.scheduler
    builtin = [
        Job("daily-summary", s.daily_summary, "daily monitoring summary per system (posture check C6)", daily_summary),
        Job("weekly-report", s.weekly_report, "weekly report to each system owner (posture check C6)", weekly_report),
        Job("retention", s.retention, "archive and delete alerts past each system's retention (C7)", retention),
    ]
    anomaly = _anomaly(settings)
    if anomaly.model_path and anomaly.baseline_pcaps:
        builtin.append(Job("anomaly-retrain", anomaly.retrain_cron,
                           f"relearn the anomaly model {anomaly.model_path} from the baseline captures", retrain_model))
    for scheduled in settings.sigma.scheduled:
        from soc.engine.scheduled_detections import scheduled_job  # pySigma loads only when Sigma jobs are configured

        builtin.append(Job(f"sigma-{scheduled.name}", f"*/{scheduled.every_minutes} * * * *",
                           f"Sigma rules {', '.join(scheduled.rules)} as Lucene queries in Elasticsearch "
                           f"(look-back {scheduled.lookback_minutes} min)", scheduled_job(settings, scheduled)))
    return {job.name: job for job in builtin} | EXTRA_JOBS


def next_runs(settings: Settings, now: datetime | None = None) -> list[tuple[Job, datetime | None]]:
    now = now or datetime.now(tz=UTC)
    result = []
    for job in jobs(settings).values():
        trigger = CronTrigger.from_crontab(job.cron, timezone=settings.scheduler.timezone)
        result.append((job, trigger.get_next_fire_time(None, now)))
    return result


def run_scheduler(settings: Settings, store: AlertStore) -> None:
    """Run every job on its schedule until interrupted."""
    scheduler = BlockingScheduler(timezone=settings.scheduler.timezone)
    for job in jobs(settings).values():
        scheduler.add_job(job.run, CronTrigger.from_crontab(job.cron, timezone=settings.scheduler.timezone),
                          args=(settings, store), id=job.name, name=job.description, coalesce=True,
                          max_instances=1, misfire_grace_time=3600)
    scheduler.start()
