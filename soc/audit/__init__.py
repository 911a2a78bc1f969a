"""Incident history: a hash-chained, append-only audit log in the store, its verification and its exports."""

from soc.audit.chain import AuditLog, VerifyReport

__all__ = ["AuditLog", "VerifyReport"]
