"""One exception hierarchy for the whole engine; every error names where it happened (file, line or offset)."""

from __future__ import annotations


class SocError(Exception):
    """Base class. ``location`` is a path, optionally with ``:line`` or ``@offset``."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 offset: int | None = None, key: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.offset = offset
        self.key = key
        super().__init__(self.describe())

    @property
    def location(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.offset is not None:
            where += f" at byte offset {self.offset}"
        return where

    def describe(self) -> str:
        parts = [p for p in (self.location, f"key '{self.key}'" if self.key else "") if p]
        return f"{', '.join(parts)}: {self.message}" if parts else self.message


class ConfigError(SocError):
    """soc.yaml is missing, unreadable or invalid."""


class CaptureError(SocError):
    """A capture file cannot be opened or stops being readable at some offset."""


class StoreError(SocError):
    """An alert store cannot be reached or refused a write."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now (down, slow, overloaded): retry later from the spool."""
