"""A rule's plan (:mod:`detectors.sigma.planning`) as one generated Python function, ``match(ev)``: the fields are
read once at the top, each value lower-cased at most once, and the common string tests inlined.
:func:`closure_matcher` builds the same logic from nested closures, as the reference the generated functions are
tested against and the fallback for conditions too deep to generate."""

from __future__ import annotations

from typing import Any

from detectors.sigma.context import Matcher, ValueTest
from detectors.sigma.fields import Getter, field_getter
from detectors.sigma.planning import Plan, PlanAnd, PlanCall, PlanField, PlanNot, PlanOr, PlanPresence
from soc.core.model import Event


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


def closure_matcher(plan: Plan) -> Matcher:
    """The plan as nested closures (the reference the generated functions are tested against)."""
    if isinstance(plan, PlanNot):
        inner = closure_matcher(plan.arg)
        return lambda ev: not inner(ev)
    if isinstance(plan, PlanAnd):
        return _chain([closure_matcher(p) for p in plan.args], False)
    if isinstance(plan, PlanOr):
        return _chain([closure_matcher(p) for p in plan.args], True)
    if isinstance(plan, PlanField):
        return _field_matcher(field_getter(plan.name), plan.test)
    if isinstance(plan, PlanPresence):
        get, present = field_getter(plan.name), plan.present
        return lambda ev: (get(ev) is not None) is present
    if isinstance(plan, PlanCall):
        return plan.matcher
    value = plan.value
    return lambda ev: value


def _chain(parts: list[Matcher], decisive: bool) -> Matcher:
    """The parts in order until one returns ``decisive``: AND when that is False, OR when it is True."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return (lambda ev: a(ev) or b(ev)) if decisive else (lambda ev: a(ev) and b(ev))

    def match(ev: Event) -> bool:  # a plain loop: all()/any() over a generator costs a frame per event
        for part in parts:
            if bool(part(ev)) is decisive:
                return decisive
        return not decisive

    return match


def _value_test(test: ValueTest) -> ValueTest:
    """``test`` on a present value of any shape: a list matches when one of its elements does."""

    def run(v: Any) -> bool:
        if type(v) is list:
            return any(x is not None and test(x) for x in v)
        return test(v)

    return run


def _field_matcher(getter: Getter, test: ValueTest) -> Matcher:
    def match(ev: Event) -> bool:
        v = getter(ev)
        if v is None:
            return False
        if type(v) is list:
            return any(x is not None and test(x) for x in v)
        return test(v)

    return match
