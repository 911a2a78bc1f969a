"""Sigma strings (wildcards, escapes, placeholders, the output of the string modifiers) as simple patterns: equal,
prefix, suffix, contains, anything, or a regex for the rest; and one test for many patterns on one value."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sigma.types import Placeholder, SigmaCasedString, SigmaString, SpecialChars

from detectors.sigma.context import CompileContext, ValueTest
from detectors.sigma.fields import as_text


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
            ".*" if p is multi else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(fold(str(p))) for p in parts
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
