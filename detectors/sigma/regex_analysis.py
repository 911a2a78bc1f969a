"""Regular expressions read with Python's own regex parser: the literals every match must contain (for the index
and as a cheap first test), and the exact fast path for patterns that are only literals and ``.*`` gaps, which a
backtracking engine decides in exponential time on a text with many near misses."""

from __future__ import annotations

import re
import re._constants as _sre  # the regex parser's opcodes
from collections.abc import Callable
from typing import Any

from detectors.sigma.context import ValueTest
from detectors.sigma.fields import as_text


def regex_test(pattern: re.Pattern[str], flags: int) -> ValueTest:
    """A test equal to ``pattern.search`` on a value's text (``flags``: the Sigma rule's own flags)."""
    # literals any match contains, tested first: cheap, and they spare the regex engine the hopeless texts on
    # which SigmaHQ's ".+a.+b.+" patterns backtrack for milliseconds
    sequence = _literal_sequence(pattern.pattern, pattern.flags)
    if sequence is not None:
        return _sequence_test(pattern, sequence)
    groups, ordered = regex_prefilter(pattern.pattern, bool(pattern.flags & re.IGNORECASE), flags)
    if not groups and not ordered:
        return lambda v: pattern.search(as_text(v)) is not None

    def decide(subject: str, text: str) -> bool:
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

    return _on_subject(pattern, decide)


def _on_subject(pattern: re.Pattern[str], decide: Callable[[str, str], bool]) -> ValueTest:
    """``decide(subject, text)`` on a value's text, where ``subject`` is the text the literals are looked for in:
    lower-cased when the pattern ignores case.  Only ASCII texts are judged so: under IGNORECASE Python also equates
    a few non-ASCII letters with ASCII ones (the long s, the Kelvin sign) that lower() keeps apart, so any other
    text goes straight to the regex engine."""
    if not pattern.flags & re.IGNORECASE:

        def cased(v: Any) -> bool:
            text = as_text(v)
            return decide(text, text)

        return cased

    def folded(v: Any) -> bool:
        text = as_text(v)
        if not text.isascii():
            return pattern.search(text) is not None
        return decide(text.lower(), text)

    return folded


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

    def decide(subject: str, text: str) -> bool:
        if dotall or "\n" not in subject:
            return fits(subject)
        return any(fits(line) for line in subject.split("\n"))  # "." does not cross a line

    return _on_subject(pattern, decide)


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
