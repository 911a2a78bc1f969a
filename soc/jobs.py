"""The jobs that work on the store alone: daily and weekly monitoring summaries per system and retention, and the
registry (``EXTRA_JOBS``) where other parts add theirs (the posture reports). The scheduler that runs them, with
the jobs that need detectors (scheduled Sigma queries, model retraining), is ``soc.engine.scheduler``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
