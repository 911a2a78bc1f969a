"""Triage: what analysts do to alerts, the same functions for the CLI and the web console.

Statuses move forward: new → acknowledged → in progress → closed (with a verdict); steps may be skipped, and a
closed alert can be reopened. Every change is appended to the audit log with who did it and when.
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
from soc.store.base import AlertStore

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


class Triage:
    def __init__(self, store: AlertStore, audit: AuditLog | None = None) -> None:
        self.store = store
        self.audit = audit or AuditLog(store)

    def _alert(self, alert_id: str) -> Alert:
        alert = self.store.get(alert_id)
        if alert is None:
            raise TriageError(f"no alert with id {alert_id}")
        return alert

    def _change(self, alert: Alert, actor: str, action: str, changes: dict[str, Any],
                details: dict[str, Any] | None = None) -> None:
        self.store.update_triage(alert.id, changes)
        self.audit.append(actor, action, f"alert:{alert.id}", {**(details or {}), **changes})

    def _move(self, alert: Alert, to: AlertStatus, actor: str, action: str,
              extra: dict[str, Any] | None = None) -> None:
        if to not in _FORWARD[alert.status]:
            raise TriageError(f"alert {alert.id} is {alert.status.value}: it cannot become {to.value}")
        self._change(alert, actor, action, {"status": to.value, **(extra or {})}, {"from": alert.status.value})

    def _each(self, alert_ids: Iterable[str], action: Any) -> list[Outcome]:
        """Bulk actions: each alert on its own, so one refusal does not stop the others."""
        outcomes = []
        for alert_id in alert_ids:
            try:
                message = action(self._alert(alert_id))
                outcomes.append(Outcome(alert_id, True, message))
            except TriageError as exc:
                outcomes.append(Outcome(alert_id, False, exc.message))
        return outcomes

    def acknowledge(self, alert_ids: Iterable[str], actor: str) -> list[Outcome]:
        def act(alert: Alert) -> str:
            self._move(alert, AlertStatus.ACKNOWLEDGED, actor, "alert.acknowledged")
            return "acknowledged"
        return self._each(alert_ids, act)

    def start(self, alert_ids: Iterable[str], actor: str) -> list[Outcome]:
        def act(alert: Alert) -> str:
            self._move(alert, AlertStatus.IN_PROGRESS, actor, "alert.in_progress")
            return "in progress"
        return self._each(alert_ids, act)

    def assign(self, alert_ids: Iterable[str], assignee: str, actor: str) -> list[Outcome]:
        def act(alert: Alert) -> str:
            self._change(alert, actor, "alert.assigned", {"assignee": assignee},
                         {"previous": alert.assignee})
            return f"assigned to {assignee}"
        return self._each(alert_ids, act)

    def note(self, alert_id: str, text: str, actor: str) -> Outcome:
        if not text.strip():
            raise TriageError("a note needs text")

        def act(alert: Alert) -> str:
            notes = [*alert.notes, {"at": iso_now(), "by": actor, "text": text}]
            self.store.update_triage(alert.id, {"notes": notes})
            self.audit.append(actor, "alert.noted", f"alert:{alert.id}", {"text": text})
            return "note added"
        return self._each([alert_id], act)[0]

    def close(self, alert_ids: Iterable[str], verdict: Verdict, actor: str, reason: str = "") -> list[Outcome]:
        def act(alert: Alert) -> str:
            self._move(alert, AlertStatus.CLOSED, actor, "alert.closed", {"verdict": verdict.value})
            if reason:
                self.note(alert.id, f"closed: {reason}", actor)
            return f"closed as {verdict.value}"
        return self._each(alert_ids, act)

    def reopen(self, alert_ids: Iterable[str], actor: str, reason: str) -> list[Outcome]:
        def act(alert: Alert) -> str:
            self._move(alert, AlertStatus.ACKNOWLEDGED, actor, "alert.reopened", {"verdict": None})
            self.note(alert.id, f"reopened: {reason}", actor)
            return "reopened"
        return self._each(alert_ids, act)

    def link(self, alert_ids: Iterable[str], incident_id: str, actor: str) -> list[Outcome]:
        def act(alert: Alert) -> str:
            self._change(alert, actor, "alert.linked", {"incident_id": incident_id},
                         {"previous": alert.incident_id})
            return f"linked to {incident_id}"
        return self._each(alert_ids, act)

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
