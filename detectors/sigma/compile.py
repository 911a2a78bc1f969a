"""Sigma rules (pySigma's parsed condition trees) to Python closures that test one nested ECS event at a time.

Semantics, following the Sigma specification:
- strings match case-insensitively unless ``cased`` (and base64 values, whose case is their meaning); ``*`` and
  ``?`` are wildcards, ``\\*`` ``\\?`` ``\\\\`` literal; a plain string must equal the whole value;
- ``re`` is an unanchored search, case-sensitive unless the ``i`` flag; ``m`` and ``s`` flags as in Python;
- a field missing from the event (or ``None``) makes only its own comparison false (``NOT`` of it is true); a
  ``null`` value matches exactly a missing field; ``exists`` tests presence;
- a list value in the event matches if any element matches;
- keywords (field-less values) are substring searches over the event's text: ``message``, ``event.original``
  and the values of ``winlog.event_data`` (:data:`KEYWORD_SCOPE`);
- numbers compare numerically with numbers and with numeric strings (``EventID: 4688`` matches ``"4688"``).

Each value type is compiled by a small function registered for its pySigma type (:func:`value_compiler`); OR
nodes over the same field are merged into one test that reads and lower-cases the field once.  Alongside the
matcher, :func:`requirement` derives literals a rule cannot match without, for the candidate index.
"""

from __future__ import annotations

import ipaddress
import operator
import re
import re._constants as _sre  # the regex parser's opcodes, for regex_literals
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.modifiers import SigmaBase64Modifier, SigmaBase64OffsetModifier
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetectionItem, SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from detectors.sigma.errors import UnsupportedFeature
from detectors.sigma.loader import error_reason, rule_name
from soc.model import Event

Getter = Callable[[Event], Any]
ValueTest = Callable[[Any], bool]  # one present, scalar value -> bool
Matcher = Callable[[Event], bool]
Requirement = frozenset[tuple[str, str, bool]]  # (field, lower-case literal, exact): one must hold for a match

MIN_LITERAL = 3  # shorter literals are too common to be worth an index entry


@dataclass(frozen=True, slots=True)
class CompileContext:
    path: str = ""
    rule: str = ""
    placeholders: Mapping[str, list[str]] = field(default_factory=dict)

    def unsupported(self, reason: str, message: str) -> UnsupportedFeature:
        return UnsupportedFeature(reason, message, self.path, self.rule)


# --- reading fields --------------------------------------------------------------------------------------------


def field_getter(dotted: str) -> Getter:
    """``a.b.c`` on a nested event (``None`` when missing); a flat dotted key is found as a fallback."""
    parts = tuple(dotted.split("."))
    if len(parts) == 1:
        return lambda ev: ev.get(dotted)
    if len(parts) == 3:
        p0, p1, p2 = parts

        def get3(ev: Event) -> Any:
            node = ev.get(p0)
            if type(node) is dict:
                node = node.get(p1)
                if type(node) is dict:
                    return node.get(p2)
            return ev.get(dotted)

        return get3

    def get(ev: Event) -> Any:
        node: Any = ev
        for part in parts:
            if type(node) is not dict:
                return ev.get(dotted)
            node = node.get(part)
            if node is None:
                return ev.get(dotted)
        return node

    return get


def as_text(value: Any) -> str:
    """The text a string pattern is compared with."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


KEYWORD_SCOPE = ("message", "event.original", "winlog.event_data")


def event_strings(event: Event) -> list[str]:
    """What keywords search: the scalars under ``message``, ``event.original`` and ``winlog.event_data`` (the
    text of a log line or the data of a Windows event), as text."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if type(node) is str:
            out.append(node)
        elif type(node) is dict:
            strings = [v for v in node.values() if type(v) is str]
            if len(strings) == len(node):  # the usual flat block of strings (Windows event data)
                out.extend(strings)
                return
            for value in node.values():
                walk(value)
        elif type(node) is list:
            for value in node:
                walk(value)
        elif node is not None:
            out.append(as_text(node))

    for getter in _KEYWORD_GETTERS:
        value = getter(event)
        if value is not None:
            walk(value)
    return out


_last_text: list[Any] = [None, ""]  # one-slot cache: several keyword rules usually test the same event in a row


def reset_event_cache() -> None:
    """Forget the cached event text (a caller that reuses one dict for several events calls this between)."""
    _last_text[0] = None


def event_text(event: Event) -> str:
    """All strings of the event, lower-cased, one per line: a substring without a newline found here lies
    inside one value."""
    if _last_text[0] is not event:
        _last_text[0], _last_text[1] = event, "\n".join(event_strings(event)).lower()
    return str(_last_text[1])


_KEYWORD_GETTERS = [field_getter(name) for name in KEYWORD_SCOPE]


# --- value tests, one compiler per pySigma value type ----------------------------------------------------------

_VALUE_COMPILERS: dict[type, Callable[[Any, CompileContext, bool], ValueTest]] = {}


def value_compiler(*types: type) -> Callable[[Callable[[Any, CompileContext, bool], ValueTest]], Any]:
    def register(func: Callable[[Any, CompileContext, bool], ValueTest]) -> Any:
        for klass in types:
            _VALUE_COMPILERS[klass] = func
        return func

    return register


def compile_value(value: SigmaType, ctx: CompileContext, cased: bool = False) -> ValueTest:
    for klass in type(value).__mro__:
        compiler = _VALUE_COMPILERS.get(klass)
        if compiler is not None:
            return compiler(value, ctx, cased)
    raise ctx.unsupported(error_reason_for_type(value), f"value type {type(value).__name__} is not supported")


def error_reason_for_type(value: SigmaType) -> str:
    name = type(value).__name__.removeprefix("Sigma")
    return "value_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True, slots=True)
class StringPattern:
    """A Sigma string as one of: eq, prefix, suffix, contains, any, regex (fold applied to ``text``)."""

    kind: str
    text: str
    cased: bool
    regex: re.Pattern[str] | None = None

    @classmethod
    def from_sigma(cls, value: SigmaString, cased: bool) -> StringPattern:
        parts = list(value.s)
        fold: Callable[[str], str] = (lambda s: s) if cased else str.lower
        multi = SpecialChars.WILDCARD_MULTI
        if all(isinstance(p, str) for p in parts):
            return cls("eq", fold("".join(str(p) for p in parts)), cased)
        inner = parts[1:-1] if len(parts) >= 2 else []
        if parts == [multi]:
            return cls("any", "", cased)
        if len(parts) == 2 and parts[1] is multi and isinstance(parts[0], str):
            return cls("prefix", fold(parts[0]), cased)
        if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
            return cls("suffix", fold(parts[1]), cased)
        if len(parts) == 3 and parts[0] is multi and parts[2] is multi and all(isinstance(p, str) for p in inner):
            return cls("contains", fold(str(parts[1])), cased)
        regex = "".join(
            ".*" if p is multi else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(fold(str(p)))
            for p in parts
        )
        return cls("regex", regex, cased, re.compile(regex, re.DOTALL))

    def literal(self) -> str:
        """The longest plain piece every match contains (lower-case, for the index)."""
        if self.kind != "regex":
            return self.text.lower()
        pieces = re.split(r"\.\*|(?<!\\)\.", self.text)
        best = max((re.sub(r"\\(.)", r"\1", p) for p in pieces), key=len, default="")
        return best.lower()


def string_set_test(patterns: list[StringPattern]) -> ValueTest:
    """One test for many string patterns on the same value: the value is folded once, prefixes/suffixes tested
    as tuples, equalities as a set."""
    groups: list[ValueTest] = []
    for cased in (False, True):
        mine = [p for p in patterns if p.cased == cased]
        if not mine:
            continue
        if any(p.kind == "any" for p in mine):
            return lambda v: True
        eq = frozenset(p.text for p in mine if p.kind == "eq")
        pre = tuple(p.text for p in mine if p.kind == "prefix")
        suf = tuple(p.text for p in mine if p.kind == "suffix")
        sub = tuple(p.text for p in mine if p.kind == "contains")
        rx = tuple(p.regex for p in mine if p.regex is not None)
        groups.append(_folded_test(eq, pre, suf, sub, rx, cased))
    if len(groups) == 1:
        return groups[0]
    first, second = groups
    return lambda v: first(v) or second(v)


def _folded_test(
    eq: frozenset[str],
    pre: tuple[str, ...],
    suf: tuple[str, ...],
    sub: tuple[str, ...],
    rx: tuple[re.Pattern[str], ...],
    cased: bool,
) -> ValueTest:
    if len(eq) == 1 and not (pre or suf or sub or rx):
        (only,) = eq
        if cased:
            return lambda v: as_text(v) == only
        return lambda v: as_text(v).lower() == only
    if len(sub) == 1 and not (eq or pre or suf or rx):
        (needle,) = sub
        if cased:
            return lambda v: needle in as_text(v)
        return lambda v: needle in as_text(v).lower()

    def test(v: Any) -> bool:
        text = as_text(v) if cased else as_text(v).lower()
        if text in eq or text.startswith(pre) or text.endswith(suf):
            return True
        for needle in sub:
            if needle in text:
                return True
        return any(r.fullmatch(text) for r in rx)

    return test


def _expand_placeholders(value: SigmaString, ctx: CompileContext) -> list[SigmaString]:
    def values(placeholder: Placeholder) -> Iterator[SigmaString]:
        if placeholder.name not in ctx.placeholders:
            raise ctx.unsupported("placeholder", f"no value for placeholder %{placeholder.name}%")
        for item in ctx.placeholders[placeholder.name]:
            yield SigmaString(item)

    return value.replace_placeholders(values)


def string_patterns(value: SigmaString, ctx: CompileContext, cased: bool) -> list[StringPattern]:
    cased = cased or isinstance(value, SigmaCasedString)
    strings = _expand_placeholders(value, ctx) if value.contains_placeholder() else [value]
    return [StringPattern.from_sigma(s, cased) for s in strings]


@value_compiler(SigmaString)
def _string(value: SigmaString, ctx: CompileContext, cased: bool) -> ValueTest:
    return string_set_test(string_patterns(value, ctx, cased))


def _to_number(v: Any) -> float | None:
    if type(v) is bool:
        return None
    if isinstance(v, int | float):
        return v
    try:
        return float(str(v).strip())
    except ValueError:
        return None


@value_compiler(SigmaNumber)
def _number(value: SigmaNumber, ctx: CompileContext, cased: bool) -> ValueTest:
    number = value.number

    def test(v: Any) -> bool:
        if type(v) is int:
            return v == number
        return _to_number(v) == number

    return test


@value_compiler(SigmaBool)
def _bool(value: SigmaBool, ctx: CompileContext, cased: bool) -> ValueTest:
    wanted = bool(value.boolean)
    text = "true" if wanted else "false"
    return lambda v: v is wanted or (type(v) is str and v.strip().lower() == text)


@value_compiler(SigmaRegularExpression)
def _regex(value: SigmaRegularExpression, ctx: CompileContext, cased: bool) -> ValueTest:
    if value.regexp.contains_placeholder():
        raise ctx.unsupported("placeholder", "placeholders inside regular expressions are not expanded")
    flags = 0
    for flag in value.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    pattern = re.compile(str(value.regexp), flags)
    # literals any match contains, tested first: cheap, and they spare the regex engine the hopeless texts on
    # which SigmaHQ's ".+a.+b.+" patterns backtrack for milliseconds
    groups = [tuple(g) for g in regex_literal_groups(str(value.regexp))]
    if not groups:
        return lambda v: pattern.search(as_text(v)) is not None

    # under IGNORECASE Python also equates a few non-ASCII letters with ASCII ones (the long s, the Kelvin sign)
    # that lower() keeps apart: the shortcut only judges ASCII texts then
    ignorecase = bool(pattern.flags & re.IGNORECASE)

    def test(v: Any) -> bool:
        text = as_text(v)
        if ignorecase and not text.isascii():
            return pattern.search(text) is not None
        lowered = text.lower()
        for group in groups:
            for literal in group:
                if literal in lowered:
                    break
            else:
                return False
        return pattern.search(text) is not None

    return test


@value_compiler(SigmaCIDRExpression)
def _cidr(value: SigmaCIDRExpression, ctx: CompileContext, cased: bool) -> ValueTest:
    network = value.network

    def test(v: Any) -> bool:
        try:
            address = ipaddress.ip_address(as_text(v).strip())
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.version == network.version and address in network

    return test


_COMPARE = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
}


@value_compiler(SigmaCompareExpression)
def _compare(value: SigmaCompareExpression, ctx: CompileContext, cased: bool) -> ValueTest:
    op = _COMPARE.get(value.op, operator.ne)
    number = value.number.number

    def test(v: Any) -> bool:
        n = _to_number(v)
        return n is not None and op(n, number)

    return test


@value_compiler(SigmaExpansion)
def _expansion(value: SigmaExpansion, ctx: CompileContext, cased: bool) -> ValueTest:
    tests = [compile_value(v, ctx, cased) for v in value.values]
    return lambda v: any(t(v) for t in tests)


# --- leaves ----------------------------------------------------------------------------------------------------


def _leaf_cased(node: ConditionFieldEqualsValueExpression | ConditionValueExpression) -> bool:
    """Base64 encodings are case-significant: match them as written."""
    item = node.parent
    return isinstance(item, SigmaDetectionItem) and any(
        m in (SigmaBase64Modifier, SigmaBase64OffsetModifier) for m in item.modifiers
    )


def _flat_values(value: SigmaType) -> list[SigmaType]:
    return [x for v in value.values for x in _flat_values(v)] if isinstance(value, SigmaExpansion) else [value]


def _field_matcher(getter: Getter, test: ValueTest) -> Matcher:
    def match(ev: Event) -> bool:
        v = getter(ev)
        if v is None:
            return False
        if type(v) is list:
            return any(x is not None and test(x) for x in v)
        return test(v)

    return match


def _special_leaf(name: str, value: SigmaType, ctx: CompileContext) -> Matcher | None:
    """Leaves that look at presence or at another field rather than at one value."""
    get = field_getter(name)
    if isinstance(value, SigmaNull):
        return lambda ev: get(ev) is None
    if isinstance(value, SigmaExists):
        wanted = bool(value.exists)
        return lambda ev: (get(ev) is not None) is wanted
    if isinstance(value, SigmaFieldReference):
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

        return fieldref
    return None


def _group_test(values: list[SigmaType], ctx: CompileContext, cased: bool) -> ValueTest:
    """One test for several values on one field (OR): strings merged into one string-set test."""
    patterns: list[StringPattern] = []
    others: list[ValueTest] = []
    for value in values:
        if isinstance(value, SigmaString):
            patterns.extend(string_patterns(value, ctx, cased))
        else:
            others.append(compile_value(value, ctx, cased))
    if patterns:
        others.insert(0, string_set_test(patterns))
    if len(others) == 1:
        return others[0]
    return lambda v: any(t(v) for t in others)


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


# --- condition trees -------------------------------------------------------------------------------------------

ConditionNode = ConditionItem | ConditionFieldEqualsValueExpression | ConditionValueExpression | None


def compile_condition(node: ConditionNode, ctx: CompileContext) -> Matcher:
    if node is None:
        return lambda ev: False
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0], ctx)
        return lambda ev: not inner(ev)
    if isinstance(node, ConditionAND):
        parts = [compile_condition(arg, ctx) for arg in node.args]
        return _all(parts)
    if isinstance(node, ConditionOR):
        return _any(_compile_or_args(list(node.args), ctx))
    if isinstance(node, ConditionFieldEqualsValueExpression | ConditionValueExpression):
        return _any(_compile_or_args([node], ctx))
    raise ctx.unsupported("condition", f"condition element {type(node).__name__} is not supported")


def _compile_or_args(args: list[Any], ctx: CompileContext) -> list[Matcher]:
    """OR arguments, with plain field/value leaves grouped by (field, casing) into one matcher each."""
    grouped: dict[tuple[str | None, bool], list[SigmaType]] = {}
    out: list[Matcher] = []
    for arg in args:
        if isinstance(arg, ConditionFieldEqualsValueExpression):
            special = _special_leaf(arg.field, arg.value, ctx)
            if special is not None:
                out.append(special)
            else:
                grouped.setdefault((arg.field, _leaf_cased(arg)), []).extend(_flat_values(arg.value))
        elif isinstance(arg, ConditionValueExpression):
            grouped.setdefault((None, _leaf_cased(arg)), []).extend(_flat_values(arg.value))
        else:
            out.append(compile_condition(arg, ctx))
    for (name, cased), values in grouped.items():
        if name is None:
            out.insert(0, _keyword_matcher(values, ctx))
        else:
            out.insert(0, _field_matcher(field_getter(name), _group_test(values, ctx, cased)))
    return out


def _all(parts: list[Matcher]) -> Matcher:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda ev: a(ev) and b(ev)

    def match(ev: Event) -> bool:  # a plain loop: all() over a generator costs a frame per event
        for part in parts:  # noqa: SIM110
            if not part(ev):
                return False
        return True

    return match


def _any(parts: list[Matcher]) -> Matcher:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda ev: a(ev) or b(ev)

    def match(ev: Event) -> bool:
        for part in parts:  # noqa: SIM110
            if part(ev):
                return True
        return False

    return match


# --- what the index needs ---------------------------------------------------------------------------------------


KEYWORDS = "*"  # the requirement "field" of keyword literals: any string of the event


def good_literal(text: str) -> bool:
    """Worth a substring search: long enough to be rare; one non-ASCII character (emoji, Cyrillic look-alikes)
    already is.  (Shorter literals still serve as a last resort, see :func:`requirement`.)"""
    return len(text) >= MIN_LITERAL or (text != "" and not text.isascii())


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
        for value in _flat_values(node.value):
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


def regex_literals(pattern: str) -> frozenset[str] | None:
    """Lower-cased literals of which a regex cannot match without one (from Python's own regex parser): the most
    selective of :func:`regex_literal_groups`."""
    groups = regex_literal_groups(pattern)
    return max(groups, key=_literal_strength) if groups else None


def regex_literal_groups(pattern: str) -> list[frozenset[str]]:
    """Every group of lower-cased literals of which a match must contain one (``a.+(b|c)`` gives ``{a}``,
    ``{b, c}``)."""
    try:
        parsed = re._parser.parse(pattern)  # type: ignore[attr-defined]
    except (re.error, RecursionError):
        return []
    return _sequence_literals(list(parsed))


def _sequence_literals(items: list[Any]) -> list[frozenset[str]]:
    groups: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in items:
        if op is _sre.LITERAL:
            run.append(chr(arg).lower())
            continue
        if run:
            groups.append(frozenset(["".join(run)]))
            run = []
        if op is _sre.SUBPATTERN:
            groups.extend(_sequence_literals(list(arg[-1])))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and arg[0] >= 1:
            groups.extend(_sequence_literals(list(arg[2])))
        elif op is _sre.BRANCH:
            alternatives = [_sequence_literals(list(alt)) for alt in arg[1]]
            if all(alternatives):  # each alternative contributes its best group; one of them must occur
                best = [max(alt, key=_literal_strength) for alt in alternatives]
                groups.append(frozenset().union(*best))
    if run:
        groups.append(frozenset(["".join(run)]))
    return [g for g in groups if g and all(g)]


def _literal_strength(literals: frozenset[str]) -> tuple[int, int]:
    return (min(len(lit) for lit in literals), -len(literals))


MAX_GROUPS = 2


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
    # a second group is only worth its scanning cost when its literals are themselves selective
    return tuple(options[:1] + [r for r in options[1:MAX_GROUPS] if _strength(r)[0] >= MIN_LITERAL + 1])


def _strength(req: Requirement) -> tuple[int, int]:
    """Which of an AND's requirements to file the rule under: the one whose weakest literal is most selective.
    A whole value beats a substring of the same length; a number (an event id) is the last resort, since one
    log source is mostly a few event ids."""
    return (min(_literal_score(lit, exact) for _, lit, exact in req), -len(req))


def _literal_score(literal: str, exact: bool) -> int:
    if exact and literal.isdigit():
        return 1
    return len(literal) + (4 if exact else 0) + (4 if not literal.isascii() else 0)


# --- rules -----------------------------------------------------------------------------------------------------


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
        raise ctx.unsupported(error_reason(exc), str(exc.args[0] if exc.args else exc)) from exc
    if any(
        isinstance(value, SigmaType) and type(value).__name__ in ("SigmaTimestampPart", "SigmaQueryExpression")
        for tree in trees
        for value in _leaf_values(tree)
    ):
        raise ctx.unsupported("value_type", "timestamp-part or query-expression values are not evaluated")
    matchers = [compile_condition(tree, ctx) for tree in trees]
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
        matcher=_any(matchers),
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
        yield from _flat_values(node.value)


def _leaf_fields(node: ConditionNode) -> Iterator[str]:
    if isinstance(node, ConditionItem):
        for arg in node.args:
            yield from _leaf_fields(arg)
    elif isinstance(node, ConditionFieldEqualsValueExpression):
        yield node.field
