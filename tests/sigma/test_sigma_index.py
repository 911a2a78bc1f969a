"""The fast paths must agree with the plain ones: each rule's generated matcher with the same plan built from
closures, and the literal index with the naive loop (routing only), on the EVTX samples bent out of shape (other
case, values in lists, numbers as numbers, keywords where no rule names the field) and on random small rules."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.rule import SigmaRule

import detectors.sigma.loader  # noqa: F401  (registers the utf16le modifier name)
from collectors.logs.evtx import iter_evtx_events
from detectors.sigma import RuleSet, SigmaEngine
from detectors.sigma.codegen import closure_matcher
from detectors.sigma.compile import CompiledRule, compile_rule
from detectors.sigma.context import CompileContext, Matcher
from detectors.sigma.fields import reset_event_cache
from detectors.sigma.index import RuleIndex
from detectors.sigma.loader import rule_name
from detectors.sigma.planning import PlanOr, plan_condition
from soc.core.model import Event

EVTX = Path(__file__).resolve().parents[2] / ".." / "shared" / "evtx"
EVERY = 25  # one event in so many, for the slow reference loops


def reference(rule: CompiledRule) -> Matcher:
    """The rule's plan as closures (the generated function must say the same)."""
    assert rule.sigma is not None
    ctx = CompileContext(rule.path, rule_name(rule.sigma), {})
    plans = [plan_condition(c.parsed, ctx) for c in rule.sigma.detection.parsed_condition]
    return closure_matcher(plans[0] if len(plans) == 1 else PlanOr(plans))


def variants(event: Event) -> Iterator[Event]:
    """The event as it is and bent: other case, values in lists, numbers as numbers, text no rule names."""
    yield event
    data = event["winlog"].get("event_data") or {}

    def bent(change: Any) -> Event:
        other = copy.deepcopy(event)
        other["winlog"]["event_data"] = {k: change(k, v) for k, v in data.items()}
        return other

    yield bent(lambda k, v: v.upper() if isinstance(v, str) else v)
    yield bent(lambda k, v: [v] if len(k) % 2 else ["-", v])
    yield bent(lambda k, v: int(v) if isinstance(v, str) and v.isdigit() and len(v) < 10 else
               {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v)
    keywords = copy.deepcopy(event)
    keywords["winlog"]["event_data"] = {**data, "ZzUnnamed": "x sekurlsa::logonpasswords", "ZzList": ["mimikatz"]}
    keywords["winlog"]["event_id"] = str(event["winlog"]["event_id"])
    yield keywords
    message = copy.deepcopy(event)
    message["message"] = "privilege::debug " + " ".join(str(v) for v in data.values())
    yield message


@pytest.fixture(scope="module")
def sampled() -> list[Event]:
    events = [e for path in sorted(EVTX.rglob("*.evtx")) for e in iter_evtx_events(path)]
    return [v for e in events[::EVERY] for v in variants(e)]


def test_generated_matchers_agree_with_closures(windows_rules: RuleSet, sampled: list[Event]) -> None:
    rules = windows_rules.rules
    references = [reference(rule) for rule in rules]
    routing = RuleIndex(rules, naive=True)
    position = {id(rule): i for i, rule in enumerate(rules)}
    checked = matched = 0
    for event in sampled:
        for rule in routing.candidates(event):
            reset_event_cache()
            got = rule.matcher(event)
            reset_event_cache()
            assert got is references[position[id(rule)]](event), (rule.title, event)
            checked += 1
            matched += got
    assert checked > 100_000 and matched > 100


def test_index_loses_nothing_on_bent_events(windows_rules: RuleSet, sampled: list[Event]) -> None:
    indexed, naive = SigmaEngine(windows_rules.rules), SigmaEngine(windows_rules.rules, naive=True)
    total = 0
    for _ in range(2):  # the second time round, every value comes from the caches
        for event in sampled:
            got = [r.title for r in indexed.match(event)]
            assert got == [r.title for r in naive.match(event)], event
            total += len(got)
    assert total > 1000


def test_exact_values_and_numbers() -> None:
    """Whole values are dictionary lookups: equal text, or equal numbers however the event spells them."""
    rule = make({"sel": {"winlog.event_data.Mode": "Fast", "winlog.event_id": [4688, 1]}, "condition": "sel"})
    assert rule.requirements == (frozenset({("winlog.event_data.Mode", "fast", True)}),
                                 frozenset({("winlog.event_id", "4688", True), ("winlog.event_id", "1", True)}))
    for mode, event_id, expected in [("FAST", 4688, True), ("fast", "4688", True), ("fast", " 4688 ", True),
                                     ("fast", 4688.0, True), ("fast", "4.688e3", True), ("fast", "01", True),
                                     ("fast", True, False), ("faster", 4688, False), ("fast", 4689, False),
                                     (["x", "fast"], [2, "1"], True)]:
        event = win_event(Mode=mode, event_id=event_id)
        assert rule.matches(event) is expected, (mode, event_id)
        assert (rule in RuleIndex([rule]).candidates(event)) >= expected, (mode, event_id)


def test_numbers_and_networks_as_sets() -> None:
    ports = make({"sel": {"a": [80, 443, 8080, 1.5]}, "condition": "sel"})
    assert [ports.matches({"a": v}) for v in (443, "8080", 1.5, "1.50", 444, True, "x")] == [
        True, True, True, True, False, False, False]
    nets = make({"sel": {"a|cidr": ["10.0.0.0/8", "192.168.0.0/16", "fe80::/10"]}, "condition": "sel"})
    assert [nets.matches({"a": v}) for v in ("10.1.1.1", "192.168.3.4", "fe80::1", "::ffff:192.168.0.1",
                                             "11.0.0.1", "fe00::1", "garbage")] == [
        True, True, True, True, False, False, False]


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    ("\\+.*\\+.*\\+.*\\+", "a+b+c+d+", True),
    ("\\+.*\\+.*\\+.*\\+", "a+b+c", False),
    ("ab.*cd", "cd ab", False),
    ("ab.*cd", "ab cd", True),
    ("(?i)AB.*CD", "ab x cd", True),
    ("(?i)kb", "\u212ab", True),  # IGNORECASE equates the Kelvin sign with k, which lower() does not
    ("(?i)ſ", "S", True),  # the long s: a non-ASCII literal under IGNORECASE
    ("Ab(?i:CD)", "Abcd", True),  # a group with its own case rules
    ("Ab(?i:CD)", "abcd", False),
    ("ΑΣ", "ΑΣ", True),  # lower() would turn a final sigma into ς
    ("x(?=ab)ab", "xab", True),
    ("\\^.*\\^.*\\^", "^a\n^b^", False),  # "." does not cross lines
    ("(?s)\\^.*\\^.*\\^", "^a\n^b^", True),
    (".+ab.+", "ab ab", False),
    (".+ab.+", "ab abx", True),
    (".+ab.+", "xab", False),
    ("a.+.+b", "a.xb", True),
    ("a.+.+b", "axb", False),
    ("(?i)Ab.*?C", "xaBzzc", True),
    ("(?i)Ab.*C", "\u212a aB c", True),
    ("\\+(.*\\+){20}", "+" * 20, False),
])
def test_regex_prefilter(pattern: str, text: str, expected: bool) -> None:
    assert make({"sel": {"a|re": pattern}, "condition": "sel"}).matches({"a": text}) is expected


def test_unusual_events_route_and_scan() -> None:
    rule = make({"sel": {"winlog.event_data.Image|endswith": "\\cmd.exe"}, "condition": "sel"})
    index = RuleIndex([rule])
    assert index.candidates(win_event(Image=["x", "C:\\CMD.EXE"])) == [rule]
    assert index.candidates(win_event(Image={"nested": 1}, Other=["\\cmd.exe"])) == []
    assert index.candidates({"winlog": {"event_data": "not a dict"}, **LOGSOURCE}) == []
    odd: Any
    for odd in (None, [], {"logsource": None}, {"logsource": {"product": "test", "category": "x"}}):
        index.candidates({"soc": odd, "winlog": {"event_data": {"Image": "\\cmd.exe"}}})
    keywords = make({"keywords": ["sekurlsa::", "ΣΑ"], "condition": "keywords"})
    index = RuleIndex([keywords])
    for data in ({"X": "sekurlsa::x"}, {"X": ["y", "SEKURLSA::x"]}, {"X": {"deep": ["sekurlsa::"]}},
                 {"X": "σα"}, {"X": 1, "Y": "a sekurlsa:: b"}):
        event = win_event(**data)
        reset_event_cache()
        assert keywords.matches(event), data
        assert index.candidates(event) == [keywords], data


# --- random small rules --------------------------------------------------------------------------------------

LOGSOURCE = {"soc": {"logsource": {"product": "test"}}}
FIELDS = ["a", "b.c", "winlog.event_data.Image", "winlog.event_data.CommandLine", "winlog.event_id"]
STRINGS = ["ab", "abc", "ABC", "ab*", "*bc", "*b*", "a?c", "12", "3", "", "+", "ΣΑ", "k", "a\\*b"]
VALUES: dict[str, list[Any]] = {
    "": [*STRINGS, 3, 12, None],
    "|contains": STRINGS,
    "|startswith": STRINGS,
    "|endswith": STRINGS,
    "|contains|all": STRINGS,
    "|cased": STRINGS,
    "|contains|cased": STRINGS,
    "|re": ["ab+c", "^a", "a.c", "(?i)ABC", "\\+.*\\+", "b|12", "Σ", "(?i)K"],
    "|re|i": ["ab+c", "ſ", "A.C"],
    "|cidr": ["10.0.0.0/8", "fe80::/10"],
    "|gt": [3, 12],
    "|lte": [3, 12],
    "|exists": [True, False],
}
EVENT_VALUES: list[Any] = ["ab", "abc", "xABcy", "ABC", "a*b", "12", " 12", "3", "3.0", "", "+a+", "a\nc",
                           "10.1.2.3", "::ffff:10.0.0.1", "σα", "ΣΑ", "ΑΣ", "\u212a", "K", 3, 12, 3.0, True, None]


@st.composite
def detections(draw: st.DrawFn) -> dict[str, Any]:
    detection: dict[str, Any] = {}
    for n in range(draw(st.integers(1, 3))):
        items = {}
        for _ in range(draw(st.integers(1, 2))):
            modifier = draw(st.sampled_from(sorted(VALUES)))
            values = draw(st.lists(st.sampled_from(VALUES[modifier]), min_size=1, max_size=3))
            single = modifier in ("|exists",) or len(values) == 1
            items[draw(st.sampled_from(FIELDS)) + modifier] = values[0] if single else values
        detection[f"sel{n}"] = items
    if draw(st.booleans()):
        detection["keywords"] = draw(st.lists(st.sampled_from(["ab", "σα", "12", "a*c", "+"]), min_size=1,
                                              max_size=2))
    names = sorted(detection)
    detection["condition"] = draw(conditions(names))
    return detection


def conditions(names: list[str]) -> st.SearchStrategy[str]:
    leaf = st.sampled_from([*names, "1 of sel*", "all of sel*", "1 of them"])
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda c: f"not {c}")), max_leaves=4)


@st.composite
def events(draw: st.DrawFn) -> Event:
    event: dict[str, Any] = copy.deepcopy(LOGSOURCE)
    for name in [*FIELDS, "winlog.event_data.Other", "message"]:
        if draw(st.booleans()):
            value = draw(st.one_of(st.sampled_from(EVENT_VALUES), st.lists(st.sampled_from(EVENT_VALUES),
                                                                            max_size=2)))
            node = event
            *path, last = name.split(".")
            for part in path:
                node = node.setdefault(part, {})
            node[last] = value
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(detection=detections(), batch=st.lists(events(), min_size=1, max_size=4))
def test_random_rules(detection: dict[str, Any], batch: list[Event]) -> None:
    try:
        rule = make(detection)
    except Exception:  # a combination pySigma or we refuse: nothing to compare
        return
    closures = reference(rule)
    index = RuleIndex([rule])
    for _ in range(2):  # cold and from the caches
        for event in batch:
            reset_event_cache()
            expected = closures(event)
            reset_event_cache()
            assert rule.matcher(event) is expected
            reset_event_cache()
            assert (index.candidates(event) == [rule]) >= expected, (rule.requirements, event)


def make(detection: dict[str, Any]) -> CompiledRule:
    rule = SigmaRule.from_dict({"title": "t", "logsource": {"product": "test"}, "detection": detection})
    return compile_rule(rule)


def win_event(event_id: Any = 1, **data: Any) -> Event:
    return {**copy.deepcopy(LOGSOURCE), "winlog": {"event_id": event_id, "event_data": data}}
