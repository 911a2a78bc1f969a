"""Sigma rules as scheduled detections inside Elasticsearch: each rule becomes a Lucene query (through
pysigma-backend-elasticsearch) run over ``<prefix>-events-*`` every N minutes with a look-back that overlaps the
previous run, so late events are not missed. Overlap never duplicates: a hit becomes the same alert as in the
last run (deterministic id), and an alert counts distinct event ids, so an event seen twice counts once.

Only the Lucene target needs nothing beyond Elasticsearch's free core; EQL and ES|QL queries (``soc rules
convert --target eql|esql``) need the EQL and ES|QL plugins of the default distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sigma.backends.elasticsearch import LuceneBackend
from sigma.exceptions import SigmaError

from detectors.sigma import RuleSet, SigmaEngine
from detectors.sigma.compile import CompiledRule
from detectors.sigma.pipelines import get_pipeline
from soc.alerts.handling import AlertHandler
from soc.core.config import ScheduledSigma, Settings
from soc.core.model import Alert
from soc.store.elasticsearch import ElasticsearchStore

MAX_EVENT_IDS = 1000  # distinct event ids an alert remembers; past that its count is a lower bound
MAX_HITS = 10000  # hits read per rule and run


@dataclass(slots=True)
class ScheduledQuery:
    rule: CompiledRule
    query: str


@dataclass(slots=True)
class RunResult:
    rules: int = 0
    hits: int = 0
    alerts: list[Alert] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def build_queries(paths: list[Path], pipeline: str | list[str] | None = None) -> tuple[list[ScheduledQuery],
                                                                                      list[str]]:
    """Each loadable rule with its Lucene query; rules that do not convert are reported, not fatal."""
    ruleset = RuleSet.from_paths(paths, pipeline)
    problems = [str(p) for p in ruleset.report.problems]
    parsed = {str(rule.id): rule for rule in ruleset.report.rules}
    queries = []
    for compiled in ruleset.rules:
        backend = LuceneBackend(processing_pipeline=get_pipeline(pipeline))  # per rule: backends keep state
        try:
            converted = backend.convert_rule(parsed[compiled.id])
        except (SigmaError, NotImplementedError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{compiled.path}: rule {compiled.id} does not convert to Lucene: {exc}")
            continue
        if converted:
            queries.append(ScheduledQuery(compiled, " OR ".join(f"({q})" for q in converted)))
    return queries, problems


class ScheduledDetections:
    def __init__(self, settings: Settings, store: ElasticsearchStore, job: ScheduledSigma) -> None:
        self.settings = settings
        self.store = store
        self.job = job
        self.queries, self.problems = build_queries([settings.resolve(p) for p in job.rules], job.pipeline)
        self.engine = SigmaEngine([], window=job.window_seconds)
        self.handler = AlertHandler(settings, store)

    def run_once(self, now: datetime | None = None) -> RunResult:
        now = now or datetime.now(tz=UTC)
        since = now - timedelta(minutes=self.job.lookback_minutes)
        result = RunResult(rules=len(self.queries), problems=list(self.problems))
        found: dict[str, Alert] = {}
        for scheduled in self.queries:
            query = {"bool": {"filter": [
                {"query_string": {"query": scheduled.query, "analyze_wildcard": True}},
                {"range": {"@timestamp": {"gte": since.isoformat(), "lte": now.isoformat()}}},
            ]}}
            answer = self.store.client.search(index=f"{self.store.events_prefix}*", query=query, size=MAX_HITS,
                                              ignore_unavailable=True, allow_no_indices=True)
            for hit in answer["hits"]["hits"]:
                result.hits += 1
                alert = self.engine.alert(scheduled.rule, hit["_source"])
                alert.evidence["event_ids"] = [hit["_id"]]
                known = found.get(alert.id) or self.store.get(alert.id)
                found[alert.id] = _merge(known, alert) if known else alert
        alerts = self.handler.handle(list(found.values()), group=False)
        if alerts:
            self.store.write(alerts)
        result.alerts = alerts
        return result


def _merge(known: Alert, new: Alert) -> Alert:
    """Same rule, subject and window: union of the event ids; the count is how many distinct events matched."""
    ids = list(dict.fromkeys([*known.evidence.get("event_ids", []), *new.evidence["event_ids"]]))
    known.evidence["event_ids"] = ids[:MAX_EVENT_IDS]
    events = known.evidence.get("events", [])
    known.evidence["events"] = (events + [e for e in new.evidence.get("events", []) if e not in events])[:50]
    known.count = max(known.count, len(ids))
    known.first_seen, known.last_seen = min(known.first_seen, new.first_seen), max(known.last_seen, new.last_seen)
    return known


def scheduled_job(settings: Settings, job: ScheduledSigma) -> Any:
    """The function the scheduler runs for ``job``."""
    def run(settings: Settings, store: Any) -> dict[str, Any]:
        inner = getattr(store, "store", store)  # unwrap the spool: queries need the cluster itself
        if not isinstance(inner, ElasticsearchStore):
            raise ValueError(f"scheduled Sigma detections need an Elasticsearch store, not {inner.url}")
        result = ScheduledDetections(settings, inner, job).run_once()
        return {"rules": result.rules, "hits": result.hits, "alerts": [a.id for a in result.alerts],
                "problems": len(result.problems)}
    return run
