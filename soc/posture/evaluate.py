"""Posture of each information system: the profile's checks with their reasons, open alerts, incidents, time to
acknowledge and resolve, monitoring coverage, and a score with its trend (one score record per system and day)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from soc.audit import AuditLog
from soc.core.config import InformationSystem, Settings
from soc.core.model import AlertStatus, Severity
from soc.coverage import coverage_of
from soc.incidents import KIND as INCIDENT_KIND
from soc.incidents import Incident
from soc.jobs import REPORT_KIND
from soc.posture.checks import CHECKS, CheckResult, SystemFacts, parse_time, source_coverage
from soc.posture.profile import PostureError, Profile, load_profile
from soc.store.base import AlertQuery, AlertStore

SCORE_KIND = "posture_score"
# the newest alerts read per evaluation: Elasticsearch answers at most index.max_result_window (10000) per search
MAX_ALERTS = 10000
_ACKNOWLEDGING = ("alert.acknowledged", "alert.in_progress", "alert.closed")


@dataclass(slots=True)
class SystemPosture:
    system: str
    owner: str
    security_level: int
    profile: str
    evaluated_at: str
    checks: list[CheckResult]
    score: int
    reasons: list[str]  # why the score is not 100: one line per failing check
    open_alerts: dict[str, int]  # severity label -> count
    incidents: list[dict[str, Any]]
    time_to_acknowledge: dict[str, float | None]  # {"this_month", "last_month"}: median hours
    time_to_resolve: dict[str, float | None]
    coverage: dict[str, dict[str, Any]]
    alerts_by_day: list[tuple[str, int]] = field(default_factory=list)
    trend: list[dict[str, Any]] = field(default_factory=list)  # stored daily scores, oldest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _month(moment: datetime, back: int) -> str:
    year, month = moment.year, moment.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return f"{year:04d}-{month:02d}"


def _medians(samples: list[tuple[str, float]], now: datetime) -> dict[str, float | None]:
    """Median hours of the samples (month of the action, hours) of this month and of the last."""
    result: dict[str, float | None] = {}
    for label, back in (("this_month", 0), ("last_month", 1)):
        month = _month(now, back)
        hours = [h for at, h in samples if at.startswith(month)]
        result[label] = round(statistics.median(hours), 2) if hours else None
    return result


class PostureEvaluator:
    """Evaluates the inventory against one profile (``settings.response.profile`` unless given)."""

    def __init__(self, settings: Settings, store: AlertStore, profile: Profile | None = None) -> None:
        self.settings = settings
        self.store = store
        self.profile = profile or load_profile(settings.response.profile)
        unknown = [c.kind for c in self.profile.checks if c.kind not in CHECKS]
        if unknown:
            raise PostureError(f"profile {self.profile.id} uses unknown check kinds: {', '.join(unknown)}")
        self.checks = [(spec, CHECKS[spec.kind](spec.params)) for spec in self.profile.checks]

    def systems(self, names: list[str] | None = None) -> list[InformationSystem]:
        if names is None:
            return list(self.settings.inventory)
        chosen = []
        for name in names:
            system = self.settings.system_named(name)
            if system is None:
                raise PostureError(f"no system {name!r} in the inventory")
            chosen.append(system)
        return chosen

    def evaluate(self, names: list[str] | None = None, now: datetime | None = None) -> list[SystemPosture]:
        now = now or datetime.now(tz=UTC)
        systems = self.systems(names)
        wanted = [s.name for s in systems]
        alerts = self.store.search(AlertQuery(systems=wanted, include_suppressed=True, limit=MAX_ALERTS))
        incidents = [Incident.from_record(r) for r in self.store.list_records(INCIDENT_KIND)]
        reports = self.store.list_records(REPORT_KIND)
        trail = AuditLog(self.store).records()
        scores = self.store.list_records(SCORE_KIND)
        return [self._one(s, now, [a for a in alerts if a.system == s.name],
                          [i for i in incidents if i.system == s.name],
                          [r for r in reports if r.get("system") == s.name], trail,
                          [r for r in scores if r.get("system") == s.name]) for s in systems]

    def _one(self, system: InformationSystem, now: datetime, alerts: list[Any], incidents: list[Incident],
             reports: list[dict[str, Any]], trail: list[dict[str, Any]],
             scores: list[dict[str, Any]]) -> SystemPosture:
        seen = coverage_of(self.store, system.name)
        facts = SystemFacts(self.settings, system, self.profile.id, now, alerts, incidents, reports, seen)
        results = []
        for spec, check in self.checks:
            if system.security_level < spec.min_level:
                results.append(CheckResult(spec.id, spec.title, spec.source, "not_applicable",
                                           f"applies from level {spec.min_level}"))
                continue
            passed, reason = check.evaluate(facts)
            results.append(CheckResult(spec.id, spec.title, spec.source, "pass" if passed else "fail", reason))
        applicable = [r for r in results if r.status != "not_applicable"]
        score = round(100 * sum(r.passed for r in applicable) / len(applicable)) if applicable else 100
        open_alerts = Counter(a.severity.label for a in alerts
                              if a.status != AlertStatus.CLOSED and a.suppressed_by is None)
        by_alert = {f"alert:{a.id}": a for a in alerts}
        acknowledged: list[tuple[str, float]] = []
        resolved: list[tuple[str, float]] = []
        seen_ack: set[str] = set()
        for record in trail:
            alert = by_alert.get(record["subject"])
            if alert is None or record["action"] not in _ACKNOWLEDGING:
                continue
            hours = max(0.0, (parse_time(record["at"]) - parse_time(alert.created_at)).total_seconds() / 3600)
            if record["subject"] not in seen_ack:
                seen_ack.add(record["subject"])
                acknowledged.append((record["at"], hours))
            if record["action"] == "alert.closed":
                resolved.append((record["at"], hours))
        coverage_spec: dict[str, dict[str, Any]] = next((spec.params.get("sources", {}) for spec in self.profile.checks
                              if spec.kind == "central_monitoring"), {})
        per_day = Counter(a.first_seen[:10] for a in alerts)
        return SystemPosture(
            system=system.name, owner=system.owner, security_level=system.security_level, profile=self.profile.id,
            evaluated_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"), checks=results, score=score,
            reasons=[f"{r.id} {r.title}: {r.reason}" for r in results if r.status == "fail"],
            open_alerts={s.label: open_alerts[s.label] for s in reversed(Severity) if open_alerts[s.label]},
            incidents=[{"id": i.id, "title": i.title, "status": i.status, "discovered_at": i.discovered_at}
                       for i in incidents],
            time_to_acknowledge=_medians(acknowledged, now), time_to_resolve=_medians(resolved, now),
            coverage=source_coverage(alerts, coverage_spec, seen),
            alerts_by_day=sorted(per_day.items())[-30:],
            trend=sorted(({"date": r["date"], "score": r["score"]} for r in scores), key=lambda r: r["date"])[-30:],
        )

    def record_scores(self, now: datetime | None = None) -> list[SystemPosture]:
        """Evaluate every system and keep today's score (one record per system and day: the trend)."""
        now = now or datetime.now(tz=UTC)
        postures = self.evaluate(now=now)
        for p in postures:
            day = now.date().isoformat()
            self.store.put_record(SCORE_KIND, f"{p.system}-{day}", {
                "system": p.system, "date": day, "score": p.score, "profile": p.profile,
                "failed": [c.id for c in p.checks if c.status == "fail"]})
            p.trend = [t for t in p.trend if t["date"] != day] + [{"date": day, "score": p.score}]
        return postures
