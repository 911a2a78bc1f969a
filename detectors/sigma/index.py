"""Which rules an event must be tested against: routing by log source, then literal tokens the rules require.

A rule's log source ``(product, category, service)`` matches an event when every part the rule names equals the
event's (Windows events may have several categories, see :func:`pipelines.event_categories`).  Within one log
source, a rule whose condition cannot be true without some literal in some field (``compile.requirement``) is filed
under those ``(field, literal)`` pairs, for up to two independent groups (``Image`` ends with ``\\cmd.exe`` *and*
``CommandLine`` contains ``copy``): it becomes a candidate only when each group has a hit.  The rest are always
tested.

Per event, each indexed field's value is looked up in a cache of ``(field, value) -> rules`` (images, users, hosts
and parents repeat endlessly in real streams); on a miss, one Aho-Corasick automaton holding every literal of the
log source scans the lower-cased value and keeps the hits filed for that field (or for keywords, when the field is
in the keyword scope).  Windows event data is read by walking ``winlog.event_data`` once rather than field by
field.  Short exact values (``LogonType: 3``) are dictionary lookups.  Tables are built per log source on first
use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from detectors.sigma.compile import (
    KEYWORD_SCOPE,
    KEYWORDS,
    MAX_GROUPS,
    CompiledRule,
    Getter,
    as_text,
    field_getter,
    good_literal,
)
from detectors.sigma.pipelines import event_categories
from soc.model import Event

LogsourceKey = tuple[str | None, tuple[str | None, ...], tuple[str | None, ...]]  # product, categories, services

# Linux auth lines are one log source for our parsers (service ``auth``), while SigmaHQ names some by the daemon
# that wrote them: an auth event from one of these also answers to the daemon's own service name.
AUTH_DAEMONS = frozenset({"sshd", "sudo", "su", "vsftpd"})

CONTAINER = "winlog.event_data"  # read as one dict walk: most Windows rules look at several of its fields
_CONTAINER_PREFIX = CONTAINER + "."
_get_container = field_getter(CONTAINER)
_KEYWORD_FIELDS = tuple(field_getter(name) for name in KEYWORD_SCOPE if name != CONTAINER)


KEYWORD_ONLY = -1  # field id of text only keyword literals may hit (event data no rule names, message, ...)
KEYWORDS_ID = -2  # groups key of keyword literals
CACHE_SIZE = 1024  # per field and log source: value -> tokens; values repeat a lot (images, users, hosts)
_SEP = "\x1e"
CACHE_MAX_VALUE = 512  # characters: longer values are scanned every time


def _remember(cache: dict[str, tuple[int, ...]], text: str, found: tuple[int, ...]) -> tuple[int, ...]:
    if len(text) <= CACHE_MAX_VALUE:  # long values (command lines, scripts) rarely repeat: not worth the memory
        if len(cache) >= CACHE_SIZE:
            cache.clear()  # cheaper than LRU bookkeeping on every event, and the hot values come straight back
        cache[text] = found
    return found


def _field_tokens(bucket: _Bucket, field_id: int, text: str) -> tuple[int, ...]:
    """Tokens whose literal occurs in one field's text (keyword literals too, when the field is in their scope)."""
    if bucket.automaton is None:
        return ()
    found: set[int] = set()
    groups = bucket.groups
    keyword_scope = bucket.keywords and (field_id == KEYWORD_ONLY or field_id in bucket.keyword_fields)
    for _, literal_id in bucket.automaton.iter(text.lower()):
        table = groups[literal_id]
        hit = table.get(field_id)
        if hit:
            found.update(hit)
        if keyword_scope:
            hit = table.get(KEYWORDS_ID)
            if hit:
                found.update(hit)
    return tuple(found)


def _text_of(value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) is list:
        return "\n".join(as_text(v) for v in value if v is not None)
    return as_text(value)


@dataclass(slots=True)
class _Bucket:
    """The index of one event log source; rule "tokens" are rule position * MAX_GROUPS + requirement group."""

    always: tuple[int, ...]  # rule positions tested on every event
    getters: tuple[tuple[int, Getter], ...]  # (field id, getter) of indexed fields outside the container
    container_ids: dict[str, int]  # event-data name -> field id
    keywords: bool  # some rule here is filed under keyword literals
    keyword_fields: frozenset[int]  # field ids inside the keyword scope (the container's)
    automaton: Any  # ahocorasick.Automaton: literal -> index into groups, or None
    groups: tuple[dict[int, tuple[int, ...]], ...]  # per literal: field id (or KEYWORDS_ID) -> tokens
    exact: tuple[tuple[Getter, dict[str, tuple[int, ...]]], ...]  # field, whole value -> tokens
    caches: list[dict[str, tuple[int, ...]]] = field(default_factory=list)  # per field id: value -> tokens


class RuleIndex:
    """Candidate rules per event. ``naive=True`` turns the literal index off (log-source routing only)."""

    def __init__(self, rules: Sequence[CompiledRule], naive: bool = False) -> None:
        self.rules = list(rules)
        self.naive = naive
        self._buckets: dict[LogsourceKey, _Bucket] = {}
        self._needed = [len(rule.requirements) for rule in self.rules]

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
        key = self.logsource_key(event)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = self._build(key)
        rules = self.rules
        if bucket.automaton is None and not bucket.exact:
            return [rules[i] for i in bucket.always]
        tokens: set[int] = set()
        if bucket.automaton is not None:
            self._scan(bucket, event, tokens)
        for getter, table in bucket.exact:
            value = getter(event)
            if value is None:
                continue
            for item in value if type(value) is list else (value,):
                found = table.get(as_text(item).lower())
                if found:
                    tokens.update(found)
        hits = set(bucket.always)
        needed = self._needed
        for token in tokens:
            rule, group = divmod(token, MAX_GROUPS)
            # a rule with two groups is a candidate only once a literal of each was seen
            if group == 0 and (needed[rule] == 1 or token + 1 in tokens):
                hits.add(rule)
        return [rules[i] for i in sorted(hits)]

    @staticmethod
    def _scan(bucket: _Bucket, event: Event, tokens: set[int]) -> None:
        """Add the tokens (rule position * MAX_GROUPS + requirement group) whose literal occurs in its field."""
        caches = bucket.caches
        for field_id, getter in bucket.getters:
            value = getter(event)
            if value is not None:
                text = value if type(value) is str else _text_of(value)
                cache = caches[field_id]
                found = cache.get(text)
                if found is None:
                    found = _remember(cache, text, _field_tokens(bucket, field_id, text))
                if found:
                    tokens.update(found)
        if not (bucket.container_ids or bucket.keywords):
            return
        keyword_texts: list[str] = []  # event data no rule names: only keyword literals look there, all at once
        container = _get_container(event)
        if type(container) is dict:
            names, keywords = bucket.container_ids, bucket.keywords
            for name, value in container.items():
                if value is None:
                    continue
                text = value if type(value) is str else _text_of(value)
                named = names.get(name)
                if named is None:
                    if keywords:
                        keyword_texts.append(text)
                    continue
                cache = caches[named]
                found = cache.get(text)
                if found is None:
                    found = _remember(cache, text, _field_tokens(bucket, named, text))
                if found:
                    tokens.update(found)
        if bucket.keywords:
            for getter in _KEYWORD_FIELDS:
                value = getter(event)
                if value is not None:
                    keyword_texts.append(_text_of(value))
            if keyword_texts:  # the separator is in no literal, so no hit spans two values
                tokens.update(_field_tokens(bucket, KEYWORD_ONLY, _SEP.join(keyword_texts)))

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
        if self.naive:
            return _Bucket(tuple(positions), (), {}, False, frozenset(), None, (), ())
        always: list[int] = []
        substrings: dict[str, dict[int, set[int]]] = {}
        exact: dict[str, dict[str, set[int]]] = {}
        field_ids: dict[str, int] = {}
        for i in positions:
            reqs = self.rules[i].requirements
            if not reqs:
                always.append(i)
                continue
            for group, req in enumerate(reqs):
                token = i * MAX_GROUPS + group
                for name, literal, is_exact in req:
                    if is_exact and not good_literal(literal):
                        exact.setdefault(name, {}).setdefault(literal, set()).add(token)
                        continue
                    field_id = KEYWORDS_ID if name == KEYWORDS else field_ids.setdefault(name, len(field_ids))
                    substrings.setdefault(literal, {}).setdefault(field_id, set()).add(token)
        automaton = None
        groups: list[dict[int, tuple[int, ...]]] = []
        if substrings:
            automaton = ahocorasick.Automaton()
            for literal, by_field in substrings.items():
                automaton.add_word(literal, len(groups))
                groups.append({f: tuple(sorted(p)) for f, p in by_field.items()})
            automaton.make_automaton()
        container_ids = {
            name[len(_CONTAINER_PREFIX):]: fid
            for name, fid in field_ids.items()
            if name.startswith(_CONTAINER_PREFIX) and "." not in name[len(_CONTAINER_PREFIX):]
        }
        getters = tuple(
            (fid, field_getter(name)) for name, fid in field_ids.items()
            if name[len(_CONTAINER_PREFIX):] not in container_ids or not name.startswith(_CONTAINER_PREFIX)
        )
        tables = tuple(
            (field_getter(name), {lit: tuple(sorted(p)) for lit, p in table.items()})
            for name, table in sorted(exact.items())
        )
        keywords = any(KEYWORDS_ID in g for g in groups)
        return _Bucket(
            always=tuple(always),
            getters=getters,
            container_ids=container_ids,
            keywords=keywords,
            keyword_fields=frozenset(container_ids.values()),
            automaton=automaton,
            groups=tuple(groups),
            exact=tables,
            caches=[{} for _ in field_ids],
        )

    def clear_caches(self) -> None:
        """Forget the remembered field values (the tables stay): benchmarks start each pass cold."""
        for bucket in self._buckets.values():
            for cache in bucket.caches:
                cache.clear()

    def stats(self) -> dict[str, int]:
        return {
            "rules": len(self.rules),
            "indexed": sum(1 for r in self.rules if r.requirements),
            "indexed_two_groups": sum(1 for r in self.rules if len(r.requirements) == 2),
            "log_sources_seen": len(self._buckets),
        }

