"""The interface both alert stores implement, and what a query can ask."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from soc.core.errors import StoreError
from soc.core.model import TRIAGE_FIELDS, Alert, AlertStatus, Event, Severity, iso_now

__all__ = ["AUDIT_HEAD", "GENESIS", "TRIAGE_FIELDS", "AlertQuery", "AlertStore", "AuditConflict", "ChangeConflict",
           "TriageChange", "TriageCompute", "audit_entry", "chain_record", "check_triage_fields", "record_hash"]

# --- the audit chain's record format: the stores build records inside their unit of work, so it lives here ------

GENESIS = "0" * 64
_HASHED = ("seq", "at", "actor", "action", "subject", "details", "prev_hash")
AUDIT_HEAD = ("audit_head", "head")  # record kind and id of the head (last seq and hash) of the audit log


def record_hash(record: dict[str, Any]) -> str:
    canonical = json.dumps({k: record.get(k) for k in _HASHED}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit_entry(actor: str, action: str, subject: str, details: dict[str, Any] | None = None,
                at: str | None = None) -> dict[str, Any]:
    """What an audit record says, before the log gives it its place (``seq``) and chains it (``prev_hash``)."""
    return {"at": at or iso_now(), "actor": actor, "action": action, "subject": subject, "details": details or {}}


def chain_record(entry: dict[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """The stored record of ``entry`` at ``seq`` after the record whose hash is ``prev_hash``. ``entry_id`` (the
    outbox's idempotency key) is kept but not hashed: it names the entry, it is not part of what happened."""
    record: dict[str, Any] = {"seq": seq, "at": entry.get("at") or iso_now(), "actor": entry["actor"],
                              "action": entry["action"], "subject": entry["subject"],
                              "details": entry.get("details") or {}, "prev_hash": prev_hash}
    if entry.get("entry_id"):
        record["entry_id"] = entry["entry_id"]
    record["hash"] = record_hash(record)
    return record


@dataclass(slots=True)
class TriageChange:
    """What one triage step sets on an alert (TRIAGE_FIELDS names, JSON values) and the audit entries (from
    :func:`audit_entry`) that record it; the store keeps both or neither."""

    changes: dict[str, Any]
    audit: list[dict[str, Any]] = field(default_factory=list)


# Receives the alert as read inside the unit of work (so never a stale copy) and returns the change, or raises
# (e.g. soc.triage.TriageError) to refuse it; may be called more than once when another writer went first.
TriageCompute = Callable[[Alert], TriageChange]


def check_triage_fields(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(TRIAGE_FIELDS)
    if unknown:
        raise ValueError(f"not triage fields: {sorted(unknown)}")


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


class AuditConflict(StoreError):
    """Another record already holds this sequence number of the audit log (raised by the raw ``append_audit``;
    the chained appends retry after the new head and raise it only when the log keeps moving for too long)."""


class ChangeConflict(StoreError):
    """A triage change kept meeting newer versions of its alert (other writers) and gave up."""


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
        """Store events (flows, log events) for search under their :func:`soc.core.model.event_id`, so an event
        seen again (a second replay, a second sensor) is stored once. Returns how many were new (not stored
        before)."""

    @abstractmethod
    def events_for_address(self, address: str, limit: int = 20) -> list[Event]:
        """The latest stored events with ``address`` as source or destination, newest first."""

    @abstractmethod
    def get(self, alert_id: str) -> Alert | None: ...

    @abstractmethod
    def update_triage(self, alert_id: str, changes: dict[str, Any]) -> bool:
        """Set triage fields (names from TRIAGE_FIELDS, JSON values) of one alert, unaudited and blind (no read of
        the current value); False when there is none. People's actions go through :meth:`change_triage`."""

    @abstractmethod
    def change_triage(self, alert_id: str, compute: TriageCompute) -> list[dict[str, Any]] | None:
        """One unit of work: read the alert, ``compute`` its change, store the change and append its audit
        records to the chain, both or neither. Returns the audit records; None when there is no such alert.
        Exceptions from ``compute`` pass through with nothing changed."""

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
    def append_audit_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Chain ``entry`` (from :func:`audit_entry`) after the current head and append it; returns the record.
        Concurrent writers never conflict for good: a taken ``seq`` means chaining after the new head."""

    @abstractmethod
    def complete_audit(self) -> int:
        """Append the audit records of triage changes whose writer stopped between the change and its record
        (none on a store whose change and record are one transaction); returns how many were appended."""

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
