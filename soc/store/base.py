"""The interface both alert stores implement, and what a query can ask."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from soc.model import Alert, AlertStatus, Event, Severity

# Triage belongs to people: a detection written again updates what the engine saw, never these fields.
TRIAGE_FIELDS = ("status", "assignee")


@dataclass(slots=True)
class AlertQuery:
    min_severity: Severity | None = None
    status: AlertStatus | None = None
    rule_id: str | None = None
    system: str | None = None
    limit: int = 1000


class AlertStore(ABC):
    """Idempotent alert sink and reader. ``write`` raises :class:`StoreUnavailable` when the store cannot be
    reached (the caller spools and retries), :class:`soc.errors.StoreError` for a refusal that retrying
    cannot fix."""

    url: str

    @abstractmethod
    def write(self, alerts: Sequence[Alert]) -> None:
        """Insert new alerts; update the detection fields of alerts already stored (same id), keeping triage."""

    @abstractmethod
    def write_events(self, events: Iterable[Event]) -> int:
        """Store events (flows, log events) for search; returns how many were written."""

    @abstractmethod
    def get(self, alert_id: str) -> Alert | None: ...

    @abstractmethod
    def set_triage(self, alert_id: str, status: AlertStatus | None = None, assignee: str | None = None) -> bool:
        """Change the triage fields of one alert; False when there is no such alert."""

    @abstractmethod
    def search(self, query: AlertQuery) -> list[Alert]:
        """Alerts matching ``query``, newest first."""

    @abstractmethod
    def count(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections."""

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
