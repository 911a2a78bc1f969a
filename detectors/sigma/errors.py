"""The Sigma engine's errors: each names the rule file (and rule, line or field where known) it is about, and a short
reason for the counters.  They are :class:`soc.core.errors.SocError`\\ s, so a caller that stops on any error of the
project stops on these too."""

from __future__ import annotations

from pathlib import Path

from soc.core.errors import SocError


class SigmaEngineError(SocError):
    """A rule we cannot load or run. ``reason`` is the short counter key, ``path`` the rule file, ``rule`` the rule's
    id or name, ``line`` the line in the file and ``key`` the field the problem is in, when known."""

    reason = "error"

    def __init__(self, message: str, path: str | Path | None = None, rule: str | None = None, *,
                 line: int | None = None, key: str | None = None) -> None:
        self.rule = rule  # before SocError's __init__, which calls describe()
        super().__init__(message, path=str(path) if path is not None else None, line=line, key=key)

    def describe(self) -> str:
        parts = [p for p in (self.location, self.rule, f"key '{self.key}'" if self.key else "") if p]
        return f"{': '.join(parts)}: {self.message}" if parts else self.message


class _KindedError(SigmaEngineError):
    """An error whose ``reason`` is given by whoever raises it (first argument)."""

    def __init__(self, reason: str, message: str, path: str | Path | None = None, rule: str | None = None, *,
                 line: int | None = None, key: str | None = None) -> None:
        self.reason = reason
        super().__init__(message, path, rule, line=line, key=key)


class RuleParseError(_KindedError):
    """pySigma (or YAML) refused the file or rule; ``reason`` is the pySigma error kind (``condition``, ...)."""


class UnsupportedFeature(_KindedError):
    """The rule parses but uses something the in-process matcher does not evaluate (``reason`` names it)."""


class UnknownPipeline(SigmaEngineError, KeyError):
    """A processing pipeline asked for by a name we do not have (a ``KeyError`` too, as a lookup that failed)."""

    reason = "pipeline"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.describe()
