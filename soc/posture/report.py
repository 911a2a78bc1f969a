"""The weekly posture report of each system (HTML, kept as a ``posture_report`` record the owner reads in the
console), and the scheduled jobs that keep the daily score (the trend) and write the weekly reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from soc.audit import AuditLog
from soc.core.config import Settings
from soc.jobs import EXTRA_JOBS, Job
from soc.posture.charts import bar_chart, line_chart
from soc.posture.evaluate import PostureEvaluator, SystemPosture
from soc.store.base import AlertStore

REPORT_KIND = "posture_report"
_ENV = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent), autoescape=True)


def charts(posture: SystemPosture) -> dict[str, Markup]:
    """The SVG charts of a posture (markup built from numbers and escaped labels)."""
    return {
        "score_chart": Markup(line_chart([(t["date"], t["score"]) for t in posture.trend], "score trend")),
        "alert_chart": Markup(bar_chart([(d, float(n)) for d, n in posture.alerts_by_day], "alerts per day")),
    }


def render_report(posture: SystemPosture) -> str:
    return _ENV.get_template("report.html").render(p=posture, **charts(posture))


def weekly_posture_reports(settings: Settings, store: AlertStore, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(tz=UTC)
    written = []
    for posture in PostureEvaluator(settings, store).record_scores(now):
        report_id = f"{posture.system}-{now:%Y%m%d}"
        store.put_record(REPORT_KIND, report_id, {"system": posture.system, "created_at": posture.evaluated_at,
                                                  "score": posture.score, "html": render_report(posture)})
        written.append(report_id)
    AuditLog(store).append("soc scheduler", "report.posture", "reports", {"reports": written})
    return {"reports": written}


def daily_posture_scores(settings: Settings, store: AlertStore) -> dict[str, Any]:
    return {"scores": {p.system: p.score for p in PostureEvaluator(settings, store).record_scores()}}


EXTRA_JOBS["posture-score"] = Job("posture-score", "45 7 * * *", "daily posture score per system (the trend)",
                                  daily_posture_scores)
EXTRA_JOBS["posture-report"] = Job("posture-report", "15 7 * * mon", "weekly posture report per system (HTML)",
                                   weekly_posture_reports)
