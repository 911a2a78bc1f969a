"""A rule's condition planned as checks: NOT/AND/OR over leaves, where each leaf is one field's values (OR'ed
values of one field merged into one leaf: strings into one string-set test, numbers into one set lookup, networks
into one address parse), a presence test (``null``, ``exists``), or a closure for the rarer forms (keywords, field
references).  :mod:`detectors.sigma.codegen` turns a plan into the rule's function."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.modifiers import SigmaBase64Modifier, SigmaBase64OffsetModifier
from sigma.rule import SigmaDetectionItem
from sigma.types import (
    SigmaCIDRExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SigmaType,
)

from detectors.sigma.context import CompileContext, ConditionNode, Matcher, ValueTest
from detectors.sigma.fields import as_text, event_strings, event_text, field_getter
from detectors.sigma.patterns import StringPattern, string_patterns, string_set_test
from detectors.sigma.values import compile_value, flat_values, networks_test, number_set_test
from soc.core.model import Event


@dataclass(slots=True, eq=False)
class PlanNot:
    arg: Plan


@dataclass(slots=True, eq=False)
class PlanAnd:
    args: list[Plan]


@dataclass(slots=True, eq=False)
class PlanOr:
    args: list[Plan]


@dataclass(slots=True, eq=False)
class PlanField:
    """Values of one field (OR): ``test`` is the whole test of one present scalar; for a string value it equals
    the string ``patterns`` or any of ``others``."""

    name: str
    patterns: list[StringPattern]
    others: list[ValueTest]
    test: ValueTest


@dataclass(slots=True, eq=False)
class PlanPresence:
    """``null`` (``present=False``) or ``exists``."""

    name: str
    present: bool


@dataclass(slots=True, eq=False)
class PlanCall:
    matcher: Matcher


@dataclass(slots=True, eq=False)
class PlanConst:
    value: bool


Plan = PlanNot | PlanAnd | PlanOr | PlanField | PlanPresence | PlanCall | PlanConst


def plan_condition(node: ConditionNode, ctx: CompileContext) -> Plan:
    if node is None:
        return PlanConst(False)
    if isinstance(node, ConditionNOT):
        return PlanNot(plan_condition(node.args[0], ctx))
    if isinstance(node, ConditionAND):
        parts = [plan_condition(arg, ctx) for arg in node.args]
        return parts[0] if len(parts) == 1 else PlanAnd(parts)
    if isinstance(node, ConditionOR | ConditionFieldEqualsValueExpression | ConditionValueExpression):
        args = list(node.args) if isinstance(node, ConditionOR) else [node]
        parts = _plan_or_args(args, ctx)
        return parts[0] if len(parts) == 1 else PlanOr(parts)
    raise ctx.unsupported("condition", f"condition element {type(node).__name__} is not supported")


def _plan_or_args(args: list[Any], ctx: CompileContext) -> list[Plan]:
    """OR arguments, with plain field/value leaves grouped by (field, casing) into one leaf each."""
    grouped: dict[tuple[str | None, bool], list[SigmaType]] = {}
    out: list[Plan] = []
    for arg in args:
        if isinstance(arg, ConditionFieldEqualsValueExpression):
            special = _special_leaf(arg.field, arg.value, ctx)
            if special is not None:
                out.append(special)
            else:
                grouped.setdefault((arg.field, _leaf_cased(arg)), []).extend(flat_values(arg.value))
        elif isinstance(arg, ConditionValueExpression):
            grouped.setdefault((None, _leaf_cased(arg)), []).extend(flat_values(arg.value))
        else:
            out.append(plan_condition(arg, ctx))
    for (name, cased), values in grouped.items():
        if name is None:
            out.insert(0, PlanCall(_keyword_matcher(values, ctx)))
        else:
            out.insert(0, _field_plan(name, values, ctx, cased))
    return out


def _field_plan(name: str, values: list[SigmaType], ctx: CompileContext, cased: bool) -> PlanField:
    ctx = ctx.at(name)  # its errors name the field
    patterns: list[StringPattern] = []
    others: list[ValueTest] = []
    numbers: set[int | float] = set()
    networks: list[Any] = []
    for value in values:
        if isinstance(value, SigmaString):
            patterns.extend(string_patterns(value, ctx, cased))
        elif type(value) is SigmaNumber:
            numbers.add(value.number)
        elif type(value) is SigmaCIDRExpression:
            networks.append(value.network)
        else:
            others.append(compile_value(value, ctx, cased))
    # a list of numbers (fifty ports) is one set lookup, a list of networks one address parse
    if numbers:
        others.insert(0, number_set_test(frozenset(numbers)))
    if networks:
        others.append(networks_test(tuple(networks)))
    tests = ([string_set_test(patterns)] if patterns else []) + others
    if len(tests) == 1:
        test = tests[0]
    else:

        def test(v: Any) -> bool:
            return any(t(v) for t in tests)

    return PlanField(name, patterns, others, test)


def _leaf_cased(node: ConditionFieldEqualsValueExpression | ConditionValueExpression) -> bool:
    """Base64 encodings are case-significant: match them as written."""
    item = node.parent
    return isinstance(item, SigmaDetectionItem) and any(
        m in (SigmaBase64Modifier, SigmaBase64OffsetModifier) for m in item.modifiers
    )


def _special_leaf(name: str, value: SigmaType, ctx: CompileContext) -> Plan | None:
    """Leaves that look at presence or at another field rather than at one value."""
    if isinstance(value, SigmaNull):
        return PlanPresence(name, False)
    if isinstance(value, SigmaExists):
        return PlanPresence(name, bool(value.exists))
    if isinstance(value, SigmaFieldReference):
        get = field_getter(name)
        other = field_getter(value.field)
        starts, ends = value.starts_with, value.ends_with

        def fieldref(ev: Event) -> bool:
            a, b = get(ev), other(ev)
            if a is None or b is None:
                return False
            left, right = as_text(a).lower(), as_text(b).lower()
            if starts and ends:
                return right in left
            if starts:
                return left.startswith(right)
            if ends:
                return left.endswith(right)
            return left == right

        return PlanCall(fieldref)
    return None


def _keyword_matcher(values: list[SigmaType], ctx: CompileContext) -> Matcher:
    """Keywords search inside values, like a full-text search: plain words are substrings of some value."""
    needles: list[str] = []
    patterns: list[StringPattern] = []
    others: list[ValueTest] = []
    for value in values:
        if not isinstance(value, SigmaString):
            others.append(compile_value(value, ctx, False))
            continue
        for s in string_patterns(value, ctx, False):
            if s.kind in ("eq", "prefix", "suffix", "contains") and not s.cased and "\n" not in s.text:
                needles.append(s.text)
            elif s.kind == "regex":
                unanchored = f".*{s.text}.*"
                patterns.append(StringPattern("regex", unanchored, s.cased, re.compile(unanchored, re.DOTALL)))
            else:
                patterns.append(StringPattern("contains", s.text, s.cased))
    if patterns:
        others.append(string_set_test(patterns))

    def match(ev: Event) -> bool:
        if needles:
            text = event_text(ev)
            for needle in needles:
                if needle in text:
                    return True
        return bool(others) and any(t(value) for value in event_strings(ev) for t in others)

    return match
