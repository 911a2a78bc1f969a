"""Incidents: alerts linked into one case, its response phases (Circular 20/2017 art. 11), its reports to the
national coordinator (Circular 20/2017 art. 9 Forms 03 and 04; Decree 331/2026 art. 31) and their deadlines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from soc.audit import AuditLog
from soc.core.config import Settings
from soc.core.errors import SocError
from soc.core.model import Alert, iso_now
from soc.store.base import AlertQuery, AlertStore
from soc.triage import Triage

KIND = "incident"

# Circular 20/2017 art. 11: the steps of a response, in order
PHASES: dict[str, str] = {
    "receive_verify": "Receive and verify the report",
    "initial_steps": "Initial response steps",
    "plan": "Response plan",
    "direction": "Direct the response",
    "report": "Report",
    "contain": "Contain",
    "recover": "Eradicate, recover and verify",
    "review": "Review",
}

REPORT_FORMS = {"initial": "Form 03 (initial notice)", "closing": "Form 04 (closing report)"}


class IncidentError(SocError):
    """An incident action that cannot be done."""


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Incident:
    id: str
    title: str
    created_at: str
    created_by: str
    discovered_at: str  # when the first linked alert was seen
    system: str | None = None
    serious: bool = False
    status: str = "open"  # open, contained, closed
    alert_ids: list[str] = field(default_factory=list)
    phases: dict[str, dict[str, str]] = field(default_factory=dict)  # phase -> {"at", "by", "note"}
    reports: list[dict[str, Any]] = field(default_factory=list)  # {"form", "at", "by", "document"}
    closed_at: str | None = None
    closed_by: str | None = None
    summary: str = ""

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Incident:
        return cls(**record)


def deadlines(incident: Incident, profile: str) -> list[dict[str, Any]]:
    """The reporting deadlines of the regulation profile, when each was due, done, and whether it was met."""
    discovered = _time(incident.discovered_at)
    reported = {r["form"]: r["at"] for r in incident.reports}
    due: list[tuple[str, str, datetime | None]] = []
    if profile == "vn-decree331-2026" and incident.serious:
        due += [("initial", "notice within 24 h of discovery (Decree 331/2026 art. 31)",
                 discovered + timedelta(hours=24)),
                ("closing", "full report within 72 h of discovery (Decree 331/2026 art. 31)",
                 discovered + timedelta(hours=72))]
    else:
        closed = _time(incident.closed_at) if incident.closed_at else None
        due += [("initial", "notice within 5 days of discovery (Circular 20/2017 art. 9)",
                 discovered + timedelta(days=5)),
                ("closing", "closing report within 5 days after the response ended (Circular 20/2017 art. 9)",
                 closed + timedelta(days=5) if closed else None)]
    rows = []
    for form, rule, when in due:
        done = reported.get(form)
        met = None if done is None and (when is None or datetime.now(tz=UTC) < when) else (
            done is not None and when is not None and _time(done) <= when)
        rows.append({"form": form, "rule": rule, "due": _iso(when) if when else None, "done": done, "met": met})
    return rows


class Incidents:
    def __init__(self, store: AlertStore, settings: Settings, audit: AuditLog | None = None) -> None:
        self.store = store
        self.settings = settings
        self.audit = audit or AuditLog(store)
        self.triage = Triage(store, self.audit)

    def get(self, incident_id: str) -> Incident:
        record = self.store.get_record(KIND, incident_id)
        if record is None:
            raise IncidentError(f"no incident with id {incident_id}")
        return Incident.from_record(record)

    def all(self) -> list[Incident]:
        return [Incident.from_record(r) for r in self.store.list_records(KIND)]

    def _save(self, incident: Incident) -> None:
        self.store.put_record(KIND, incident.id, incident.to_record())

    def _alerts(self, alert_ids: list[str]) -> list[Alert]:
        alerts = []
        for alert_id in alert_ids:
            alert = self.store.get(alert_id)
            if alert is None:
                raise IncidentError(f"no alert with id {alert_id}")
            alerts.append(alert)
        return alerts

    def open(self, title: str, alert_ids: list[str], actor: str, serious: bool = False) -> Incident:
        alerts = self._alerts(alert_ids)
        now = datetime.now(tz=UTC)
        number = 1 + sum(1 for i in self.all() if i.id.startswith(f"INC-{now:%Y}-"))
        incident = Incident(
            id=f"INC-{now:%Y}-{number:04d}",
            title=title,
            created_at=iso_now(),
            created_by=actor,
            discovered_at=min((a.first_seen for a in alerts), default=iso_now()),
            system=next((a.system for a in alerts if a.system), None),
            serious=serious,
            alert_ids=[a.id for a in alerts],
        )
        self._save(incident)
        self.audit.append(actor, "incident.opened", f"incident:{incident.id}",
                          {"title": title, "alerts": incident.alert_ids, "serious": serious})
        self.triage.link(incident.alert_ids, incident.id, actor)
        return incident

    def link(self, incident_id: str, alert_ids: list[str], actor: str) -> Incident:
        incident = self.get(incident_id)
        alerts = self._alerts(alert_ids)
        incident.alert_ids += [a.id for a in alerts if a.id not in incident.alert_ids]
        incident.discovered_at = min([incident.discovered_at, *(a.first_seen for a in alerts)])
        self._save(incident)
        self.triage.link([a.id for a in alerts], incident.id, actor)
        return incident

    def record_phase(self, incident_id: str, phase: str, actor: str, note: str = "") -> Incident:
        if phase not in PHASES:
            raise IncidentError(f"unknown phase {phase!r}: use one of {', '.join(PHASES)}")
        incident = self.get(incident_id)
        incident.phases[phase] = {"at": iso_now(), "by": actor, "note": note}
        if phase == "contain" and incident.status == "open":
            incident.status = "contained"
        self._save(incident)
        self.audit.append(actor, f"incident.phase.{phase}", f"incident:{incident.id}", {"note": note})
        return incident

    def draft_report(self, incident_id: str, form: str) -> dict[str, Any]:
        """The fields of a Circular 20/2017 report, filled from the incident; a person reviews and signs it."""
        if form not in REPORT_FORMS:
            raise IncidentError(f"unknown report form {form!r}: use one of {', '.join(REPORT_FORMS)}")
        incident = self.get(incident_id)
        alerts = self._alerts(incident.alert_ids)
        system = self.settings.system_named(incident.system) if incident.system else None
        addresses = sorted({str(a.ecs.get("destination", {}).get("ip")) for a in alerts
                            if a.ecs.get("destination", {}).get("ip")})
        return {
            "form": REPORT_FORMS[form],
            "reporting_organisation": self.settings.response.reporting_organisation,
            "system": {
                "name": incident.system,
                "domains": system.hosts if system else [],
                "addresses": addresses,
                "security_level": system.security_level if system else None,
                "owner": system.owner if system else None,
            },
            "description": incident.title + (f". {incident.summary}" if incident.summary else ""),
            "discovered_at": incident.discovered_at,
            "alerts": [{"id": a.id, "rule": a.rule.name, "severity": a.severity.label, "message": a.message,
                        "techniques": [t.id for t in a.techniques]} for a in alerts],
            "actions_and_results": [{"phase": PHASES[p], **v} for p, v in incident.phases.items()],
            "status": incident.status,
            "closed_at": incident.closed_at,
        }

    def report(self, incident_id: str, form: str, actor: str) -> dict[str, Any]:
        document = self.draft_report(incident_id, form)
        incident = self.get(incident_id)
        incident.reports.append({"form": form, "at": iso_now(), "by": actor, "document": document})
        incident.phases.setdefault("report", {"at": iso_now(), "by": actor, "note": REPORT_FORMS[form]})
        self._save(incident)
        self.audit.append(actor, "incident.reported", f"incident:{incident.id}", {"form": form})
        return document

    def close(self, incident_id: str, actor: str, summary: str) -> Incident:
        incident = self.get(incident_id)
        if incident.status == "closed":
            raise IncidentError(f"incident {incident_id} is closed already")
        incident.status, incident.closed_at, incident.closed_by = "closed", iso_now(), actor
        incident.summary = summary
        self._save(incident)
        self.audit.append(actor, "incident.closed", f"incident:{incident.id}", {"summary": summary})
        return incident

    def deadlines(self, incident: Incident) -> list[dict[str, Any]]:
        return deadlines(incident, self.settings.response.profile)

    def alerts_of(self, incident: Incident) -> list[Alert]:
        return self.store.search(AlertQuery(incident_id=incident.id, include_suppressed=True))
