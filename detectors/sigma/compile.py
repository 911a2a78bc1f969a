"""Sigma rules (pySigma's parsed condition trees) to Python functions that test one nested ECS event at a time.

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
nodes over the same field are merged into one test (strings into one string-set test, numbers into one set lookup,
networks into one address parse).  The condition is planned (:func:`plan_condition`) and each rule becomes one
generated Python function (:func:`generate_matcher`) that reads each field once and lower-cases it at most once,
with the same plan as nested closures (:func:`closure_matcher`) kept as the reference.  Regular expressions that are
only literals and ``.*`` gaps are decided without the backtracking engine.  Alongside the matcher,
:func:`requirement` derives literals a rule cannot match without, for the candidate index.
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
from soc.core.model import Event

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
    if len(parts) == 2:
        first, second = parts

        def get2(ev: Event) -> Any:
            node = ev.get(first)
            if type(node) is dict:
                value = node.get(second)
                if value is not None:
                    return value
            return ev.get(dotted)

        return get2
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
    # which SigmaHQ's ".+a.+b.+" patterns backtrack for milliseconds.  Case-insensitive patterns are judged on the
    # lower-cased text, and only ASCII texts and literals: under IGNORECASE Python also equates a few non-ASCII
    # letters with ASCII ones (the long s, the Kelvin sign) that lower() keeps apart.
    ignorecase = bool(pattern.flags & re.IGNORECASE)
    sequence = _literal_sequence(str(value.regexp), pattern.flags)
    if sequence is not None:
        return _sequence_test(pattern, sequence)
    groups, ordered = regex_prefilter(str(value.regexp), ignorecase, flags)
    if not groups and not ordered:
        return lambda v: pattern.search(as_text(v)) is not None

    def test(v: Any) -> bool:
        text = as_text(v)
        if ignorecase:
            if not text.isascii():
                return pattern.search(text) is not None
            subject = text.lower()
        else:
            subject = text
        for group in groups:
            for literal in group:
                if literal in subject:
                    break
            else:
                return False
        at = 0
        for literal in ordered:  # the pattern's own literal runs, in their order (\+.*\+.*\+ needs three "+")
            at = subject.find(literal, at)
            if at < 0:
                return False
            at += len(literal)
        return pattern.search(text) is not None

    return test


Sequence = list[tuple[str, int]]  # ("", gap: at least so many characters) or (literal, 0)


def _literal_sequence(pattern: str, flags: int) -> Sequence | None:
    """``pattern`` as literals and ``.*``/``.+`` gaps only (``\\+.*\\+.*\\+``, ``powershell.+-enc``), when it is
    that simple: such a pattern is decided by finding the literals left to right, which is what a backtracking
    engine does in exponential time on a text with many near misses."""
    if flags & ~(re.IGNORECASE | re.DOTALL | re.MULTILINE | re.UNICODE):
        return None
    try:
        parsed = list(re._parser.parse(pattern, flags))  # type: ignore[attr-defined]
    except (re.error, RecursionError):
        return None
    ignorecase = bool(flags & re.IGNORECASE)
    sequence: Sequence = []
    run: list[str] = []
    for op, arg in parsed:
        if op is _sre.LITERAL:
            char = chr(arg)
            if char == "\n" or (ignorecase and not char.isascii()):
                return None
            run.append(char.lower() if ignorecase else char)
            continue
        if op not in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) or arg[1] != _sre.MAXREPEAT or arg[0] > 1:
            return None
        if list(arg[2]) != [(_sre.ANY, None)]:
            return None
        if run:
            sequence.append(("".join(run), 0))
            run = []
        sequence.append(("", arg[0]))
    if run:
        sequence.append(("".join(run), 0))
    return sequence if any(literal for literal, _ in sequence) else None


def _sequence_test(pattern: re.Pattern[str], sequence: Sequence) -> ValueTest:
    ignorecase = bool(pattern.flags & re.IGNORECASE)
    dotall = bool(pattern.flags & re.DOTALL)

    def fits(text: str) -> bool:
        at = 0  # where the next literal may start at the earliest
        for literal, gap in sequence:
            if literal:
                at = text.find(literal, at)
                if at < 0:
                    return False
                at += len(literal)
            else:
                at += gap
        return at <= len(text)

    def test(v: Any) -> bool:
        text = as_text(v)
        if ignorecase:
            if not text.isascii():
                return pattern.search(text) is not None
            text = text.lower()
        if dotall or "\n" not in text:
            return fits(text)
        return any(fits(line) for line in text.split("\n"))  # "." does not cross a line

    return test


def regex_prefilter(pattern: str, ignorecase: bool, flags: int = 0) -> tuple[list[tuple[str, ...]], list[str]]:
    """What a text needs before a regex can match it: one literal of each group, and the literal runs of the
    pattern's top level in order.  Lower-cased and ASCII only when ``ignorecase``, else exactly as written."""
    try:
        parsed = list(re._parser.parse(pattern, flags))  # type: ignore[attr-defined]
    except (re.error, RecursionError):
        return [], []
    groups = [tuple(sorted(g)) for g in _sequence_literals(parsed, ignorecase)]
    ordered: list[str] = []
    run: list[str] = []
    for op, arg in [*parsed, (None, None)]:
        char = chr(arg) if op is _sre.LITERAL else ""
        if char and (char.isascii() or not ignorecase):
            run.append(char.lower() if ignorecase else char)
            continue
        if run:
            ordered.append("".join(run))
            run = []
    if ignorecase:
        groups = [g for g in groups if all(lit.isascii() for lit in g)]
    return groups, ordered


@value_compiler(SigmaCIDRExpression)
def _cidr(value: SigmaCIDRExpression, ctx: CompileContext, cased: bool) -> ValueTest:
    return _networks_test((value.network,))


def _networks_test(networks: tuple[Any, ...]) -> ValueTest:
    """An IP address (an IPv4-mapped IPv6 one as IPv4) inside one of ``networks``."""

    def test(v: Any) -> bool:
        try:
            address = ipaddress.ip_address(as_text(v).strip())
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == network.version and address in network for network in networks)

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
#
# A condition is first planned (:func:`plan_condition`): NOT/AND/OR over leaves, where each leaf is one field's
# values (OR, strings merged), a presence test, or a closure for the rarer forms (keywords, field references).
# The plan then becomes one Python function per rule (:func:`generate_matcher`): the fields are read once at the
# top, each value lower-cased at most once, and the common string tests inlined; :func:`closure_matcher` builds the
# same logic from closures, as a reference and a fallback.

ConditionNode = ConditionItem | ConditionFieldEqualsValueExpression | ConditionValueExpression | None


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


def compile_condition(node: ConditionNode, ctx: CompileContext) -> Matcher:
    return generate_matcher(plan_condition(node, ctx))


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
                grouped.setdefault((arg.field, _leaf_cased(arg)), []).extend(_flat_values(arg.value))
        elif isinstance(arg, ConditionValueExpression):
            grouped.setdefault((None, _leaf_cased(arg)), []).extend(_flat_values(arg.value))
        else:
            out.append(plan_condition(arg, ctx))
    for (name, cased), values in grouped.items():
        if name is None:
            out.insert(0, PlanCall(_keyword_matcher(values, ctx)))
        else:
            out.insert(0, _field_plan(name, values, ctx, cased))
    return out


def _field_plan(name: str, values: list[SigmaType], ctx: CompileContext, cased: bool) -> PlanField:
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
        others.insert(0, _number_set_test(frozenset(numbers)))
    if networks:
        others.append(_networks_test(tuple(networks)))
    tests = ([string_set_test(patterns)] if patterns else []) + others
    if len(tests) == 1:
        test = tests[0]
    else:

        def test(v: Any) -> bool:
            return any(t(v) for t in tests)

    return PlanField(name, patterns, others, test)


def _number_set_test(numbers: frozenset[int | float]) -> ValueTest:
    """Equal (as a number) to one of ``numbers``: :func:`_number` for several at once."""

    def test(v: Any) -> bool:
        if type(v) is int:
            return v in numbers
        n = _to_number(v)
        return n is not None and n in numbers

    return test


def closure_matcher(plan: Plan) -> Matcher:
    """The plan as nested closures (the reference the generated functions are tested against)."""
    if isinstance(plan, PlanNot):
        inner = closure_matcher(plan.arg)
        return lambda ev: not inner(ev)
    if isinstance(plan, PlanAnd):
        return _all([closure_matcher(p) for p in plan.args])
    if isinstance(plan, PlanOr):
        return _any([closure_matcher(p) for p in plan.args])
    if isinstance(plan, PlanField):
        return _field_matcher(field_getter(plan.name), plan.test)
    if isinstance(plan, PlanPresence):
        get, present = field_getter(plan.name), plan.present
        return lambda ev: (get(ev) is not None) is present
    if isinstance(plan, PlanCall):
        return plan.matcher
    value = plan.value
    return lambda ev: value


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


def _value_test(test: ValueTest) -> ValueTest:
    """``test`` on a present value of any shape: a list matches when one of its elements does."""

    def run(v: Any) -> bool:
        if type(v) is list:
            return any(x is not None and test(x) for x in v)
        return test(v)

    return run


class _Generator:
    """Python source of one rule's matcher: ``def match(ev)``, reading each field once into ``v<n>`` (its lower-case
    text lazily into ``l<n>``), then one boolean expression.  Values other than literals are passed in as globals."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self.fields: dict[str, int] = {}
        self.prologue: list[str] = []
        self.prefixes: dict[tuple[str, str], str] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def field(self, dotted: str) -> int:
        """The number of the local holding the field's value (read as :func:`field_getter` reads it)."""
        if dotted in self.fields:
            return self.fields[dotted]
        n = self.fields[dotted] = len(self.fields)
        parts = dotted.split(".")
        if len(parts) == 1:
            self.prologue.append(f"v{n} = ev.get({dotted!r})")
        elif len(parts) == 3:
            prefix = self.prefixes.get((parts[0], parts[1]))
            if prefix is None:
                prefix = self.prefixes[(parts[0], parts[1])] = f"d{len(self.prefixes)}"
                self.prologue += [
                    f"{prefix} = ev.get({parts[0]!r})",
                    f"{prefix} = {prefix}.get({parts[1]!r}) if type({prefix}) is dict else None",
                    f"if type({prefix}) is not dict: {prefix} = None",
                ]
            self.prologue.append(f"v{n} = {prefix}.get({parts[2]!r}) if {prefix} is not None else ev.get({dotted!r})")
        else:
            self.prologue.append(f"v{n} = {self.const(field_getter(dotted))}(ev)")
        self.prologue.append(f"l{n} = None")
        return n

    def expr(self, plan: Plan) -> str:
        if isinstance(plan, PlanNot):
            return f"(not {self.expr(plan.arg)})"
        if isinstance(plan, PlanAnd | PlanOr):
            if not plan.args:
                return "True" if isinstance(plan, PlanAnd) else "False"
            joiner = " and " if isinstance(plan, PlanAnd) else " or "
            return "(" + joiner.join(self.expr(p) for p in plan.args) + ")"
        if isinstance(plan, PlanField):
            return self.field_expr(plan)
        if isinstance(plan, PlanPresence):
            n = self.field(plan.name)
            return f"(v{n} is not None)" if plan.present else f"(v{n} is None)"
        if isinstance(plan, PlanCall):
            return f"{self.const(plan.matcher)}(ev)"
        return repr(bool(plan.value))

    def field_expr(self, plan: PlanField) -> str:
        n = self.field(plan.name)
        v, low = f"v{n}", f"l{n}"
        terms: list[str] = []
        for cased in (False, True):
            mine = [p for p in plan.patterns if p.cased == cased]
            if not mine:
                continue
            if any(p.kind == "any" for p in mine):
                terms.insert(0, "True")
                continue
            # the first test of the value lower-cases it, unless an earlier test of this field already did
            text = v if cased else f"({low} if {low} is not None else ({low} := {v}.lower()))"
            first = len(terms)
            eq = sorted({p.text for p in mine if p.kind == "eq"})
            if len(eq) == 1:
                terms.append(f"{text} == {eq[0]!r}")
            elif eq:
                terms.append(f"{text} in {self.const(frozenset(eq))}")
            pre = tuple(p.text for p in mine if p.kind == "prefix")
            if pre:
                terms.append(f"{text if len(terms) == first else low if not cased else v}.startswith({pre!r})")
            suf = tuple(p.text for p in mine if p.kind == "suffix")
            if suf:
                terms.append(f"{text if len(terms) == first else low if not cased else v}.endswith({suf!r})")
            for needle in (p.text for p in mine if p.kind == "contains"):
                terms.append(f"{needle!r} in {text if len(terms) == first else low if not cased else v}")
            for p in mine:
                if p.regex is not None:
                    target = text if len(terms) == first else low if not cased else v
                    terms.append(f"{self.const(p.regex)}.fullmatch({target}) is not None")
        terms += [f"{self.const(t)}({v})" for t in plan.others]
        string_test = " or ".join(terms) if terms else "False"
        other = self.const(_value_test(plan.test))  # lists, numbers, ...
        return f"({v} is not None and (({string_test}) if type({v}) is str else {other}({v})))"

    def source(self, body: str) -> str:
        lines = ["def match(ev):", *("    " + line for line in self.prologue), f"    return {body}"]
        return "\n".join(lines) + "\n"


def generate_matcher(plan: Plan) -> Matcher:
    """One Python function for the whole plan (closures when it cannot be generated: absurdly deep conditions)."""
    gen = _Generator()
    try:
        body = gen.expr(plan)
        code = compile(gen.source(body), "<sigma rule>", "exec")
    except (RecursionError, SyntaxError, MemoryError, ValueError):
        return closure_matcher(plan)
    namespace = dict(gen.namespace)
    exec(code, namespace)  # our own generated source, from the plan above
    match: Matcher = namespace["match"]
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


def _sequence_literals(items: list[Any], fold: bool = True) -> list[frozenset[str]]:
    """Groups of literals a match of the sequence ``items`` contains one of; lower-cased when ``fold``, else as
    written (and then groups whose case rules differ, ``(?i:...)``, are left out)."""
    groups: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in items:
        if op is _sre.LITERAL:
            run.append(chr(arg).lower() if fold else chr(arg))
            continue
        if run:
            groups.append(frozenset(["".join(run)]))
            run = []
        if op is _sre.SUBPATTERN:
            if fold or not (arg[1] or arg[2]):
                groups.extend(_sequence_literals(list(arg[-1]), fold))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) and arg[0] >= 1:
            groups.extend(_sequence_literals(list(arg[2]), fold))
        elif op is _sre.BRANCH:
            alternatives = [_sequence_literals(list(alt), fold) for alt in arg[1]]
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
        yield from _flat_values(node.value)


def _leaf_fields(node: ConditionNode) -> Iterator[str]:
    if isinstance(node, ConditionItem):
        for arg in node.args:
            yield from _leaf_fields(arg)
    elif isinstance(node, ConditionFieldEqualsValueExpression):
        yield node.field
