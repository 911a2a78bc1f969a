"""The audit log: every record carries the SHA-256 of the one before it, so an edited, inserted, deleted or
reordered record breaks the chain where it happened. The head (last sequence number and hash) is also kept as
a record of its own, so cutting records off the end is detected too.

The stores chain and append records themselves (``AlertStore.append_audit_entry``, and ``change_triage`` with a
triage change in the same unit of work), so concurrent writers in several processes never fork the chain; the
record format and its hash live in :mod:`soc.store.base` for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from soc.store.base import AUDIT_HEAD, GENESIS, AlertStore, audit_entry, record_hash

__all__ = ["GENESIS", "AuditLog", "VerifyReport", "record_hash"]


@dataclass(slots=True)
class VerifyReport:
    records: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None,
               at: str | None = None) -> dict[str, Any]:
        """Append one record: ``actor`` did ``action`` to ``subject`` (``alert:ID``, ``incident:ID``, ...)."""
        return self.store.append_audit_entry(audit_entry(actor, action, subject, details, at))

    def records(self, subject: str | None = None) -> list[dict[str, Any]]:
        records = self.store.read_audit()
        return [r for r in records if subject is None or r["subject"] == subject]

    def verify(self) -> VerifyReport:
        """Walk the chain; every problem names the record where it shows. Records of triage changes whose
        writer stopped before appending them are appended first (the Elasticsearch store's outbox)."""
        self.store.complete_audit()
        records = self.store.read_audit()
        report = VerifyReport(len(records))
        problems = report.problems
        seen: dict[str, int] = {GENESIS: 0}  # stored hash -> seq
        previous_hash, previous_seq = GENESIS, 0
        for record in records:
            seq = int(record.get("seq", -1))
            if record_hash(record) != record.get("hash"):
                problems.append(f"record {seq} was edited: its content does not match its hash")
            gap = seq > previous_seq + 1
            if gap:
                problems.append(f"{_records(previous_seq + 1, seq - 1)} missing: deleted before record {seq}")
            elif seq != previous_seq + 1:
                problems.append(f"record {seq} is out of order after record {previous_seq}")
            prev_hash = str(record.get("prev_hash"))
            if prev_hash != previous_hash and not gap:
                if prev_hash in seen:
                    problems.append(f"record {seq} follows record {seen[prev_hash]}, not record {previous_seq}: "
                                    "records were inserted or reordered before it")
                else:
                    problems.append(f"record {seq} does not follow record {previous_seq}: a record before it was "
                                    "removed or replaced")
            previous_hash, previous_seq = str(record.get("hash")), seq
            seen[previous_hash] = seq
        head = self.store.get_record(*AUDIT_HEAD)
        by_seq = {r.get("seq"): r for r in records}
        if head is None:
            if records:
                problems.append("the recorded head of the log is missing")
        elif head["seq"] > previous_seq:
            problems.append(f"{_records(previous_seq + 1, head['seq'])} missing: the log was cut short")
        elif by_seq.get(head["seq"], {}).get("hash") != head["hash"]:
            # the head may lag by a record after a crash between the two writes, but never disagree
            problems.append(f"record {head['seq']} is not the one recorded as the head of the log")
        return report


def _records(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first} to {last}"
