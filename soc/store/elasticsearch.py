"""The Elasticsearch store: ECS index templates for ``soc-alerts-*`` and ``soc-events-*``, bulk writes through
the official client's helpers with the alert id as ``_id``, retries with back-off.

An alert goes to the monthly index of its first sighting, so the same alert always lands in the same index and a
second write updates it: the detection part through ``doc``, the whole alert (triage included) only as ``upsert``.
Events are created under their :func:`soc.core.model.event_id`, so an event seen again is stored once.

Triage is optimistic: the alert is read with its ``_seq_no``/``_primary_term`` and updated only if neither moved
(``if_seq_no``/``if_primary_term``); another writer in between means reading and computing again. Elasticsearch has
no transaction over two documents, so the audit record goes through an outbox: the same conditional update that
changes the alert writes the pending audit entry, with a unique ``entry_id``, into the alert
(``soc.alert.audit_pending``); then it is appended to the audit log, then cleared. Whoever finds a pending entry
(the next change of that alert, ``audit verify``) appends it first, so a crash in between loses no record, and no
entry is appended twice: an entry carries ``after``, the audit head seen before it was written (the entry can only
be later in the log), and an appender reads every record from there (real-time gets) before it creates one, by
``seq`` id, at the first free place. ``create`` fails if another record took that place; the appender then reads it
and goes on after it. Records are never rewritten, so once a place holds another entry it always will: two
appenders of one entry cannot both create it.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
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
from soc.core.model import TRIAGE_FIELDS, Alert, Event, event_id, get_field
from soc.store.base import (
    AUDIT_HEAD,
    GENESIS,
    AlertQuery,
    AlertStore,
    AuditConflict,
    ChangeConflict,
    TriageCompute,
    chain_record,
    check_triage_fields,
)

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
                        # the outbox: audit entries (JSON text) written with a change, cleared once appended
                        "audit_pending": {"type": "keyword", "index": False, "doc_values": False},
                        "audit_pending_ids": _KEYWORD,
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
CHANGE_ATTEMPTS = 30  # conditional updates of one alert before giving up (each after a jittered pause)
_AUDIT_STEPS = 100_000  # records read or places tried by one append: every step is progress, this only bounds it
_AUDIT_PAGE = 16  # audit records read per real-time multi-get while looking for the end of the log
_PENDING, _PENDING_IDS = "audit_pending", "audit_pending_ids"


def _pause(attempt: int) -> None:
    """Full jitter, growing to at most half a second, so writers that collided do not collide again."""
    time.sleep(random.uniform(0, min(0.01 * 2 ** attempt, 0.5)))


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
        """Returns how many were new: ``create`` of an id already stored (409) is the same event seen again."""
        self.ensure_templates()
        actions = []
        for event in events:
            identity = event_id(event)
            if get_field(event, "event.id") is None:
                event = {**event, "event": {**(event.get("event") or {}), "id": identity}}
            actions.append({"_op_type": "create", "_id": identity, "_source": event,
                            "_index": monthly_index(self.events_prefix, str(get_field(event, "@timestamp")))})
        return self._bulk("writing events", actions, exists_ok=True) if actions else 0

    def _bulk(self, what: str, actions: list[dict[str, Any]], exists_ok: bool = False) -> int:
        """Returns how many actions succeeded; with ``exists_ok``, a create refused as existing is no error."""
        done, errors = self._call(what, lambda: helpers.bulk(
            self.client, actions, max_retries=5, initial_backoff=1, max_backoff=30, raise_on_error=False,
            raise_on_exception=True, refresh="wait_for", chunk_size=1000,
        ))
        if exists_ok:
            errors = [item for item in errors if next(iter(item.values())).get("status") != 409]
        if errors:
            statuses = {next(iter(item.values())).get("status") for item in errors}
            first = next(iter(errors[0].values()))
            if statuses <= _RETRYABLE_STATUS:
                raise StoreUnavailable(f"Elasticsearch at {self.url} rejected {len(errors)} documents while {what}"
                                       f" (status {sorted(statuses)}); will retry")
            raise StoreError(f"Elasticsearch at {self.url} refused {len(errors)} of {len(actions)} documents while"
                             f" {what}; first: id {first.get('_id')}: {first.get('error')}")
        return int(done)

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
        check_triage_fields(changes)
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

    # --- triage and its audit record as one unit of work (see the module's docstring) ---

    def change_triage(self, alert_id: str, compute: TriageCompute) -> list[dict[str, Any]] | None:
        index = self._index_of(alert_id)  # an alert never moves: its index is found once
        if index is None:
            return None
        for attempt in range(CHANGE_ATTEMPTS):
            hit = self._read_alert(index, alert_id)
            if hit is None:
                return None
            if _alert_part(hit).get(_PENDING_IDS):  # an earlier change's record goes first, keeping their order
                self._complete(index, hit)
                continue
            change = compute(Alert.from_ecs(hit["_source"]))
            check_triage_fields(change.changes)
            after = self._head()[0]
            entries = [{**entry, "entry_id": uuid.uuid4().hex, "after": after} for entry in change.audit]
            outbox = {_PENDING: [json.dumps(e) for e in entries], _PENDING_IDS: [e["entry_id"] for e in entries]}
            try:
                answer = self._call(f"changing alert {alert_id}", lambda hit=hit, change=change, outbox=outbox:
                                    self.client.update(index=index, id=alert_id,
                                                       doc={"soc": {"alert": {**change.changes, **outbox}}},
                                                       if_seq_no=hit["_seq_no"], if_primary_term=hit["_primary_term"],
                                                       refresh=True))
            except ConflictError:  # another writer changed it since we read it: read and compute again
                _pause(attempt)
                continue
            try:
                records = [self._append_chained(entry)[0] for entry in entries]
            except StoreError as exc:
                raise type(exc)(f"alert {alert_id} was changed; its audit record is kept with the alert and appended "
                                f"by its next change or `soc audit verify`: {exc.message}") from None
            # change and record are both stored now: an entry left in the outbox is found logged and cleared later
            with contextlib.suppress(StoreError):
                self._clear_pending(index, alert_id, set(outbox[_PENDING_IDS]), answer["_seq_no"],
                                    answer["_primary_term"])
            return records
        raise ChangeConflict(f"Elasticsearch at {self.url}: alert {alert_id} was changed by others during each of "
                             f"{CHANGE_ATTEMPTS} attempts to change it; nothing was changed, try again")

    def _read_alert(self, index: str, alert_id: str) -> dict[str, Any] | None:
        """The alert as stored now (a real-time get), with the ``_seq_no``/``_primary_term`` of this version."""
        answer = self._call(f"reading alert {alert_id}", lambda: self.client.get(index=index, id=alert_id),
                            missing_ok=True)
        return dict(answer) if answer is not None else None

    def _complete(self, index: str, hit: dict[str, Any]) -> int:
        """Append the pending audit entries of the alert version ``hit`` (each at most once), then clear them."""
        part = _alert_part(hit)
        appended = sum(self._append_chained(json.loads(text))[1] for text in part.get(_PENDING) or [])
        self._clear_pending(index, hit["_id"], set(part.get(_PENDING_IDS) or []), hit["_seq_no"],
                            hit["_primary_term"])
        return appended

    def _clear_pending(self, index: str, alert_id: str, done: set[str], seq_no: int, primary_term: int) -> None:
        """Remove the appended entries ``done`` from the alert's outbox, if that version is still the stored one;
        left there, they are harmless: the next appender finds them in the log and only clears them."""
        remaining: list[str] = []
        for attempt in range(CHANGE_ATTEMPTS):
            outbox = {_PENDING: remaining, _PENDING_IDS: [json.loads(text)["entry_id"] for text in remaining]}
            try:
                self._call(f"clearing the audit outbox of alert {alert_id}", lambda outbox=outbox, seq_no=seq_no,
                           primary_term=primary_term: self.client.update(
                               index=index, id=alert_id, doc={"soc": {"alert": outbox}}, if_seq_no=seq_no,
                               if_primary_term=primary_term))
                return
            except ConflictError:
                hit = self._read_alert(index, alert_id)
                if hit is None or not done & set(_alert_part(hit).get(_PENDING_IDS) or []):
                    return  # cleared by another writer already
                remaining = [text for text in _alert_part(hit).get(_PENDING) or []
                             if json.loads(text)["entry_id"] not in done]
                seq_no, primary_term = hit["_seq_no"], hit["_primary_term"]
                _pause(attempt)

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

    def append_audit_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        return self._append_chained(entry)[0]

    def complete_audit(self) -> int:
        answer = self._call("finding pending audit records", lambda: self.client.search(
            index=f"{self.alerts_prefix}*", query={"exists": {"field": f"soc.alert.{_PENDING_IDS}"}}, source=False,
            size=MAX_PAGE, ignore_unavailable=True, allow_no_indices=True))
        appended = 0
        for found in answer["hits"]["hits"]:
            hit = self._read_alert(found["_index"], found["_id"])
            if hit is not None and _alert_part(hit).get(_PENDING_IDS):
                appended += self._complete(found["_index"], hit)
        return appended

    def _head(self) -> tuple[int, str]:
        """The recorded head of the audit log (seq, hash): never ahead of the log's end, maybe behind it."""
        hit = self._head_hit()
        return (int(hit["_source"]["doc"]["seq"]), str(hit["_source"]["doc"]["hash"])) if hit else (0, GENESIS)

    def _head_hit(self) -> dict[str, Any] | None:
        answer = self._call("reading the audit head", lambda: self.client.get(
            index=f"{self.records_prefix}{AUDIT_HEAD[0]}", id=AUDIT_HEAD[1]), missing_ok=True)
        return dict(answer) if answer is not None else None

    def _audit_page(self, first: int) -> dict[int, dict[str, Any]]:
        """Audit records ``first`` to ``first + _AUDIT_PAGE - 1`` that exist, by seq (real-time, unlike a search)."""
        ids = [f"{seq:012d}" for seq in range(first, first + _AUDIT_PAGE)]
        answer = self._call("reading the audit log", lambda: self.client.mget(index=self.audit_index, ids=ids))
        return {int(doc["_id"]): doc["_source"]["doc"] for doc in answer["docs"] if doc.get("found")}

    def _append_chained(self, entry: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Append ``entry`` at the end of the log, chained to the record before; True when appended now, False
        when an entry with its ``entry_id`` was found there already (see the module's docstring)."""
        self.ensure_templates()
        entry_id = entry.get("entry_id")
        head_seq, head_hash = self._head()
        start = int(entry["after"]) if entry.get("after") is not None else head_seq
        last_seq, last_hash = start, GENESIS if start == 0 else None
        steps = 0
        while steps < _AUDIT_STEPS:
            first = last_seq if last_hash is None else last_seq + 1  # the start record itself, for its hash
            page = self._audit_page(first)
            free = None
            for seq in range(first, first + _AUDIT_PAGE):
                steps += 1
                record = page.get(seq)
                if record is None and last_hash is None:  # the start record is gone (tampering): chain as the head says
                    last_hash = head_hash if seq == head_seq else GENESIS
                    continue
                if record is None:
                    free = seq
                    break
                if entry_id and record.get("entry_id") == entry_id:
                    return record, False
                last_seq, last_hash = seq, str(record.get("hash"))
            if free is None:
                continue
            record = chain_record(entry, free, str(last_hash))
            try:
                self._call("appending to the audit log", lambda record=record: self.client.create(
                    index=self.audit_index, id=f"{record['seq']:012d}",
                    document={"seq": record["seq"], "doc": record}))
            except ConflictError:  # another writer took this place: read it and go on after it
                steps += 1
                continue
            self._advance_head(record)
            return record, True
        raise AuditConflict(f"Elasticsearch at {self.url}: could not append to the audit log, it kept growing "
                            f"under {_AUDIT_STEPS} steps; try again")

    def _advance_head(self, record: dict[str, Any]) -> None:
        """Move the recorded head to ``record``, never back (a slower writer may come after a later record)."""
        index, head_id = f"{self.records_prefix}{AUDIT_HEAD[0]}", AUDIT_HEAD[1]
        document = {"kind": AUDIT_HEAD[0], "doc": {"seq": record["seq"], "hash": record["hash"]}}
        for attempt in range(CHANGE_ATTEMPTS):
            hit = self._head_hit()
            if hit is not None and int(hit["_source"]["doc"]["seq"]) >= record["seq"]:
                return
            try:
                if hit is None:
                    self._call("recording the audit head", lambda: self.client.create(
                        index=index, id=head_id, document=document))
                else:
                    self._call("recording the audit head", lambda hit=hit: self.client.index(
                        index=index, id=head_id, document=document, if_seq_no=hit["_seq_no"],
                        if_primary_term=hit["_primary_term"]))
                return
            except ConflictError:
                _pause(attempt)
        # still behind after every attempt: a lagging head is allowed (verify checks the record it names)

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


def _alert_part(hit: dict[str, Any]) -> dict[str, Any]:
    return dict(hit["_source"].get("soc", {}).get("alert", {}))


def _without_triage(doc: dict[str, Any]) -> dict[str, Any]:
    alert_part = {k: v for k, v in doc["soc"]["alert"].items() if k not in TRIAGE_FIELDS}
    return {**doc, "soc": {**doc["soc"], "alert": alert_part}}
