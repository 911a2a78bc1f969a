"""Which rules an event must be tested against: routing by log source, then literal tokens the rules require.

A rule's log source ``(product, category, service)`` matches an event when every part the rule names equals the
event's (Windows events may have several categories, see :func:`pipelines.event_categories`).  Within one log
source, a rule whose condition cannot be true without some literal in some field (``requirements.requirement``) is filed
under those ``(field, literal)`` pairs, for up to two independent groups (``Image`` ends with ``\\cmd.exe`` *and*
``CommandLine`` contains ``copy``): it becomes a candidate only when each group has a hit.  The rest are always
tested.

Each indexed field of a log source has its own table (:class:`_Field`): an Aho-Corasick automaton of the literals
its value must contain, a dictionary of whole values it must equal (``Provider_Name: Security``), and one of the
numbers it must equal (``EventID: 4688``, compared numerically like the matcher does).  Per event, each indexed
field's value is looked up in that field's cache of ``value -> tokens`` (images, users, hosts and parents repeat
endlessly in real streams); only on a miss is the value lower-cased and scanned.  Windows event data is read by
walking ``winlog.event_data`` once rather than field by field.  Keyword literals (field-less values) join the
automaton of every field in the keyword scope (``fields.KEYWORD_SCOPE``), and the event data no rule names is
looked up in one more table of keyword literals only (values shorter than the shortest of them are skipped).
Tables are built per log source on first use; which table an event goes to is remembered by its log source and
event id.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from detectors.sigma.compile import CompiledRule
from detectors.sigma.fields import KEYWORD_SCOPE, Getter, as_text, field_getter
from detectors.sigma.pipelines import event_categories
from detectors.sigma.requirements import KEYWORDS, MAX_GROUPS
from soc.core.model import Event

LogsourceKey = tuple[str | None, tuple[str | None, ...], tuple[str | None, ...]]  # product, categories, services
Tokens = tuple[int, ...]  # rule position * MAX_GROUPS + requirement group
if MAX_GROUPS != 2:  # tokens are split with bit operations below
    raise ImportError("the index expects at most two requirement groups per rule")

# Linux auth lines are one log source for our parsers (service ``auth``), while SigmaHQ names some by the daemon
# that wrote them: an auth event from one of these also answers to the daemon's own service name.
AUTH_DAEMONS = frozenset({"sshd", "sudo", "su", "vsftpd"})

CONTAINER = "winlog.event_data"  # read as one dict walk: most Windows rules look at several of its fields
_CONTAINER_PREFIX = CONTAINER + "."
_get_container = field_getter(CONTAINER)

# categories read from the event's data, not only from its log source and event id (pipelines.event_categories)
_DATA_ROUTED = frozenset({"registry_add", "registry_delete"})
ROUTES_SIZE = 4096

CACHE_SIZE = 1024  # per field and log source: value -> tokens; values repeat a lot (images, users, hosts)
CACHE_MAX_VALUE = 4096  # characters: longer values (whole scripts) are scanned every time
_INTEGER = re.compile(r"-?[0-9]+\Z")


def _numbers(text: str) -> list[int | float]:
    """The numbers a value's text may stand for: the matcher compares ``float(text)`` (and an ``int`` value as
    itself, whose text is its digits), so both readings are looked up."""
    out: list[int | float] = []
    try:
        out.append(float(text.strip()))
    except ValueError:
        return out
    with contextlib.suppress(ValueError):
        out.append(int(text))
    return out


def _strings(value: Any) -> list[str]:
    """The strings keywords search inside one value (as :func:`fields.event_strings` walks it)."""
    if type(value) is str:
        return [value]
    if type(value) is dict:
        return [s for v in value.values() for s in _strings(v)]
    if type(value) is list:
        return [s for v in value for s in _strings(v)]
    return [] if value is None else [as_text(value)]


class _Field:
    """The index of one field of one log source: what its value must contain, equal, or equal as a number."""

    __slots__ = ("automaton", "cache", "exact", "keyword_scope", "min_length", "numbers")

    def __init__(self, substrings: dict[str, set[int]], exact: dict[str, set[int]], keyword_scope: bool) -> None:
        self.keyword_scope = keyword_scope  # keyword literals are among the substrings
        self.automaton: Any = None  # ahocorasick.Automaton: literal -> tokens
        if substrings:
            self.automaton = ahocorasick.Automaton()
            for literal, tokens in substrings.items():
                self.automaton.add_word(literal, tuple(sorted(tokens)))
            self.automaton.make_automaton()
        self.exact: dict[str, Tokens] = {text: tuple(sorted(tokens)) for text, tokens in exact.items()}
        numbers: dict[int, set[int]] = {}
        for text, tokens in exact.items():
            if _INTEGER.match(text):
                numbers.setdefault(int(text), set()).update(tokens)
        self.numbers: dict[int | float, Tokens] = {n: tuple(sorted(t)) for n, t in numbers.items()}
        # an ASCII value shorter than every literal can only hit the whole-value tables
        self.min_length = min(map(len, substrings), default=0) if not exact else 0
        # value -> tokens; only ever string keys, so that a value of any other type misses (True == 1 as keys)
        self.cache: dict[str, Tokens] = {}

    def lookup(self, value: Any) -> Tokens:
        """Tokens of a value whose cache lookup missed: strings, and integers by their text, are remembered (until
        :meth:`RuleIndex.clear_caches`), other values are scanned every time."""
        kind = type(value)
        if kind is str:
            if len(value) < self.min_length and value.isascii():  # lower() keeps ASCII lengths
                return ()
            if len(value) > CACHE_MAX_VALUE:  # the longest values (whole scripts) rarely repeat
                return self._tokens((value,))
        elif kind is int:
            value = str(value)
            found = self.cache.get(value)
            if found is not None:
                return found
        elif value is None:
            return ()
        else:
            # the text each field test compares (any element of a list) and, for keywords, the strings inside
            # (more text only means more candidates, never fewer)
            texts = [as_text(v) for v in value if v is not None] if kind is list else [as_text(value)]
            if self.keyword_scope:
                texts.extend(_strings(value))
            return self._tokens(texts)
        cache = self.cache
        if len(cache) >= CACHE_SIZE:
            cache.clear()  # cheaper than LRU bookkeeping on every event; the hot values come straight back
        found = cache[value] = self._tokens((value,)) if self.exact or self.numbers else self._substrings(value)
        return found

    def _substrings(self, text: str) -> Tokens:
        """:meth:`_tokens` of one string, for a field with substrings only (the common case, kept short)."""
        found: list[int] = []
        for _, tokens in self.automaton.iter(text.lower()):
            found += tokens
        if not found:
            return ()
        return tuple(set(found)) if len(found) > 1 else tuple(found)

    def _tokens(self, texts: Sequence[str]) -> Tokens:
        found: list[int] = []
        automaton, exact, numbers = self.automaton, self.exact, self.numbers
        for text in texts:
            lowered = text.lower()
            if automaton is not None:
                for _, tokens in automaton.iter(lowered):
                    found += tokens
            if exact:
                hit = exact.get(lowered)
                if hit:
                    found += hit
            if numbers:
                for number in _numbers(text):
                    hit = numbers.get(number)
                    if hit:
                        found += hit
        if not found:
            return ()
        return tuple(set(found)) if len(found) > 1 else tuple(found)


@dataclass(slots=True)
class _Bucket:
    """The index of one event log source."""

    always: tuple[int, ...]  # rule positions tested on every event
    always_rules: list[CompiledRule]  # the same rules (a copy is handed out each time)
    getters: tuple[tuple[Getter, _Field], ...]  # indexed fields outside the container
    container: dict[str, _Field]  # indexed fields of the container, by event-data name
    unnamed: _Field | None  # the container's other values, when keyword literals must be searched there
    fields: list[_Field] = field(default_factory=list)  # every table (for clear_caches)


class RuleIndex:
    """Candidate rules per event. ``naive=True`` turns the literal index off (log-source routing only)."""

    def __init__(self, rules: Sequence[CompiledRule], naive: bool = False) -> None:
        self.rules = list(rules)
        self.naive = naive
        self._buckets: dict[LogsourceKey, _Bucket] = {}
        self._routes: dict[tuple[Any, Any, Any, Any], _Bucket] = {}
        self._single = frozenset(i * MAX_GROUPS for i, rule in enumerate(self.rules) if len(rule.requirements) == 1)

    def logsource_key(self, event: Event) -> LogsourceKey:
        logsource = (event.get("soc") or {}).get("logsource") or {}
        service = logsource.get("service")
        services: tuple[str | None, ...] = (service,)
        if service == "auth":
            daemon = ((event.get("process") or {}).get("name") or "").lower()
            if daemon in AUTH_DAEMONS:
                services = (service, daemon)
        return (logsource.get("product"), event_categories(event, logsource), services)

    def candidates(self, event: Event) -> list[CompiledRule]:
        """The rules that may match ``event``, in rule order."""
        bucket = self._bucket(event)
        found: list[int] = []
        try:
            self._scan(bucket, event, found)
        except TypeError:  # an unhashable value (a list, a nested block): every value again, carefully
            found.clear()
            self._scan(bucket, event, found, careful=True)
        if not found:
            return bucket.always_rules.copy()
        tokens = set(found)
        single = self._single
        # a token is rule position * 2 + group; a rule with two groups is a candidate only once both were seen
        hits = [t >> 1 for t in tokens if not t & 1 and (t in single or t + 1 in tokens)]
        if bucket.always:
            hits += bucket.always
        rules = self.rules
        if len(hits) > 1:
            hits.sort()
        return [rules[i] for i in hits]

    @staticmethod
    def _scan(bucket: _Bucket, event: Event, found: list[int], careful: bool = False) -> None:
        """Add the tokens of the event's indexed values to ``found``.  Not ``careful``: every value is taken for
        a string (anything else misses the caches, and a list raises TypeError as a dictionary key)."""
        for getter, table in bucket.getters:
            value = getter(event)
            if value is not None:
                hit = None if careful else table.cache.get(value)
                if hit is None:
                    hit = table.lookup(value)
                if hit:
                    found += hit
        if not (bucket.container or bucket.unnamed is not None):
            return
        container = _get_container(event)
        if type(container) is not dict:
            return
        fields, unnamed = bucket.container, bucket.unnamed
        if careful:
            for name, value in container.items():
                named = fields.get(name, unnamed)
                if named is not None:
                    found += named.lookup(value)
            return
        if unnamed is None:  # only the named fields matter: walk the smaller of the two, look up in the other
            for name in fields if len(fields) < len(container) else container:
                named, value = fields.get(name), container.get(name)
                if named is not None and value is not None:
                    hit = named.cache.get(value)
                    if hit is None:
                        hit = named.lookup(value)
                    if hit:
                        found += hit
            return
        shortest = unnamed.min_length  # the shortest keyword literal: no shorter (ASCII) value can hold one
        for name, value in container.items():
            named = fields.get(name)
            if named is None:
                if type(value) is str and len(value) < shortest and value.isascii():
                    continue
                named = unnamed
            hit = named.cache.get(value)
            if hit is None:
                hit = named.lookup(value)
            if hit:
                found += hit

    def _bucket(self, event: Event) -> _Bucket:
        """The event's log-source bucket, remembered by ``(product, category, service, event id)`` when those
        decide it (not for auth lines, whose daemon counts, nor for Sysmon registry events, whose type does)."""
        soc = event.get("soc")
        logsource = soc.get("logsource") if type(soc) is dict else None
        route = None
        if type(logsource) is dict:
            winlog = event.get("winlog")
            event_id = winlog.get("event_id") if type(winlog) is dict else None
            kind = type(event_id)
            if kind is int or kind is str or event_id is None:  # not 1.0 or True, equal to 1 as dict keys
                route = (logsource.get("product"), logsource.get("category"), logsource.get("service"), event_id)
                try:
                    bucket = self._routes.get(route)
                except TypeError:  # an odd log source (a list): no shortcut
                    route = None
                else:
                    if bucket is not None:
                        return bucket
        key = self.logsource_key(event)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = self._build(key)
        if route is not None and route[2] != "auth" and key[1][0] not in _DATA_ROUTED:
            if len(self._routes) >= ROUTES_SIZE:
                self._routes.clear()
            self._routes[route] = bucket
        return bucket

    def routed(self, key: LogsourceKey) -> list[int]:
        product, categories, services = key
        return [
            i
            for i, rule in enumerate(self.rules)
            if (rule.product is None or rule.product == product)
            and (rule.service is None or rule.service in services)
            and (rule.category is None or rule.category in categories)
        ]

    def _build(self, key: LogsourceKey) -> _Bucket:
        positions = self.routed(key)
        rules = self.rules
        if self.naive:
            return _Bucket(tuple(positions), [rules[i] for i in positions], (), {}, None)
        always: list[int] = []
        substrings: dict[str, dict[str, set[int]]] = {}  # field -> literal -> tokens
        exact: dict[str, dict[str, set[int]]] = {}  # field -> whole value -> tokens
        for i in positions:
            reqs = rules[i].requirements
            if not reqs:
                always.append(i)
                continue
            for group, req in enumerate(reqs):
                token = i * MAX_GROUPS + group
                for name, literal, is_exact in req:
                    by_field = exact if is_exact and name != KEYWORDS else substrings
                    by_field.setdefault(name, {}).setdefault(literal, set()).add(token)
        keywords = substrings.pop(KEYWORDS, {})
        names = {*substrings, *exact}
        container_names = {
            name for name in names if name.startswith(_CONTAINER_PREFIX) and "." not in name[len(_CONTAINER_PREFIX):]
        }
        if keywords:  # keyword literals are searched in every value of the keyword scope
            names |= {name for name in KEYWORD_SCOPE if name != CONTAINER}

        def table(name: str) -> _Field:
            scope = bool(keywords) and (name in container_names or name in KEYWORD_SCOPE)
            literals = {lit: set(tokens) for lit, tokens in substrings.get(name, {}).items()}
            if scope:
                for lit, tokens in keywords.items():
                    literals.setdefault(lit, set()).update(tokens)
            return _Field(literals, exact.get(name, {}), scope)

        tables = {name: table(name) for name in sorted(names)}
        unnamed = _Field(keywords, {}, True) if keywords else None
        return _Bucket(
            always=tuple(always),
            always_rules=[rules[i] for i in always],
            getters=tuple((field_getter(name), t) for name, t in tables.items() if name not in container_names),
            container={name[len(_CONTAINER_PREFIX):]: tables[name] for name in sorted(container_names)},
            unnamed=unnamed,
            fields=[*tables.values(), *([unnamed] if unnamed else [])],
        )

    def clear_caches(self) -> None:
        """Forget the remembered field values (the tables stay): benchmarks start each pass cold."""
        self._routes.clear()
        for bucket in self._buckets.values():
            for table in bucket.fields:
                table.cache.clear()

    def stats(self) -> dict[str, int]:
        return {
            "rules": len(self.rules),
            "indexed": sum(1 for r in self.rules if r.requirements),
            "indexed_two_groups": sum(1 for r in self.rules if len(r.requirements) == 2),
            "log_sources_seen": len(self._buckets),
        }
