"""One test per pySigma value type (strings, numbers, booleans, regexes, networks, comparisons, expansions), each
built by a small function registered for its type (:func:`value_compiler`), and the merged forms for many values
on one field: one set lookup for many numbers, one address parse for many networks."""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable
from typing import Any

from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaType,
)

from detectors.sigma.context import CompileContext, ValueTest
from detectors.sigma.fields import as_text
from detectors.sigma.patterns import string_patterns, string_set_test
from detectors.sigma.regex_analysis import regex_test

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


def flat_values(value: SigmaType) -> list[SigmaType]:
    """The values inside an expansion (nested ones too), or the value itself."""
    return [x for v in value.values for x in flat_values(v)] if isinstance(value, SigmaExpansion) else [value]


@value_compiler(SigmaString)
def _string(value: SigmaString, ctx: CompileContext, cased: bool) -> ValueTest:
    return string_set_test(string_patterns(value, ctx, cased))


def to_number(v: Any) -> float | None:
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
        return to_number(v) == number

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
    return regex_test(re.compile(str(value.regexp), flags), flags)


@value_compiler(SigmaCIDRExpression)
def _cidr(value: SigmaCIDRExpression, ctx: CompileContext, cased: bool) -> ValueTest:
    return networks_test((value.network,))


def networks_test(networks: tuple[Any, ...]) -> ValueTest:
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
        n = to_number(v)
        return n is not None and op(n, number)

    return test


@value_compiler(SigmaExpansion)
def _expansion(value: SigmaExpansion, ctx: CompileContext, cased: bool) -> ValueTest:
    tests = [compile_value(v, ctx, cased) for v in value.values]
    return lambda v: any(t(v) for t in tests)


def number_set_test(numbers: frozenset[int | float]) -> ValueTest:
    """Equal (as a number) to one of ``numbers``: :func:`_number` for several at once."""

    def test(v: Any) -> bool:
        if type(v) is int:
            return v in numbers
        n = to_number(v)
        return n is not None and n in numbers

    return test
