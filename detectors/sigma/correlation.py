"""Sigma correlation rules (event_count, value_count, temporal, temporal_ordered) evaluated on the match stream.

State is bounded: per correlation at most ``max_groups`` groups (least recently updated evicted first, counted) and
per group at most ``max_events`` matches inside the timespan.  Time is the events' own ``@timestamp``; a match
older than the group's window is dropped.  A condition that is reached raises one alert listing the contributing
events and resets the group, so a burst of 100 failures with ``gte: 10`` gives ten alerts, not ninety-one.
``lt``/``lte``/``neq`` conditions (true for silence) and the value_sum/avg/percentile/median types cannot be
decided on a stream without timers and are reported as unsupported.

Group-by and field names are Sigma names, mapped per referenced rule through the same processing pipeline as the
rule (so ``TargetUserName`` groups Windows events by ``winlog.event_data.TargetUserName``); aliases are honoured.
A correlation may reference another correlation (many failures, *then* a success): the inner one's alerts, which
carry its group-by fields, are fed to the outer one as events.  ``generate: false`` (the default) silences the
referenced *base* rules, as the specification says; a referenced correlation still raises its own alerts, since a
brute force is worth an alert whether or not a success follows.
"""

from __future__ import annotations

import operator
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule, SigmaCorrelationType
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detectors.sigma.alerts import RISK_SCORES, event_ref, techniques
from detectors.sigma.errors import UnsupportedFeature
from detectors.sigma.fields import Getter, as_text, field_getter
from detectors.sigma.loader import rule_name
from soc.core.model import Alert, Event, Rule, Severity, set_field

_OPS: dict[str, Callable[[int, int], bool]] = {"gte": operator.ge, "gt": operator.gt, "eq": operator.eq}
_STREAMABLE = {
    SigmaCorrelationType.EVENT_COUNT: "event_count",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
    SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
}


def _base_rule(rule: SigmaRule | SigmaCorrelationRule) -> SigmaRule:
    while isinstance(rule, SigmaCorrelationRule):
        rule = rule.referenced_rules[0].rule
    return rule


def mapped_field(pipeline: ProcessingPipeline | None, rule: SigmaRule, name: str) -> str:
    """The event field a Sigma field name becomes for ``rule``'s log source under ``pipeline``."""
    if pipeline is None:
        return name
    probe = SigmaRule.from_dict(
        {
            "title": "field probe",
            "logsource": {k: v for k, v in rule.logsource.to_dict().items() if v},
            "detection": {"probe": {name: "x"}, "condition": "probe"},
        }
    )
    pipeline.apply(probe)
    item = probe.detection.detections["probe"].detection_items[0]
    return str(getattr(item, "field", name) or name)


@dataclass(slots=True, eq=False)
class CompiledCorrelation:
    id: str
    title: str
    level: str
    tags: list[str]
    type: str
    rule_ids: list[str]  # the referenced rules, in the rule's order (temporal_ordered)
    group_by: list[str]
    group_fields: list[str]  # the group-by fields as named in the events (and in this correlation's alerts)
    group_getters: dict[str, list[Getter]]  # per referenced rule id
    value_getters: dict[str, Getter]  # value_count: per referenced rule id
    timespan: float
    op: str
    count: int
    path: str = ""
    description: str = ""
    reference: str = ""


def compile_correlation(corr: SigmaCorrelationRule, pipeline: ProcessingPipeline | None) -> CompiledCorrelation:
    path = str(corr.source.path) if corr.source else ""
    name = rule_name(corr)
    kind = _STREAMABLE.get(corr.type)
    if kind is None:
        raise UnsupportedFeature("correlation_type", f"correlation type {corr.type} is not evaluated", path, name)
    rules: list[SigmaRule | SigmaCorrelationRule] = [ref.rule for ref in corr.referenced_rules]
    condition = corr.condition
    if isinstance(condition, SigmaCorrelationCondition):
        op, count = condition.op.name.lower(), condition.count
    elif kind.startswith("temporal") and condition is None:
        op, count = "gte", len(rules)
    else:
        raise UnsupportedFeature("correlation_condition", "extended correlation conditions are not evaluated",
                                 path, name)
    if op not in _OPS:
        raise UnsupportedFeature("correlation_condition", f"condition '{op}' cannot be decided on a stream",
                                 path, name)
    group_by = list(corr.group_by or [])
    aliases = {alias.alias: alias for alias in corr.aliases}
    group_getters: dict[str, list[Getter]] = {}
    value_getters: dict[str, Getter] = {}
    for rule in rules:
        rid = rule_name(rule)
        base = _base_rule(rule)  # a correlation's alerts carry fields named as its first base rule's events

        def field_map(sigma_name: str, base: SigmaRule = base) -> str:
            return mapped_field(pipeline, base, sigma_name)

        getters = []
        for group in group_by:
            sigma_name = group
            if group in aliases:
                sigma_name = next((f for ref, f in aliases[group].mapping.items() if ref.rule is rule), group)
            getters.append(field_getter(field_map(sigma_name)))
        group_getters[rid] = getters
        if kind == "value_count":
            fieldref = condition.fieldref if isinstance(condition, SigmaCorrelationCondition) else None
            if not isinstance(fieldref, str):
                raise UnsupportedFeature("correlation_condition", "value_count needs one field", path, name)
            value_getters[rid] = field_getter(field_map(fieldref))
    return CompiledCorrelation(
        id=name,
        title=corr.title,
        level=corr.level.name.lower() if corr.level else "medium",
        tags=[str(t) for t in corr.tags],
        type=kind,
        rule_ids=[rule_name(r) for r in rules],
        group_by=group_by,
        group_fields=[mapped_field(pipeline, _base_rule(rules[0]), g) for g in group_by] if rules else group_by,
        group_getters=group_getters,
        value_getters=value_getters,
        timespan=float(corr.timespan.seconds),
        op=op,
        count=count,
        path=path,
        description=corr.description or "",
        reference=(corr.references or [""])[0],
    )


@dataclass(slots=True)
class _Hit:
    ts: float
    rule_id: str
    value: Any
    ref: dict[str, Any]


@dataclass
class CorrelationEngine:
    """Feed it every base-rule match with :meth:`observe`; it returns the correlation alerts that fire."""

    correlations: list[CompiledCorrelation]
    max_groups: int = 10_000
    max_events: int = 1_000
    stats: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._by_rule: dict[str, list[CompiledCorrelation]] = {}
        for corr in self.correlations:
            for rid in dict.fromkeys(corr.rule_ids):
                self._by_rule.setdefault(rid, []).append(corr)
        self._groups: dict[str, OrderedDict[tuple[str, ...], deque[_Hit]]] = {
            c.id: OrderedDict() for c in self.correlations
        }

    def referenced(self, rule_id: str) -> bool:
        return rule_id in self._by_rule

    def observe(self, rule_id: str, event: Event, ts: float) -> list[Alert]:
        alerts = []
        for corr in self._by_rule.get(rule_id, ()):
            values = [g(event) for g in corr.group_getters[rule_id]]
            if any(v is None for v in values):
                self.stats["no_group_field"] += 1
                continue
            key = tuple(as_text(v) for v in values)
            value = corr.value_getters[rule_id](event) if corr.value_getters else None
            if corr.type == "value_count" and value is None:
                self.stats["no_value_field"] += 1
                continue
            alert = self._add(corr, key, _Hit(ts, rule_id, value, event_ref(event)))
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _add(self, corr: CompiledCorrelation, key: tuple[str, ...], hit: _Hit) -> Alert | None:
        groups = self._groups[corr.id]
        hits = groups.get(key)
        if hits is None:
            self._evict(corr, groups, hit.ts)
            hits = groups[key] = deque(maxlen=max(self.max_events, corr.count + 1))
        else:
            groups.move_to_end(key)
        hits.append(hit)
        while hits and hits[0].ts < hit.ts - corr.timespan:
            hits.popleft()
        contributing = self._fired(corr, hits)
        if contributing is None:
            return None
        del groups[key]
        return self._alert(corr, key, contributing)

    def _evict(self, corr: CompiledCorrelation, groups: OrderedDict[tuple[str, ...], deque[_Hit]], now: float) -> None:
        while groups:
            oldest_key = next(iter(groups))
            oldest = groups[oldest_key]
            stale = not oldest or oldest[-1].ts < now - corr.timespan
            if not stale and len(groups) < self.max_groups:  # room for the group about to be added
                return
            if not stale:
                self.stats["evicted_groups"] += 1
            del groups[oldest_key]

    def _fired(self, corr: CompiledCorrelation, hits: deque[_Hit]) -> list[_Hit] | None:
        check = _OPS[corr.op]
        if corr.type == "event_count":
            return list(hits) if check(len(hits), corr.count) else None
        if corr.type == "value_count":
            distinct = {as_text(h.value).lower() for h in hits}
            return list(hits) if check(len(distinct), corr.count) else None
        if corr.type == "temporal":
            seen = {h.rule_id for h in hits}
            return list(hits) if check(len(seen), corr.count) else None
        # temporal_ordered: the referenced rules, in order, each after the previous one
        chain: list[_Hit] = []
        wanted = corr.rule_ids
        for h in sorted(hits, key=lambda h: h.ts):
            if len(chain) < len(wanted) and h.rule_id == wanted[len(chain)]:
                chain.append(h)
        return list(hits) if len(chain) == len(wanted) else None

    def _alert(self, corr: CompiledCorrelation, key: tuple[str, ...], hits: list[_Hit]) -> Alert:
        severity = Severity.parse(corr.level)
        first, last = min(h.ts for h in hits), max(h.ts for h in hits)
        ecs: dict[str, Any] = {}
        for name, value in zip(corr.group_fields, key, strict=True):
            set_field(ecs, name, value)
        group_key = ",".join(f"{n}={v}" for n, v in zip(corr.group_by, key, strict=True)) or "-"
        timestamps = sorted(hits, key=lambda h: h.ts)
        return Alert(
            rule=Rule(corr.id, corr.title, "sigma", corr.description, corr.reference),
            severity=severity,
            group_key=group_key,
            time_bucket=int(first // corr.timespan) if corr.timespan else 0,
            first_seen=timestamps[0].ref["timestamp"],
            last_seen=timestamps[-1].ref["timestamp"],
            message=f"{corr.title} ({corr.type}, {len(hits)} events in {int(last - first)}s, {group_key})",
            risk_score=RISK_SCORES[severity],
            techniques=techniques(corr.tags),
            ecs=ecs,
            evidence={
                "correlation": corr.type,
                "events": [dict(h.ref, rule_id=h.rule_id) for h in timestamps],
            },
            count=len(hits),
        )
