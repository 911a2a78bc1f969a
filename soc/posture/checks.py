"""The posture checks: one small class per kind of check, registered by the name profiles use (``kind:``).
A check sees one system with what the engine knows about it and says pass or fail, always with the reason."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from soc.core.config import InformationSystem, Settings
from soc.core.model import Alert, get_field
from soc.incidents import PHASES, Incident, deadlines


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(slots=True)
class SystemFacts:
    """What posture is computed from, for one system at one moment."""

    settings: Settings
    system: InformationSystem
    profile: str
    now: datetime
    alerts: list[Alert]  # every alert of the system, suppressed ones included (they show a source flowing)
    incidents: list[Incident]
    reports: list[dict[str, Any]]  # monitoring_report records of the system
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> events received (soc.coverage)


@dataclass(slots=True)
class CheckResult:
    id: str
    title: str
    source: str
    status: str  # pass, fail, not_applicable
    reason: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class Check(ABC):
    kind: ClassVar[str]

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    @abstractmethod
    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        """(passed, why)."""


CHECKS: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    CHECKS[cls.kind] = cls
    return cls


def _by_level(table: dict[Any, Any], level: int) -> Any:
    """The entry for ``level`` in a ``{level: value}`` table of a profile (YAML keys may be ints or strings)."""
    values = {int(k): v for k, v in table.items()}
    return values.get(level)


@register
class LevelApproved(Check):
    kind = "level_approved"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        s = facts.system
        missing = [name for name, value in (("approving body", s.approved_by), ("approval date", s.approved_on))
                   if not value]
        if missing:
            return False, f"level {s.security_level} is recorded without {' and '.join(missing)}"
        return True, f"level {s.security_level} approved by {s.approved_by} on {s.approved_on}"


@register
class LevelFits(Check):
    kind = "level_fits"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        s = facts.system
        text = f"{s.name} {s.description}".lower()
        for rule in self.params.get("rules", []):
            if any(k.lower() in text for k in rule["keywords"]) and s.security_level < int(rule["min_level"]):
                return False, (f"{rule['reason']} must be at least level {rule['min_level']}, "
                               f"this one is level {s.security_level}")
        return True, f"nothing in the inventory calls for more than level {s.security_level}"


@register
class AssessmentAge(Check):
    kind = "assessment_age"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        max_days = int(_by_level(self.params["max_age_days"], facts.system.security_level) or 365)
        last: date | None = facts.system.last_assessment
        if last is None:
            return False, "no assessment date recorded in the inventory"
        age = (facts.now.date() - last).days
        if age > max_days:
            return False, f"last assessed on {last}, {age} days ago (at most {max_days})"
        return True, f"last assessed on {last}, {age} days ago (at most {max_days})"


@register
class CentralMonitoring(Check):
    kind = "central_monitoring"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        hours = float(self.params.get("max_age_hours", 24))
        coverage = source_coverage(facts.alerts, self.params.get("sources", {}), facts.seen)
        since = facts.now - timedelta(hours=hours)
        stale = [name for name, seen in coverage.items()
                 if seen["last_seen"] is None or parse_time(seen["last_seen"]) < since]
        if stale:
            return False, f"not seen within {hours:g} h: {', '.join(stale)}"
        return True, f"all sources seen within {hours:g} h: {', '.join(coverage)}"


def source_coverage(alerts: list[Alert], sources: dict[str, dict[str, Any]],
                    seen: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Per monitored source (network, web server logs, ...): the events the engine received from it for the
    system (``seen``, from soc.coverage: the profile's ``coverage`` names), how many alerts (and detections they
    group) came from it, and when it was last seen. An alert is recognised by its ruleset and, for logs, the
    ECS blocks it carries."""
    seen = seen or {}
    result: dict[str, dict[str, Any]] = {}
    for name, spec in sources.items():
        mine = [a for a in alerts if a.rule.ruleset in spec.get("rulesets", [])
                and (not spec.get("fields") or any(get_field(a.ecs, f) is not None for f in spec["fields"]))]
        received = [seen[key] for key in spec.get("coverage", []) if key in seen]
        times = [a.last_seen for a in mine] + [r["last_seen"] for r in received if r["last_seen"]]
        result[name] = {"events": sum(r["events"] for r in received), "alerts": len(mine),
                        "detections": sum(a.count for a in mine), "last_seen": max(times, default=None)}
    return result


@register
class MonitoringReports(Check):
    kind = "monitoring_reports"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        problems = []
        for period, key in (("daily", "daily_within_days"), ("weekly", "weekly_within_days")):
            days = int(self.params.get(key, 8))
            latest = max((r["created_at"] for r in facts.reports if r.get("period") == period), default=None)
            if latest is None:
                problems.append(f"no {period} report produced")
            elif parse_time(latest) < facts.now - timedelta(days=days):
                problems.append(f"last {period} report {latest[:10]}, more than {days} days ago")
        kept = facts.system.retention_days or facts.settings.scheduler.default_retention_days
        if kept < int(self.params.get("min_data_days", 30)):
            problems.append(f"monitoring data kept {kept} days (at least {self.params.get('min_data_days', 30)})")
        if problems:
            return False, "; ".join(problems)
        return True, f"daily and weekly reports produced; data kept {kept} days"


@register
class Retention(Check):
    kind = "retention"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        needed = _by_level(self.params["min_days"], facts.system.security_level)
        configured = facts.system.retention_days
        kept = configured or facts.settings.scheduler.default_retention_days
        origin = "configured for the system" if configured else "the default (scheduler.default_retention_days)"
        if needed is None:
            return True, f"no minimum for level {facts.system.security_level}; {kept} days, {origin}"
        if kept < int(needed):
            return False, f"alerts kept {kept} days, {origin}; level {facts.system.security_level} needs {needed}"
        return True, f"alerts kept {kept} days, {origin}; level {facts.system.security_level} needs {needed}"


@register
class IncidentNotice(Check):
    kind = "incident_notice"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        late = [f"{i.id} {d['form']} report ({d['rule']})" for i in facts.incidents
                for d in deadlines(i, facts.profile) if d["met"] is False]
        if late:
            return False, "late or missing: " + "; ".join(late)
        return True, f"{len(facts.incidents)} incident(s), no reporting deadline missed"


@register
class ResponsePhases(Check):
    kind = "response_phases"

    def evaluate(self, facts: SystemFacts) -> tuple[bool, str]:
        gaps = [f"{i.id} lacks {', '.join(p for p in PHASES if p not in i.phases)}"
                for i in facts.incidents if i.status == "closed" and set(PHASES) - set(i.phases)]
        if gaps:
            return False, "closed without every response phase: " + "; ".join(gaps)
        closed = sum(1 for i in facts.incidents if i.status == "closed")
        return True, f"{closed} closed incident(s), each with every response phase recorded"
