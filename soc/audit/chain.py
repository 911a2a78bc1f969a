"""The audit log: every record carries the SHA-256 of the one before it, so an edited, inserted, deleted or
reordered record breaks the chain where it happened. The head (last sequence number and hash) is also kept as
a record of its own, so cutting records off the end is detected too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from soc.core.model import iso_now
from soc.store.base import AlertStore, AuditConflict

GENESIS = "0" * 64
_HASHED = ("seq", "at", "actor", "action", "subject", "details", "prev_hash")
_HEAD = ("audit_head", "head")


def record_hash(record: dict[str, Any]) -> str:
    canonical = json.dumps({k: record.get(k) for k in _HASHED}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
        self._last: tuple[int, str] | None = None

    def _head(self) -> tuple[int, str]:
        if self._last is None:
            records = self.store.read_audit()
            self._last = (records[-1]["seq"], records[-1]["hash"]) if records else (0, GENESIS)
        return self._last

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None,
               at: str | None = None) -> dict[str, Any]:
        """Append one record: ``actor`` did ``action`` to ``subject`` (``alert:ID``, ``incident:ID``, ...)."""
        for _ in range(5):
            seq, prev_hash = self._head()
            record: dict[str, Any] = {"seq": seq + 1, "at": at or iso_now(), "actor": actor, "action": action,
                                      "subject": subject, "details": details or {}, "prev_hash": prev_hash}
            record["hash"] = record_hash(record)
            try:
                self.store.append_audit(record)
            except AuditConflict:  # another writer went first: re-read the head and chain after it
                self._last = None
                continue
            self._last = (record["seq"], record["hash"])
            self.store.put_record(*_HEAD, {"seq": record["seq"], "hash": record["hash"]})
            return record
        raise AuditConflict("could not append to the audit log: it keeps changing under us")

    def records(self, subject: str | None = None) -> list[dict[str, Any]]:
        records = self.store.read_audit()
        return [r for r in records if subject is None or r["subject"] == subject]

    def verify(self) -> VerifyReport:
        """Walk the chain; every problem names the record where it shows."""
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
        head = self.store.get_record(*_HEAD)
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
