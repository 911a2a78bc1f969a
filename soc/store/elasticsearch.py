"""The Elasticsearch store: ECS index templates for ``soc-alerts-*`` and ``soc-events-*``, bulk writes through
the official client's helpers with the alert id as ``_id``, retries with back-off.

An alert goes to the monthly index of its first sighting, so the same alert always lands in the same index and a
second write updates it: the detection part through ``doc``, the whole alert (triage included) only as ``upsert``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import (
    ApiError,
    ConflictError,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    TransportError,
    helpers,
)

from soc.core.config import ElasticsearchSettings
from soc.core.errors import StoreError, StoreUnavailable
from soc.core.model import TRIAGE_FIELDS, Alert, Event, get_field
from soc.store.base import AlertQuery, AlertStore, AuditConflict

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_ENDPOINT = {
    "properties": {
        "ip": {"type": "ip"},
        "port": {"type": "long"},
        "bytes": {"type": "long"},
        "packets": {"type": "long"},
        "domain": _KEYWORD,
        "mac": _KEYWORD,
    }
}
_COMMON_PROPERTIES: dict[str, Any] = {
    "@timestamp": {"type": "date"},
    "message": {"type": "text"},
    "tags": _KEYWORD,
    "event": {
        "properties": {
            "id": _KEYWORD, "kind": _KEYWORD, "module": _KEYWORD, "dataset": _KEYWORD, "category": _KEYWORD,
            "type": _KEYWORD, "action": _KEYWORD, "outcome": _KEYWORD, "code": _KEYWORD, "provider": _KEYWORD,
            "severity": {"type": "long"}, "risk_score": {"type": "float"}, "duration": {"type": "long"},
            "start": {"type": "date"}, "end": {"type": "date"}, "created": {"type": "date"},
            "original": {"type": "keyword", "index": False, "doc_values": False},
        }
    },
    "source": _ENDPOINT,
    "destination": _ENDPOINT,
    "client": _ENDPOINT,
    "server": _ENDPOINT,
    "related": {"properties": {"ip": {"type": "ip"}, "user": _KEYWORD, "hosts": _KEYWORD}},
    "network": {
        "properties": {
            "transport": _KEYWORD, "type": _KEYWORD, "protocol": _KEYWORD, "iana_number": _KEYWORD,
            "direction": _KEYWORD, "bytes": {"type": "long"}, "packets": {"type": "long"},
        }
    },
    "host": {"properties": {"name": _KEYWORD, "hostname": _KEYWORD, "ip": {"type": "ip"}}},
    "user": {"properties": {"name": _KEYWORD, "domain": _KEYWORD, "id": _KEYWORD}},
}
_DYNAMIC_TEMPLATES = [
    {"ip_fields": {"match": "ip", "mapping": {"type": "ip"}}},
    {"strings": {"match_mapping_type": "string", "mapping": _KEYWORD}},
]

ALERTS_TEMPLATE = {
    "priority": 200,
    "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "dynamic_templates": _DYNAMIC_TEMPLATES,
            "properties": {
                **_COMMON_PROPERTIES,
                "rule": {"properties": {"id": _KEYWORD, "name": _KEYWORD, "ruleset": _KEYWORD,
                                        "reference": _KEYWORD, "description": {"type": "text"}}},
                "threat": {"properties": {
                    "framework": _KEYWORD,
                    "technique": {"properties": {"id": _KEYWORD, "name": _KEYWORD}},
                    "tactic": {"properties": {"id": _KEYWORD, "name": _KEYWORD}},
                }},
                "soc": {"properties": {
                    "alert": {"properties": {
                        "group_key": _KEYWORD, "time_bucket": {"type": "long"}, "severity": _KEYWORD,
                        "status": _KEYWORD, "assignee": _KEYWORD, "count": {"type": "long"},
                        "verdict": _KEYWORD, "incident_id": _KEYWORD, "suppressed_by": _KEYWORD,
                        "created_at": {"type": "date"},
                        "notes": {"properties": {"at": {"type": "date"}, "by": _KEYWORD, "text": {"type": "text"}}},
                        # detector-specific evidence: kept whole, not indexed (its fields differ per detector)
                        "evidence": {"type": "object", "enabled": False},
                    }},
                    "system": {"properties": {"name": _KEYWORD, "security_level": {"type": "long"}}},
                }},
            },
        },
    },
}
EVENTS_TEMPLATE = {
    "priority": 200,
    "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"dynamic_templates": _DYNAMIC_TEMPLATES, "properties": _COMMON_PROPERTIES},
    },
}

# Triage, records and the audit log are written one at a time by people: refresh=True makes each visible at once
# (refresh="wait_for" would wait up to a refresh interval for each). Records and the audit log are read whole,
# never searched by field: stored unindexed, so any shape is accepted.
RECORDS_TEMPLATE = {
    "priority": 200,
    "template": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"dynamic": "strict", "properties": {
            "kind": _KEYWORD, "seq": {"type": "long"}, "doc": {"type": "object", "enabled": False}}},
    },
}

_UNAVAILABLE = (ConnectionError, ConnectionTimeout)
MAX_PAGE = 10000  # index.max_result_window
_RETRYABLE_STATUS = {429, 502, 503, 504}


def monthly_index(prefix: str, timestamp: str) -> str:
    when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return f"{prefix}{when:%Y.%m}"


class ElasticsearchStore(AlertStore):
    def __init__(self, url: str, settings: ElasticsearchSettings | None = None) -> None:
        self.url = url
        s = settings or ElasticsearchSettings()
        options: dict[str, Any] = {
            "request_timeout": s.request_timeout,
            "max_retries": s.max_retries,
            "retry_on_timeout": True,
            "verify_certs": s.verify_certs,
        }
        if s.api_key:
            options["api_key"] = s.api_key
        elif s.username:
            options["basic_auth"] = (s.username, s.password or "")
        if s.ca_certs:
            options["ca_certs"] = s.ca_certs
        self.client = Elasticsearch(url, **options)
        self.alerts_prefix = f"{s.index_prefix}-alerts-"
        self.events_prefix = f"{s.index_prefix}-events-"
        self.records_prefix = f"{s.index_prefix}-records-"
        self.audit_index = f"{s.index_prefix}-audit"
        self._templates_ready = False

    def _call(self, what: str, action: Any, missing_ok: bool = False) -> Any:
        """Run one client call, sorting failures into 'try again later' and 'refused' (None for 'not found' when
        ``missing_ok``)."""
        try:
            return action()
        except NotFoundError:
            if missing_ok:
                return None
            raise StoreError(f"Elasticsearch at {self.url}: not found while {what}") from None
        except ConflictError:
            raise
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"Elasticsearch at {self.url} unreachable while {what}: {exc.message}") from None
        except ApiError as exc:
            if exc.meta.status in _RETRYABLE_STATUS:
                raise StoreUnavailable(f"Elasticsearch at {self.url} overloaded while {what}: {exc}") from None
            raise StoreError(f"Elasticsearch at {self.url} refused {what}: {exc}") from None
        except TransportError as exc:
            raise StoreUnavailable(f"Elasticsearch at {self.url} failed while {what}: {exc}") from None

    def ensure_templates(self) -> None:
        if self._templates_ready:
            return
        templates = ((self.alerts_prefix, ALERTS_TEMPLATE), (self.events_prefix, EVENTS_TEMPLATE),
                     (self.records_prefix, RECORDS_TEMPLATE), (self.audit_index, RECORDS_TEMPLATE))
        for prefix, body in templates:
            name = prefix.rstrip("-")
            self._call(f"installing index template {name}", lambda name=name, prefix=prefix, body=body:
                       self.client.indices.put_index_template(name=name, index_patterns=[f"{prefix}*"], **body))
        self._templates_ready = True

    def write(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        self.ensure_templates()
        actions = []
        for alert in alerts:
            full = alert.to_ecs()
            detection = _without_triage(full)
            actions.append({"_op_type": "update", "_index": monthly_index(self.alerts_prefix, alert.first_seen),
                            "_id": alert.id, "doc": detection, "upsert": full, "retry_on_conflict": 3})
        self._bulk("writing alerts", actions)

    def write_events(self, events: Iterable[Event]) -> int:
        self.ensure_templates()
        actions = [{"_op_type": "index", "_index": monthly_index(self.events_prefix, str(get_field(e, "@timestamp"))),
                    "_source": e} for e in events]
        self._bulk("writing events", actions)
        return len(actions)

    def _bulk(self, what: str, actions: list[dict[str, Any]]) -> None:
        _, errors = self._call(what, lambda: helpers.bulk(
            self.client, actions, max_retries=5, initial_backoff=1, max_backoff=30, raise_on_error=False,
            raise_on_exception=True, refresh="wait_for", chunk_size=1000,
        ))
        if errors:
            statuses = {next(iter(item.values())).get("status") for item in errors}
            first = next(iter(errors[0].values()))
            if statuses <= _RETRYABLE_STATUS:
                raise StoreUnavailable(f"Elasticsearch at {self.url} rejected {len(errors)} documents while {what}"
                                       f" (status {sorted(statuses)}); will retry")
            raise StoreError(f"Elasticsearch at {self.url} refused {len(errors)} of {len(actions)} documents while"
                             f" {what}; first: id {first.get('_id')}: {first.get('error')}")

    def events_for_address(self, address: str, limit: int = 20) -> list[Event]:
        query = {"bool": {"should": [{"term": {"source.ip": address}}, {"term": {"destination.ip": address}}],
                          "minimum_should_match": 1}}
        answer = self._call("searching events", lambda: self.client.search(
            index=f"{self.events_prefix}*", query=query, size=limit, ignore_unavailable=True, allow_no_indices=True,
            sort=[{"@timestamp": {"order": "desc", "unmapped_type": "date"}}]))
        return [hit["_source"] for hit in answer["hits"]["hits"]]

    def get(self, alert_id: str) -> Alert | None:
        hits = self._search({"ids": {"values": [alert_id]}}, size=1)
        return hits[0] if hits else None

    def update_triage(self, alert_id: str, changes: dict[str, Any]) -> bool:
        unknown = set(changes) - set(TRIAGE_FIELDS)
        if unknown:
            raise ValueError(f"not triage fields: {sorted(unknown)}")
        index = self._index_of(alert_id)
        if index is None:
            return False
        self._call("updating triage", lambda: self.client.update(
            index=index, id=alert_id, doc={"soc": {"alert": changes}}, refresh=True, retry_on_conflict=3))
        return True

    def _index_of(self, alert_id: str) -> str | None:
        answer = self._call("finding an alert", lambda: self.client.search(
            index=f"{self.alerts_prefix}*", query={"ids": {"values": [alert_id]}}, source=False, size=1,
            ignore_unavailable=True, allow_no_indices=True))
        hits = answer["hits"]["hits"]
        return str(hits[0]["_index"]) if hits else None

    def search(self, query: AlertQuery) -> list[Alert]:
        filters: list[dict[str, Any]] = []
        if query.min_severity is not None:
            filters.append({"range": {"event.severity": {"gte": int(query.min_severity)}}})
        if query.status is not None:
            filters.append({"term": {"soc.alert.status": query.status.value}})
        if query.rule_id is not None:
            filters.append({"term": {"rule.id": query.rule_id}})
        if query.system is not None:
            filters.append({"term": {"soc.system.name": query.system}})
        if query.systems is not None:
            filters.append({"terms": {"soc.system.name": query.systems}})
        if query.incident_id is not None:
            filters.append({"term": {"soc.alert.incident_id": query.incident_id}})
        must_not = [] if query.include_suppressed else [{"exists": {"field": "soc.alert.suppressed_by"}}]
        return self._search({"bool": {"filter": filters, "must_not": must_not}}, size=query.limit)

    def _search(self, es_query: dict[str, Any], size: int) -> list[Alert]:
        sort = [{"@timestamp": {"order": "desc", "unmapped_type": "date"}},
                {"event.id": {"order": "asc", "unmapped_type": "keyword"}}]
        hits: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while len(hits) < size:  # pages of at most 10,000 (the cluster's result window), by search_after
            page = min(size - len(hits), MAX_PAGE)
            answer = self._call("searching alerts", lambda page=page, after=after: self.client.search(
                index=f"{self.alerts_prefix}*", query=es_query, size=page, ignore_unavailable=True,
                allow_no_indices=True, sort=sort, search_after=after))
            batch = answer["hits"]["hits"]
            hits += batch
            if len(batch) < page:
                break
            after = batch[-1]["sort"]
        return [Alert.from_ecs(hit["_source"]) for hit in hits]

    def count(self) -> int:
        answer = self._call("counting alerts", lambda: self.client.count(
            index=f"{self.alerts_prefix}*", ignore_unavailable=True, allow_no_indices=True))
        return int(answer["count"])

    def delete_alerts(self, alert_ids: Sequence[str]) -> int:
        if not alert_ids:
            return 0
        answer = self._call("deleting alerts", lambda: self.client.delete_by_query(
            index=f"{self.alerts_prefix}*", query={"ids": {"values": list(alert_ids)}}, refresh=True,
            ignore_unavailable=True, allow_no_indices=True))
        return int(answer["deleted"])

    def put_record(self, kind: str, record_id: str, doc: dict[str, Any]) -> None:
        self.ensure_templates()
        self._call(f"writing a {kind} record", lambda: self.client.index(
            index=f"{self.records_prefix}{kind}", id=record_id, document={"kind": kind, "doc": doc},
            refresh=True))

    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        answer = self._call(f"reading a {kind} record", lambda: self.client.get(
            index=f"{self.records_prefix}{kind}", id=record_id), missing_ok=True)
        return dict(answer["_source"]["doc"]) if answer else None

    def list_records(self, kind: str, limit: int = 10000) -> list[dict[str, Any]]:
        answer = self._call(f"listing {kind} records", lambda: self.client.search(
            index=f"{self.records_prefix}{kind}", size=limit, ignore_unavailable=True, allow_no_indices=True,
            query={"match_all": {}}))
        hits = sorted(answer["hits"]["hits"], key=lambda hit: hit["_id"])
        return [dict(hit["_source"]["doc"]) for hit in hits]

    def append_audit(self, entry: dict[str, Any]) -> None:
        self.ensure_templates()
        try:
            self._call("appending to the audit log", lambda: self.client.create(
                index=self.audit_index, id=f"{entry['seq']:012d}", document={"seq": entry["seq"], "doc": entry},
                refresh=True))
        except ConflictError:
            raise AuditConflict(f"audit record {entry['seq']} exists already") from None

    def read_audit(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        exists = self._call("reading the audit log", lambda: self.client.indices.exists(index=self.audit_index))
        if not exists:
            return entries
        self._call("reading the audit log", lambda: self.client.indices.refresh(index=self.audit_index))
        for hit in helpers.scan(self.client, index=self.audit_index, query={"query": {"match_all": {}}},
                                preserve_order=False):
            entries.append(hit["_source"]["doc"])
        return sorted(entries, key=lambda entry: entry["seq"])

    def close(self) -> None:
        self.client.close()


def _without_triage(doc: dict[str, Any]) -> dict[str, Any]:
    alert_part = {k: v for k, v in doc["soc"]["alert"].items() if k not in TRIAGE_FIELDS}
    return {**doc, "soc": {**doc["soc"], "alert": alert_part}}
