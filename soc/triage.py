"""Triage: what analysts do to alerts, the same functions for the CLI and the web console.

Statuses move forward: new → acknowledged → in progress → closed (with a verdict); steps may be skipped, and a
closed alert can be reopened. Every change is appended to the audit log with who did it and when, in the same
unit of work as the change itself (a close with a reason and its note are one unit too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from soc.alerts.suppression import KIND as SUPPRESSION_KIND
from soc.alerts.suppression import Suppression
from soc.audit import AuditLog
from soc.core.errors import SocError
from soc.core.model import Alert, AlertStatus, Verdict, iso_now
from soc.store.base import AlertStore, TriageChange, TriageCompute, audit_entry

_FORWARD: dict[AlertStatus, set[AlertStatus]] = {
    AlertStatus.NEW: {AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS, AlertStatus.CLOSED},
    AlertStatus.ACKNOWLEDGED: {AlertStatus.IN_PROGRESS, AlertStatus.CLOSED},
    AlertStatus.IN_PROGRESS: {AlertStatus.CLOSED},
    AlertStatus.CLOSED: {AlertStatus.ACKNOWLEDGED},  # reopen
}


class TriageError(SocError):
    """A triage action that cannot be done (no such alert, a transition that is not allowed)."""


@dataclass(slots=True)
class Outcome:
    alert_id: str
    ok: bool
    message: str


# The steps: each receives the alert as stored now, inside the store's unit of work, and says what changes and
# what the audit log records (or raises TriageError to refuse). A retried unit calls its step again.

def _set(alert: Alert, actor: str, action: str, changes: dict[str, Any],
         details: dict[str, Any] | None = None) -> TriageChange:
    return TriageChange(changes, [audit_entry(actor, action, f"alert:{alert.id}", {**(details or {}), **changes})])


def _move(alert: Alert, to: AlertStatus, actor: str, action: str,
          extra: dict[str, Any] | None = None) -> TriageChange:
    if to not in _FORWARD[alert.status]:
        raise TriageError(f"alert {alert.id} is {alert.status.value}: it cannot become {to.value}")
    return _set(alert, actor, action, {"status": to.value, **(extra or {})}, {"from": alert.status.value})


def _noted(alert: Alert, text: str, actor: str, with_change: TriageChange | None = None) -> TriageChange:
    """A note added to the notes stored now (also together with another change, as one unit)."""
    base = with_change or TriageChange({})
    notes = [*alert.notes, {"at": iso_now(), "by": actor, "text": text}]
    return TriageChange({**base.changes, "notes": notes},
                        [*base.audit, audit_entry(actor, "alert.noted", f"alert:{alert.id}", {"text": text})])


class Triage:
    """Every change of an alert is one unit of work of the store (``AlertStore.change_triage``): the alert is read,
    the step decides on that fresh copy (a note is added to the notes stored now, a transition is checked against
    the status stored now), and the change is stored with its audit records, or neither."""

    def __init__(self, store: AlertStore, audit: AuditLog | None = None) -> None:
        self.store = store
        self.audit = audit or AuditLog(store)

    def _each(self, alert_ids: Iterable[str], step: TriageCompute, message: str) -> list[Outcome]:
        """Bulk actions: each alert on its own, so one refusal does not stop the others."""
        outcomes = []
        for alert_id in alert_ids:
            try:
                if self.store.change_triage(alert_id, step) is None:
                    raise TriageError(f"no alert with id {alert_id}")
                outcomes.append(Outcome(alert_id, True, message))
            except TriageError as exc:
                outcomes.append(Outcome(alert_id, False, exc.message))
        return outcomes

    def acknowledge(self, alert_ids: Iterable[str], actor: str) -> list[Outcome]:
        return self._each(alert_ids, lambda a: _move(a, AlertStatus.ACKNOWLEDGED, actor, "alert.acknowledged"),
                          "acknowledged")

    def start(self, alert_ids: Iterable[str], actor: str) -> list[Outcome]:
        return self._each(alert_ids, lambda a: _move(a, AlertStatus.IN_PROGRESS, actor, "alert.in_progress"),
                          "in progress")

    def assign(self, alert_ids: Iterable[str], assignee: str, actor: str) -> list[Outcome]:
        return self._each(alert_ids, lambda a: _set(a, actor, "alert.assigned", {"assignee": assignee},
                                                    {"previous": a.assignee}), f"assigned to {assignee}")

    def note(self, alert_id: str, text: str, actor: str) -> Outcome:
        if not text.strip():
            raise TriageError("a note needs text")
        return self._each([alert_id], lambda a: _noted(a, text, actor), "note added")[0]

    def close(self, alert_ids: Iterable[str], verdict: Verdict, actor: str, reason: str = "") -> list[Outcome]:
        def step(alert: Alert) -> TriageChange:
            closed = _move(alert, AlertStatus.CLOSED, actor, "alert.closed", {"verdict": verdict.value})
            return _noted(alert, f"closed: {reason}", actor, closed) if reason else closed
        return self._each(alert_ids, step, f"closed as {verdict.value}")

    def reopen(self, alert_ids: Iterable[str], actor: str, reason: str) -> list[Outcome]:
        def step(alert: Alert) -> TriageChange:
            reopened = _move(alert, AlertStatus.ACKNOWLEDGED, actor, "alert.reopened", {"verdict": None})
            return _noted(alert, f"reopened: {reason}", actor, reopened)
        return self._each(alert_ids, step, "reopened")

    def link(self, alert_ids: Iterable[str], incident_id: str, actor: str) -> list[Outcome]:
        return self._each(alert_ids, lambda a: _set(a, actor, "alert.linked", {"incident_id": incident_id},
                                                    {"previous": a.incident_id}), f"linked to {incident_id}")

    def suppress(self, fields: dict[str, str], reason: str, actor: str, days: float | None = None,
                 now: datetime | None = None) -> Suppression:
        """A suppression rule: later alerts matching ``fields`` are kept as evidence, out of the queue."""
        if not fields:
            raise TriageError("a suppression needs at least one field=value")
        if not reason.strip():
            raise TriageError("a suppression needs a reason")
        expires = None
        if days is not None:
            expires = ((now or datetime.now(tz=UTC)) + timedelta(days=days)).isoformat().replace("+00:00", "Z")
        rule = Suppression(fields=fields, reason=reason, author=actor, expires_at=expires)
        self.store.put_record(SUPPRESSION_KIND, rule.id, rule.to_record())
        self.audit.append(actor, "suppression.created", f"suppression:{rule.id}", rule.to_record())
        return rule

    def suppressions(self) -> list[Suppression]:
        return [Suppression.from_record(r) for r in self.store.list_records(SUPPRESSION_KIND)]
