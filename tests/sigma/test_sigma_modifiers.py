"""Every value modifier and condition form, each with events that must and must not match."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sigma.rule import SigmaRule

import detectors.sigma.loader  # noqa: F401  (registers the utf16le modifier name)
from detectors.sigma.compile import CompiledRule, compile_rule
from detectors.sigma.errors import UnsupportedFeature


def make(detection: dict[str, Any], placeholders: dict[str, list[str]] | None = None) -> CompiledRule:
    rule = SigmaRule.from_dict({"title": "t", "logsource": {"product": "test"}, "detection": detection})
    return compile_rule(rule, None, placeholders)


def one(field: str, value: Any) -> dict[str, Any]:
    return {"sel": {field: value}, "condition": "sel"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CASES = [
    # (id, detection, event, expected)
    ("plain-eq-ci", one("a", "Foo"), {"a": "fOO"}, True),
    ("plain-eq-whole", one("a", "Foo"), {"a": "foo bar"}, False),
    ("star", one("a", "F*o"), {"a": "Fxyzo"}, True),
    ("star-no", one("a", "F*o"), {"a": "Fx"}, False),
    ("qmark", one("a", "F?o"), {"a": "fao"}, True),
    ("qmark-one-char", one("a", "F?o"), {"a": "Faao"}, False),
    ("escaped-star", one("a", "a\\*b"), {"a": "a*b"}, True),
    ("escaped-star-literal", one("a", "a\\*b"), {"a": "axxb"}, False),
    ("escaped-backslash", one("a", "c:\\\\x"), {"a": "C:\\x"}, True),
    ("plain-backslash", one("a", "C:\\Windows\\System32"), {"a": "c:\\windows\\system32"}, True),
    ("backslash-star-is-literal", one("a", "C:\\Windows\\*"), {"a": "c:\\windows\\system32"}, False),
    ("double-backslash-star", one("a", "C:\\Windows\\\\*"), {"a": "c:\\windows\\system32"}, True),
    ("contains", one("a|contains", "mid"), {"a": "xxMIDxx"}, True),
    ("contains-no", one("a|contains", "mid"), {"a": "xxmxdxx"}, False),
    ("startswith", one("a|startswith", "pre"), {"a": "PREfix"}, True),
    ("startswith-no", one("a|startswith", "pre"), {"a": "xpre"}, False),
    ("endswith", one("a|endswith", "\\cmd.exe"), {"a": "C:\\Windows\\CMD.EXE"}, True),
    ("endswith-no", one("a|endswith", "\\cmd.exe"), {"a": "C:\\cmd.exe.bak"}, False),
    ("list-or", one("a", ["x", "y"]), {"a": "y"}, True),
    ("list-or-no", one("a", ["x", "y"]), {"a": "z"}, False),
    ("all", one("a|contains|all", ["one", "two"]), {"a": "two and one"}, True),
    ("all-no", one("a|contains|all", ["one", "two"]), {"a": "only one"}, False),
    ("base64", one("a|base64", "abc"), {"a": b64(b"abc")}, True),
    ("base64-cased", one("a|base64", "abc"), {"a": b64(b"abc").lower()}, False),
    ("base64offset-0", one("a|base64offset|contains", "http"), {"a": b64(b"http://x")}, True),
    ("base64offset-1", one("a|base64offset|contains", "http"), {"a": b64(b"GET http://x")}, True),
    ("base64offset-2", one("a|base64offset|contains", "http"), {"a": b64(b"GE http://x")}, True),
    ("base64offset-no", one("a|base64offset|contains", "http"), {"a": b64(b"GET ftp://x")}, False),
    ("wide", one("a|wide|base64offset|contains", "ping"), {"a": b64("x ping".encode("utf-16-le"))}, True),
    ("wide-no", one("a|wide|base64offset|contains", "ping"), {"a": b64(b"x ping")}, False),
    ("utf16le", one("a|utf16le|base64", "ab"), {"a": b64("ab".encode("utf-16-le"))}, True),
    ("utf16be", one("a|utf16be|base64", "ab"), {"a": b64("ab".encode("utf-16-be"))}, True),
    ("utf16be-no", one("a|utf16be|base64", "ab"), {"a": b64("ab".encode("utf-16-le"))}, False),
    ("windash-dash", one("a|windash|contains", " -exec"), {"a": "x.exe -exec"}, True),
    ("windash-slash", one("a|windash|contains", " -exec"), {"a": "x.exe /exec"}, True),
    ("windash-endash", one("a|windash|contains", " -exec"), {"a": "x.exe \u2013exec"}, True),
    ("windash-no", one("a|windash|contains", " -exec"), {"a": "x.exe +exec"}, False),
    ("re", one("a|re", "^ab+c$"), {"a": "abbbc"}, True),
    ("re-search", one("a|re", "b+c"), {"a": "xxabbcxx"}, True),
    ("re-case", one("a|re", "^ab+c$"), {"a": "ABC"}, False),
    ("re-i", one("a|re|i", "^ab+c$"), {"a": "ABC"}, True),
    ("re-m", one("a|re|m", "^abc$"), {"a": "x\nabc\ny"}, True),
    ("re-no-m", one("a|re", "^abc$"), {"a": "x\nabc\ny"}, False),
    ("re-s", one("a|re|s", "a.c"), {"a": "a\nc"}, True),
    ("re-no-s", one("a|re", "a.c"), {"a": "a\nc"}, False),
    ("cidr", one("a|cidr", "10.0.0.0/8"), {"a": "10.1.2.3"}, True),
    ("cidr-no", one("a|cidr", "10.0.0.0/8"), {"a": "11.0.0.1"}, False),
    ("cidr-mapped", one("a|cidr", "10.0.0.0/8"), {"a": "::ffff:10.0.0.1"}, True),
    ("cidr-garbage", one("a|cidr", "10.0.0.0/8"), {"a": "not-an-ip"}, False),
    ("cidr-v6", one("a|cidr", "fe80::/10"), {"a": "fe80::1"}, True),
    ("cidr-v6-no", one("a|cidr", "fe80::/10"), {"a": "10.0.0.1"}, False),
    ("lt", one("a|lt", 5), {"a": 4}, True),
    ("lt-no", one("a|lt", 5), {"a": 5}, False),
    ("lte", one("a|lte", 5), {"a": "5"}, True),
    ("gt", one("a|gt", 5), {"a": 6}, True),
    ("gt-no", one("a|gt", 5), {"a": "five"}, False),
    ("gte", one("a|gte", 5), {"a": 5.0}, True),
    ("gte-no", one("a|gte", 5), {"a": 4}, False),
    ("exists", one("a|exists", True), {"a": ""}, True),
    ("exists-missing", one("a|exists", True), {"b": 1}, False),
    ("exists-false", one("a|exists", False), {"b": 1}, True),
    ("exists-false-present", one("a|exists", False), {"a": 1}, False),
    ("fieldref", one("a|fieldref", "b"), {"a": "X", "b": "x"}, True),
    ("fieldref-no", one("a|fieldref", "b"), {"a": "x", "b": "y"}, False),
    ("fieldref-missing", one("a|fieldref", "b"), {"a": "x"}, False),
    ("fieldref-contains", one("a|fieldref|contains", "b"), {"a": "pre-x-post", "b": "x"}, True),
    ("fieldref-startswith", one("a|fieldref|startswith", "b"), {"a": "x-post", "b": "x"}, True),
    ("fieldref-endswith-no", one("a|fieldref|endswith", "b"), {"a": "x-post", "b": "x"}, False),
    ("cased", one("a|cased", "Foo"), {"a": "Foo"}, True),
    ("cased-no", one("a|cased", "Foo"), {"a": "foo"}, False),
    ("cased-contains", one("a|contains|cased", "Foo"), {"a": "xFoox"}, True),
    ("null-missing", one("a", None), {"b": 1}, True),
    ("null-none", one("a", None), {"a": None}, True),
    ("null-present", one("a", None), {"a": "x"}, False),
    ("number-str", one("EventID", 4688), {"EventID": "4688"}, True),
    ("number-int", one("EventID", 4688), {"EventID": 4688}, True),
    ("number-no", one("EventID", 4688), {"EventID": 4689}, False),
    ("string-vs-int", one("a", "3"), {"a": 3}, True),
    ("bool", one("a", True), {"a": True}, True),
    ("bool-str", one("a", True), {"a": "true"}, True),
    ("bool-no", one("a", True), {"a": False}, False),
    ("nested-field", one("process.parent.name", "x"), {"process": {"parent": {"name": "X"}}}, True),
    ("flat-dotted-field", one("process.name", "x"), {"process.name": "x"}, True),
    ("event-list", one("dns.answers.data", "1.2.3.4"), {"dns": {"answers": {"data": ["9.9.9.9", "1.2.3.4"]}}},
     True),
    ("event-list-no", one("a", "x"), {"a": ["y", "z"]}, False),
    ("missing-field", one("a", "x"), {"b": "x"}, False),
    ("keyword", {"keywords": ["evil"], "condition": "keywords"}, {"message": "an EVIL thing"}, True),
    ("keyword-no", {"keywords": ["evil"], "condition": "keywords"}, {"message": "good"}, False),
    ("keyword-list", {"keywords": ["evil", "bad"], "condition": "keywords"}, {"message": "so bad"}, True),
    ("keyword-winlog", {"keywords": ["sekurlsa"], "condition": "keywords"},
     {"winlog": {"event_data": {"CommandLine": "mimikatz sekurlsa::logonpasswords"}}}, True),
    ("keyword-not-soc", {"keywords": ["windows"], "condition": "keywords"},
     {"soc": {"logsource": {"product": "windows"}}, "message": "x"}, False),
    ("keyword-wildcard", {"keywords": ["ev*il"], "condition": "keywords"}, {"message": "an ev-xx-il"}, True),
    ("keyword-all", {"keywords": {"|all": ["evil", "bad"]}, "condition": "keywords"}, {"message": "bad evil"},
     True),
    ("keyword-all-no", {"keywords": {"|all": ["evil", "bad"]}, "condition": "keywords"}, {"message": "bad"},
     False),
    ("list-of-maps", {"sel": [{"a": "1"}, {"b": "2"}], "condition": "sel"}, {"b": "2"}, True),
    ("list-of-maps-no", {"sel": [{"a": "1"}, {"b": "2"}], "condition": "sel"}, {"a": "2"}, False),
    ("map-and", {"sel": {"a": "1", "b": "2"}, "condition": "sel"}, {"a": "1", "b": "2"}, True),
    ("map-and-no", {"sel": {"a": "1", "b": "2"}, "condition": "sel"}, {"a": "1", "b": "3"}, False),
]

CONDITIONS = {
    "sel1": {"a": "1"},
    "sel2": {"b": "2"},
    "filter_x": {"c": "3"},
    "filter_y": {"d": "4"},
}

CONDITION_CASES = [
    ("sel1 and sel2", {"a": "1", "b": "2"}, True),
    ("sel1 and sel2", {"a": "1"}, False),
    ("sel1 or sel2", {"b": "2"}, True),
    ("sel1 or sel2", {"c": "3"}, False),
    ("sel1 and not sel2", {"a": "1"}, True),  # missing b: only sel2 is false, so "not sel2" is true
    ("sel1 and not sel2", {"a": "1", "b": "2"}, False),
    ("not sel1", {}, True),
    ("not sel1", {"a": "1"}, False),
    ("(sel1 or sel2) and filter_x", {"b": "2", "c": "3"}, True),
    ("(sel1 or sel2) and filter_x", {"b": "2"}, False),
    ("sel1 or sel2 and filter_x", {"a": "1"}, True),  # and binds tighter than or
    ("1 of sel*", {"b": "2"}, True),
    ("1 of sel*", {"c": "3"}, False),
    ("all of sel*", {"a": "1", "b": "2"}, True),
    ("all of sel*", {"a": "1"}, False),
    ("1 of them", {"d": "4"}, True),
    ("1 of them", {"e": "5"}, False),
    ("all of them", {"a": "1", "b": "2", "c": "3", "d": "4"}, True),
    ("all of them", {"a": "1", "b": "2", "c": "3"}, False),
    ("sel1 and not 1 of filter_*", {"a": "1"}, True),
    ("sel1 and not 1 of filter_*", {"a": "1", "d": "4"}, False),
    ("any of filter_*", {"c": "3"}, True),
]


@pytest.mark.parametrize(("detection", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_value_forms(detection: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert make(detection).matches(event) is expected


@pytest.mark.parametrize(("condition", "event", "expected"), CONDITION_CASES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CONDITION_CASES)])
def test_conditions(condition: str, event: dict[str, Any], expected: bool) -> None:
    assert make({**CONDITIONS, "condition": condition}).matches(event) is expected


def test_condition_list_is_or() -> None:
    rule = make({**CONDITIONS, "condition": ["sel1", "sel2"]})
    assert rule.matches({"b": "2"}) and not rule.matches({"c": "3"})


def test_expand_placeholders() -> None:
    rule = make(one("user|expand", "%admins%"), {"admins": ["root", "adm*"]})
    assert rule.matches({"user": "ROOT"})
    assert rule.matches({"user": "admin"})
    assert not rule.matches({"user": "alice"})


def test_expand_with_text_around() -> None:
    # pySigma reads "\%" as an escaped percent sign, so a placeholder right after a backslash is not one
    rule = make(one("path|expand", "/home/%user%/evil"), {"user": ["bob", "eve"]})
    assert rule.matches({"path": "/HOME/eve/evil"})
    assert not rule.matches({"path": "/home/mallory/evil"})


def test_expand_unknown_placeholder_is_reported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        make(one("user|expand", "%nobody_defined_this%"))
    assert info.value.reason == "placeholder"
    assert "nobody_defined_this" in info.value.message


def test_requirement_literals_are_needed() -> None:
    """The index may only skip a rule when a required literal is absent: check what it files a rule under."""
    rule = make({"sel": {"Image|endswith": ["\\cmd.exe", "\\powershell.exe"], "CommandLine|contains": "-enc"},
                 "filter": {"User": "SYSTEM"}, "condition": "sel and not filter"})
    assert rule.requirement == frozenset({("Image", "\\cmd.exe", False), ("Image", "\\powershell.exe", False)})
    keyword = make({"keywords": ["sekurlsa::"], "condition": "keywords"})
    assert keyword.requirement == frozenset({("*", "sekurlsa::", False)})
    regex = make(one("CommandLine|re", "(?i)invoke-(mimikatz|kerberoast)"))
    assert regex.requirement == frozenset({("CommandLine", "mimikatz", False), ("CommandLine", "kerberoast", False)})
    assert make({"sel": {"a": "x"}, "condition": "not sel"}).requirement is None
