"""The streaming Sigma engine: rules loaded and compiled once, then ``process(event) -> list[Alert]`` per event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.sigma.alerts import (
    RISK_SCORES,
    event_ref,
    event_time,
    group_subject,
    subject_fields,
    techniques,
)
from detectors.sigma.compile import CompiledRule, compile_rule
from detectors.sigma.correlation import CompiledCorrelation, CorrelationEngine, compile_correlation
from detectors.sigma.errors import SigmaEngineError
from detectors.sigma.fields import reset_event_cache
from detectors.sigma.index import RuleIndex
from detectors.sigma.loader import LoadReport, load_rules, rule_name
from detectors.sigma.pipelines import get_pipeline
from soc.core.model import Alert, Event, Rule, Severity

MAX_CORRELATION_DEPTH = 4

RulePaths = Iterable[str | Path]  # rule files and folders
PipelineNames = str | list[str] | None  # processing pipelines by name (pipelines.PIPELINES), None for ours
Placeholders = Mapping[str, list[str]] | None  # values of %placeholders% (the expand modifier)


@dataclass
class RuleSet:
    """Compiled rules and correlations, with the load report (problems include rules we could not compile)."""

    rules: list[CompiledRule]
    correlations: list[CompiledCorrelation]
    report: LoadReport

    @classmethod
    def from_paths(cls, paths: RulePaths, pipeline: PipelineNames = None, placeholders: Placeholders = None) -> RuleSet:
        report = load_rules(paths)
        processing = get_pipeline(pipeline)
        rules: list[CompiledRule] = []
        for rule in report.rules:
            try:
                rules.append(compile_rule(rule, processing, placeholders))
            except SigmaEngineError as exc:
                report.add(exc)
        compiled_ids = {r.id for r in rules} | {rule_name(c) for c in report.correlations}
        correlations = []
        for corr in report.correlations:
            try:
                compiled = compile_correlation(corr, processing)
            except SigmaEngineError as exc:
                report.add(exc)
                continue
            missing = [rid for rid in compiled.rule_ids if rid not in compiled_ids]
            if missing:
                report.add(SigmaEngineError(f"referenced rules not compiled: {', '.join(missing)}", compiled.path,
                                            compiled.id))
                continue
            correlations.append(compiled)
        return cls(rules, correlations, report)


class SigmaEngine:
    """Match events against compiled rules; turn matches (and fired correlations) into alerts.

    ``window`` is the alert time bucket in seconds: matches of one rule on one host within a bucket share an
    alert id, so the store folds them into one alert.
    """

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        correlations: Sequence[CompiledCorrelation] = (),
        *,
        window: int = 3600,
        naive: bool = False,
        max_groups: int = 10_000,
        max_events: int = 1_000,
    ) -> None:
        self.index = RuleIndex(rules, naive=naive)
        self.correlation = CorrelationEngine(list(correlations), max_groups=max_groups, max_events=max_events)
        self.window = window
        self.stats: Counter[str] = Counter()

    @classmethod
    def from_paths(cls, paths: RulePaths, pipeline: PipelineNames = None, placeholders: Placeholders = None, *,
                   window: int = 3600) -> SigmaEngine:
        ruleset = RuleSet.from_paths(paths, pipeline, placeholders)
        return cls(ruleset.rules, ruleset.correlations, window=window)

    def match(self, event: Event) -> list[CompiledRule]:
        """The rules the event matches, in rule order."""
        reset_event_cache()
        return [rule for rule in self.index.candidates(event) if rule.matcher(event)]

    def evaluate(self, event: Event) -> tuple[list[CompiledRule], list[Alert]]:
        """The rules the event matches and the correlation alerts it completes."""
        self.stats["events"] += 1
        matches = self.match(event)
        fired: list[Alert] = []
        ts: float | None = None
        for rule in matches:
            if self.correlation.referenced(rule.id):
                ts = event_time(event) if ts is None else ts
                self._correlate(rule.id, event, ts, fired)
        self.stats["matches"] += len(matches)
        return matches, fired

    def process(self, event: Event) -> list[Alert]:
        """Alerts for one event: one per matching rule (unless only correlations use it), plus fired correlations."""
        matches, fired = self.evaluate(event)
        alerts = [self.alert(rule, event) for rule in matches if rule.output] + fired
        self.stats["alerts"] += len(alerts)
        return alerts

    def _correlate(self, rule_id: str, event: Event, ts: float, alerts: list[Alert], depth: int = 0) -> None:
        for alert in self.correlation.observe(rule_id, event, ts):
            alerts.append(alert)
            if depth < MAX_CORRELATION_DEPTH and self.correlation.referenced(alert.rule.id):
                inner: Event = {**alert.ecs, "@timestamp": alert.last_seen, "event": {"id": alert.id}}
                self._correlate(alert.rule.id, inner, ts, alerts, depth + 1)

    def alert(self, rule: CompiledRule, event: Event) -> Alert:
        severity = Severity.parse(rule.level)
        subject = group_subject(event)
        timestamp = event_ref(event)["timestamp"]
        return Alert(
            rule=Rule(rule.id, rule.title, "sigma", rule.description, (rule.references or [""])[0]),
            severity=severity,
            group_key=subject,
            time_bucket=int(event_time(event) // self.window),
            first_seen=timestamp,
            last_seen=timestamp,
            message=f"{rule.title} on {subject}",
            risk_score=RISK_SCORES[severity],
            techniques=techniques(rule.tags),
            ecs=subject_fields(event, rule.fields),
            evidence={"events": [event_ref(event)], "rule_file": rule.path},
        )
