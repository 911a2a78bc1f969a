"""The interface both alert stores implement, and what a query can ask."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from soc.core.model import TRIAGE_FIELDS, Alert, AlertStatus, Event, Severity

__all__ = ["TRIAGE_FIELDS", "AlertQuery", "AlertStore", "AuditConflict"]


@dataclass(slots=True)
class AlertQuery:
    min_severity: Severity | None = None
    status: AlertStatus | None = None
    rule_id: str | None = None
    system: str | None = None
    systems: list[str] | None = None  # any of these (a system owner's view)
    incident_id: str | None = None
    include_suppressed: bool = False  # suppressed alerts are evidence, not work: out of the queue by default
    limit: int = 1000


class AuditConflict(Exception):
    """Another record already holds this sequence number of the audit log."""


class AlertStore(ABC):
    """Idempotent alert sink and reader. ``write`` raises :class:`StoreUnavailable` when the store cannot be
    reached (the caller spools and retries), :class:`soc.core.errors.StoreError` for a refusal that retrying
    cannot fix."""

    url: str

    @abstractmethod
    def write(self, alerts: Sequence[Alert]) -> None:
        """Insert new alerts; update the detection fields of alerts already stored (same id), keeping triage."""

    @abstractmethod
    def write_events(self, events: Iterable[Event]) -> int:
        """Store events (flows, log events) for search; returns how many were written."""

    @abstractmethod
    def events_for_address(self, address: str, limit: int = 20) -> list[Event]:
        """The latest stored events with ``address`` as source or destination, newest first."""

    @abstractmethod
    def get(self, alert_id: str) -> Alert | None: ...

    @abstractmethod
    def update_triage(self, alert_id: str, changes: dict[str, Any]) -> bool:
        """Set triage fields (names from TRIAGE_FIELDS, JSON values) of one alert; False when there is none."""

    def set_triage(self, alert_id: str, status: AlertStatus | None = None, assignee: str | None = None) -> bool:
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = status.value
        if assignee is not None:
            changes["assignee"] = assignee
        return self.update_triage(alert_id, changes)

    # --- records: incidents, suppressions, playbook runs, ... (JSON documents by kind and id) ---

    @abstractmethod
    def put_record(self, kind: str, record_id: str, doc: dict[str, Any]) -> None:
        """Insert or replace one record."""

    @abstractmethod
    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_records(self, kind: str, limit: int = 10000) -> list[dict[str, Any]]:
        """Records of a kind, in the order of their ids."""

    # --- the audit log: append-only, ordered by ``seq`` (soc.audit chains and verifies it) ---

    @abstractmethod
    def append_audit(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` under ``entry["seq"]``; raise AuditConflict when that number is taken."""

    @abstractmethod
    def read_audit(self) -> list[dict[str, Any]]:
        """Every audit record as stored, ordered by ``seq``."""

    @abstractmethod
    def search(self, query: AlertQuery) -> list[Alert]:
        """Alerts matching ``query``, newest first."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def delete_alerts(self, alert_ids: Sequence[str]) -> int:
        """Remove alerts (retention); returns how many were removed."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections."""

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
