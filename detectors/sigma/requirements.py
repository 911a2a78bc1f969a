"""What the candidate index can use: literals a rule cannot match without, as alternatives ``(field, literal,
exact)`` of which one must hold, and up to two such groups that must all hold (from different arguments of the
condition's top-level AND)."""

from __future__ import annotations

from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaNumber, SigmaRegularExpression, SigmaString

from detectors.sigma.context import CompileContext, ConditionNode
from detectors.sigma.patterns import string_patterns
from detectors.sigma.regex_analysis import regex_literals
from detectors.sigma.values import flat_values

Requirement = frozenset[tuple[str, str, bool]]  # (field, lower-case literal, exact): one must hold for a match

MIN_LITERAL = 3  # shorter literals are too common to be worth an index entry
KEYWORDS = "*"  # the requirement "field" of keyword literals: any string of the event
MAX_GROUPS = 2


def requirement(node: ConditionNode, ctx: CompileContext) -> Requirement | None:
    """Alternatives ``(field, literal, exact)`` of which at least one holds in every event the node matches: the
    field's lower-cased text equals ``literal`` (exact) or contains it; ``None`` when no such set is known."""
    if node is None or isinstance(node, ConditionNOT):
        return None
    if isinstance(node, ConditionAND):
        options = [r for r in (requirement(arg, ctx) for arg in node.args) if r]
        return max(options, key=_strength, default=None)
    if isinstance(node, ConditionOR):
        union: set[tuple[str, str, bool]] = set()
        for arg in node.args:
            req = requirement(arg, ctx)
            if not req:
                return None
            union |= req
        return frozenset(union)
    if isinstance(node, ConditionFieldEqualsValueExpression | ConditionValueExpression):
        name = node.field if isinstance(node, ConditionFieldEqualsValueExpression) else KEYWORDS
        literals = set()
        for value in flat_values(node.value):
            if isinstance(value, SigmaString):
                for pattern in string_patterns(value, ctx, False):
                    exact = pattern.kind == "eq" and name != KEYWORDS
                    piece = pattern.literal()
                    if not exact and not piece:
                        return None
                    literals.add((name, piece, exact))
            elif isinstance(value, SigmaNumber) and type(value.number) is int and name != KEYWORDS:
                literals.add((name, f"{value.number}", True))
            elif isinstance(value, SigmaRegularExpression) and not value.regexp.contains_placeholder():
                found = regex_literals(str(value.regexp))
                if not found:
                    return None
                literals.update((name, lit, False) for lit in found)
            else:
                return None
        return frozenset(literals) or None
    return None


def requirement_groups(node: ConditionNode, ctx: CompileContext) -> tuple[Requirement, ...]:
    """Up to two requirements that must *all* hold (from different arguments of the top-level AND), most selective
    first: filing a rule under both lets the index skip it unless both kinds of literal are present."""
    if not isinstance(node, ConditionAND):
        req = requirement(node, ctx)
        return (req,) if req else ()
    conjuncts: list[ConditionNode] = []
    pending: list[Any] = list(node.args)
    while pending:
        arg = pending.pop()
        if isinstance(arg, ConditionAND):
            pending.extend(arg.args)
        else:
            conjuncts.append(arg)
    options = sorted((r for r in (requirement(arg, ctx) for arg in conjuncts) if r), key=_strength, reverse=True)
    # a second group is only worth its scanning cost when its literals are themselves selective, or when it is
    # whole values only (a dictionary lookup: ``EventID`` under a ``Provider_Name``)
    second = [r for r in options[1:] if _strength(r)[0] >= MIN_LITERAL + 1 or all(exact for _, _, exact in r)]
    return tuple(options[:1] + second[: MAX_GROUPS - 1])


def _strength(req: Requirement) -> tuple[int, int]:
    """Which of an AND's requirements to file the rule under: the one whose weakest literal is most selective.
    A whole value beats a substring of the same length; a number (an event id) is the last resort, since one
    log source is mostly a few event ids."""
    return (min(_literal_score(lit, exact) for _, lit, exact in req), -len(req))


def _literal_score(literal: str, exact: bool) -> int:
    if exact and literal.isdigit():
        return 1
    return len(literal) + (4 if exact else 0) + (4 if not literal.isascii() else 0)
