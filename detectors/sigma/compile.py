"""Sigma rules (pySigma's parsed condition trees) to :class:`CompiledRule`: one Python function that tests one nested
ECS event at a time, and the literals the candidate index files the rule under.

Semantics, following the Sigma specification:
- strings match case-insensitively unless ``cased`` (and base64 values, whose case is their meaning); ``*`` and
  ``?`` are wildcards, ``\\*`` ``\\?`` ``\\\\`` literal; a plain string must equal the whole value;
- ``re`` is an unanchored search, case-sensitive unless the ``i`` flag; ``m`` and ``s`` flags as in Python;
- a field missing from the event (or ``None``) makes only its own comparison false (``NOT`` of it is true); a
  ``null`` value matches exactly a missing field; ``exists`` tests presence;
- a list value in the event matches if any element matches;
- keywords (field-less values) are substring searches over the event's text: ``message``, ``event.original``
  and the values of ``winlog.event_data`` (:data:`detectors.sigma.fields.KEYWORD_SCOPE`);
- numbers compare numerically with numbers and with numeric strings (``EventID: 4688`` matches ``"4688"``).

The steps, one module each: :mod:`~detectors.sigma.fields` (reading an event's field),
:mod:`~detectors.sigma.patterns` (Sigma strings as equal/prefix/suffix/contains/regex patterns),
:mod:`~detectors.sigma.regex_analysis` (the literals a regex needs, the literal-and-gap fast path),
:mod:`~detectors.sigma.values` (one test per value type), :mod:`~detectors.sigma.planning` (the condition as
checks), :mod:`~detectors.sigma.codegen` (the generated function) and :mod:`~detectors.sigma.requirements` (what
the index can use).  This module puts them together for one rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionItem, ConditionValueExpression
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import SigmaType

from detectors.sigma.codegen import generate_matcher
from detectors.sigma.context import CompileContext, ConditionNode, Matcher
from detectors.sigma.loader import error_line, error_reason, rule_name
from detectors.sigma.planning import PlanOr, plan_condition
from detectors.sigma.requirements import Requirement, requirement, requirement_groups
from detectors.sigma.values import flat_values
from soc.core.model import Event


@dataclass(slots=True, eq=False)
class CompiledRule:
    """A Sigma rule ready to run: its log source, its matcher and the literals the index files it under."""

    id: str
    title: str
    level: str
    tags: list[str]
    product: str | None
    category: str | None
    service: str | None
    matcher: Matcher
    requirement: Requirement | None  # the most selective of ``requirements``
    path: str
    name: str | None = None
    output: bool = True  # False when only correlation rules should see its matches
    references: list[str] = field(default_factory=list)
    description: str = ""
    fields: list[str] = field(default_factory=list)  # event fields the condition reads
    requirements: tuple[Requirement, ...] = ()  # independent groups: a match needs one literal of each
    sigma: SigmaRule | None = field(default=None, repr=False)

    def matches(self, event: Event) -> bool:
        return self.matcher(event)


def compile_rule(
    rule: SigmaRule,
    pipeline: ProcessingPipeline | None = None,
    placeholders: Mapping[str, list[str]] | None = None,
) -> CompiledRule:
    """Apply ``pipeline`` (field mapping) to ``rule`` in place and compile it; raises :class:`UnsupportedFeature`."""
    path = str(rule.source.path) if rule.source else ""
    ctx = CompileContext(path, rule_name(rule), placeholders or {})
    try:
        if pipeline is not None:
            pipeline.apply(rule)
        trees = [condition.parsed for condition in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise ctx.unsupported(error_reason(exc), str(exc.args[0] if exc.args else exc), error_line(exc)) from exc
    if any(
        isinstance(value, SigmaType) and type(value).__name__ in ("SigmaTimestampPart", "SigmaQueryExpression")
        for tree in trees
        for value in _leaf_values(tree)
    ):
        raise ctx.unsupported("value_type", "timestamp-part or query-expression values are not evaluated")
    plans = [plan_condition(tree, ctx) for tree in trees]
    if len(trees) == 1:
        groups = requirement_groups(trees[0], ctx)
    else:  # several conditions are alternatives: one group, their union
        reqs = [requirement(tree, ctx) for tree in trees]
        groups = (frozenset().union(*[r for r in reqs if r]),) if reqs and all(reqs) else ()
    level = rule.level.name.lower() if rule.level else "medium"
    return CompiledRule(
        id=str(rule.id) if rule.id else rule_name(rule),
        title=rule.title,
        level=level,
        tags=[str(t) for t in rule.tags],
        product=rule.logsource.product,
        category=rule.logsource.category,
        service=rule.logsource.service,
        matcher=generate_matcher(plans[0] if len(plans) == 1 else PlanOr(plans)),
        requirement=groups[0] if groups else None,
        requirements=groups,
        path=path,
        name=rule.name,
        output=rule._output,
        references=list(rule.references),
        description=rule.description or "",
        fields=sorted({name for tree in trees for name in _leaf_fields(tree)}),
        sigma=rule,
    )


def _leaf_values(node: ConditionNode) -> Iterator[SigmaType]:
    if isinstance(node, ConditionItem):
        for arg in node.args:
            yield from _leaf_values(arg)
    elif isinstance(node, ConditionFieldEqualsValueExpression | ConditionValueExpression):
        yield from flat_values(node.value)


def _leaf_fields(node: ConditionNode) -> Iterator[str]:
    if isinstance(node, ConditionItem):
        for arg in node.args:
            yield from _leaf_fields(arg)
    elif isinstance(node, ConditionFieldEqualsValueExpression):
        yield node.field
