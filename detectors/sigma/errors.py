"""The Sigma engine's errors: each names the rule file (and rule) it is about and a short reason for the counters."""

from __future__ import annotations

from pathlib import Path


class SigmaEngineError(Exception):
    """A rule we cannot load or run. ``reason`` is the short counter key, ``path`` the rule file."""

    reason = "error"

    def __init__(self, message: str, path: str | Path | None = None, rule: str | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.rule = rule
        where = ": ".join(p for p in (self.path, rule) if p)
        super().__init__(f"{where}: {message}" if where else message)


class RuleParseError(SigmaEngineError):
    """pySigma (or YAML) refused the file or rule; ``reason`` is the pySigma error kind (``condition``, ...)."""

    def __init__(self, reason: str, message: str, path: str | Path | None = None, rule: str | None = None) -> None:
        super().__init__(message, path, rule)
        self.reason = reason


class UnsupportedFeature(SigmaEngineError):
    """The rule parses but uses something the in-process matcher does not evaluate (``reason`` names it)."""

    def __init__(self, reason: str, message: str, path: str | Path | None = None, rule: str | None = None) -> None:
        super().__init__(message, path, rule)
        self.reason = reason
