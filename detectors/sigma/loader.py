"""Sigma rule files and folders to pySigma objects, with a report of every file or rule that could not be loaded.

YAML is read with pySigma's own C-accelerated loader (duplicate keys are errors, as in pySigma) and handed to
``SigmaCollection.from_dicts`` per file, so one broken file never stops the others.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.modifiers import SigmaWideModifier, modifier_mapping
from sigma.rule import SigmaRule
from sigma.rule.base import SigmaYAMLLoader

from detectors.sigma.errors import RuleParseError, SigmaEngineError

RULE_SUFFIXES = (".yml", ".yaml")

# The Sigma specification names UTF-16LE both "wide" and "utf16le"; pySigma 1.5.1 only knows "wide".
modifier_mapping.setdefault("utf16le", SigmaWideModifier)


def error_reason(exc: BaseException) -> str:
    """``SigmaConditionError`` -> ``condition``: the counter key for a pySigma error."""
    name = type(exc).__name__.removeprefix("Sigma").removesuffix("Error") or "sigma"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(slots=True)
class Problem:
    """One file or rule left out, and why."""

    path: str
    reason: str
    message: str
    rule: str | None = None
    line: int | None = None
    key: str | None = None  # the field the problem is in

    @classmethod
    def from_error(cls, exc: SigmaEngineError) -> Problem:
        return cls(exc.path or "", exc.reason, exc.message, exc.rule, exc.line, exc.key)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        where = f"{where} ({self.rule})" if self.rule else where
        key = f"key '{self.key}': " if self.key else ""
        return f"{where}: [{self.reason}] {key}{self.message}"


@dataclass
class LoadReport:
    """Rules that loaded and problems with the rest. ``files`` counts rule files read."""

    rules: list[SigmaRule] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    def by_reason(self) -> Counter[str]:
        return Counter(p.reason for p in self.problems)

    def add(self, exc: SigmaEngineError) -> None:
        self.problems.append(Problem.from_error(exc))


def error_line(exc: BaseException) -> int | None:
    """The line (1-based) a YAML or pySigma error points at, when it says."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    source = getattr(exc, "source", None)
    return source.line if isinstance(source, SigmaRuleLocation) else None


def rule_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Rule files under the given files and folders, folders walked in sorted order."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
        else:
            yield path


def rule_name(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return str(rule.id) if rule.id else (rule.name or rule.title)


def _parse_file(path: Path) -> SigmaCollection:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleParseError("unreadable", str(exc), path) from exc
    try:
        docs = list(yaml.load_all(text, Loader=SigmaYAMLLoader))
    except yaml.YAMLError as exc:
        raise RuleParseError("yaml", str(exc).replace("\n", " "), path, line=error_line(exc)) from exc
    if not any(isinstance(d, dict) for d in docs):
        raise RuleParseError("not_a_rule", "no YAML mapping in file", path)
    try:
        return SigmaCollection.from_dicts(
            docs, collect_errors=True, source=SigmaRuleLocation(path), collect_filters=True, resolve_references=False
        )
    except (SigmaError, TypeError, AttributeError, KeyError, ValueError) as exc:
        raise RuleParseError(error_reason(exc), str(exc), path, line=error_line(exc)) from exc


def load_rules(paths: Iterable[str | Path]) -> LoadReport:
    """Every rule under ``paths``: parsed ones in ``rules``/``correlations``, the rest in ``problems``."""
    report = LoadReport()
    collections: list[SigmaCollection] = []
    for path in rule_files(paths):
        report.files += 1
        try:
            collections.append(_parse_file(path))
        except SigmaEngineError as exc:
            report.add(exc)
    merged = SigmaCollection.merge(collections, resolve_references=False)
    if merged.filters:  # Sigma filters (meta rules) apply across files, so only once everything is read
        merged.apply_filters(merged.filters)
    for error in merged.errors:  # collection-level errors (unknown action, ...)
        where = str(error.source.path) if error.source else ""
        report.add(RuleParseError(error_reason(error), str(error.args[0] if error.args else error), where,
                                  line=error_line(error)))
    for rule in merged.rules:
        where = str(rule.source.path) if rule.source else ""
        if rule.errors:
            first = rule.errors[0]
            report.add(RuleParseError(error_reason(first), str(first.args[0] if first.args else first), where,
                                      rule_name(rule), line=error_line(first)))
        elif isinstance(rule, SigmaCorrelationRule):
            report.correlations.append(rule)
        elif isinstance(rule, SigmaRule):
            report.rules.append(rule)
        else:
            report.add(RuleParseError("filter", "Sigma filters are not applied by the engine", where,
                                      rule_name(rule)))
    _resolve_references(merged, report)
    return report


def _resolve_references(collection: SigmaCollection, report: LoadReport) -> None:
    """Link correlation rules to the rules they name; one with a missing rule is reported and dropped."""
    kept = []
    for corr in report.correlations:
        try:
            corr.resolve_rule_references(collection)
        except SigmaError as exc:
            path = str(corr.source.path) if corr.source else ""
            report.add(RuleParseError(error_reason(exc), str(exc.args[0] if exc.args else exc), path,
                                      rule_name(corr)))
            continue
        kept.append(corr)
    report.correlations = kept
