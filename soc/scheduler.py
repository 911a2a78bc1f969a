"""Scheduled jobs (apscheduler): daily and weekly monitoring summaries per system, retention, and the jobs other
parts register (scheduled Sigma queries, model retraining). `soc jobs` lists them; `soc jobs run NAME` runs one
now; `soc jobs start` runs the scheduler in the foreground.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from soc.audit import AuditLog
from soc.core.config import Settings
from soc.core.model import iso_now
from soc.store.base import AlertQuery, AlertStore

REPORT_KIND = "monitoring_report"


@dataclass(slots=True)
class Job:
    name: str
    cron: str
    description: str
    run: Callable[[Settings, AlertStore], dict[str, Any]]


# Other parts add their jobs here (name -> Job) when imported; the built-in ones are below.
EXTRA_JOBS: dict[str, Job] = {}


def _summary(settings: Settings, store: AlertStore, period: str, days: int,
             now: datetime | None = None) -> dict[str, Any]:
    """Alerts of the last ``days`` per system, by severity and status; one report record per system."""
    end = now or datetime.now(tz=UTC)
    start = end - timedelta(days=days)
    alerts = [a for a in store.search(AlertQuery(limit=100000, include_suppressed=True))
              if start.isoformat()[:19] <= a.first_seen[:19] <= end.isoformat()[:19]]
    written = []
    for system in settings.inventory:
        mine = [a for a in alerts if a.system == system.name]
        report = {
            "system": system.name, "period": period, "from": start.isoformat(), "to": end.isoformat(),
            "created_at": iso_now(), "alerts": len(mine),
            "by_severity": dict(Counter(a.severity.label for a in mine)),
            "by_status": dict(Counter(a.status.value for a in mine)),
            "open": sum(1 for a in mine if a.status.value != "closed"),
        }
        report_id = f"{period}-{system.name}-{end:%Y%m%d}"
        store.put_record(REPORT_KIND, report_id, report)
        written.append(report_id)
    AuditLog(store).append("soc scheduler", f"report.{period}", "reports", {"reports": written})
    return {"reports": written}


def daily_summary(settings: Settings, store: AlertStore) -> dict[str, Any]:
    return _summary(settings, store, "daily", 1)


def weekly_report(settings: Settings, store: AlertStore) -> dict[str, Any]:
    return _summary(settings, store, "weekly", 7)


def retention(settings: Settings, store: AlertStore, now: datetime | None = None) -> dict[str, Any]:
    """Archive (JSON lines) and delete alerts older than their system's retention; recorded in the audit log."""
    now = now or datetime.now(tz=UTC)
    days_of = {s.name: s.retention_days or settings.scheduler.default_retention_days for s in settings.inventory}
    expired = [
        a for a in store.search(AlertQuery(limit=100000, include_suppressed=True))
        if a.first_seen[:19] < (now - timedelta(days=days_of.get(a.system or "",
                                                                settings.scheduler.default_retention_days)))
        .isoformat()[:19]
    ]
    if not expired:
        return {"archived": 0, "deleted": 0}
    archive_dir = settings.resolve(settings.scheduler.archive_dir)
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / f"alerts-{now:%Y%m%dT%H%M%S}.jsonl"
    with open(archive, "a", encoding="utf-8") as handle:
        for alert in expired:
            handle.write(json.dumps(alert.to_ecs(), sort_keys=True) + "\n")
    deleted = store.delete_alerts([a.id for a in expired])
    AuditLog(store).append("soc scheduler", "retention.applied", "alerts",
                           {"archive": str(archive), "deleted": deleted, "alert_ids": [a.id for a in expired]})
    return {"archived": len(expired), "deleted": deleted, "archive": str(archive)}


def retrain_model(settings: Settings, store: AlertStore) -> dict[str, Any]:
    """Relearn the anomaly model from ``detectors.anomaly.baseline_pcaps``; the detector loads it at its next start."""
    from detectors.anomaly.train import train  # scikit-learn loads only for this job

    anomaly = settings.detectors.anomaly
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
    anomaly = settings.detectors.anomaly
    if anomaly.model_path and anomaly.baseline_pcaps:
        builtin.append(Job("anomaly-retrain", anomaly.retrain_cron,
                           f"relearn the anomaly model {anomaly.model_path} from the baseline captures", retrain_model))
    for scheduled in settings.sigma.scheduled:
        from soc.scheduled_detections import scheduled_job  # pySigma loads only when Sigma jobs are configured

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
