"""One suite, run against both alert stores: SQLite (embedded) and a real Elasticsearch node."""

from __future__ import annotations

from soc.core.config import ElasticsearchSettings
from soc.core.model import AlertStatus, Severity
from soc.store import AlertQuery, AlertStore

from .conftest import make_alert


def test_round_trip_keeps_every_field(store: AlertStore) -> None:
    alert = make_alert(1)
    store.write([alert])
    got = store.get(alert.id)
    assert got is not None
    assert got.to_ecs() == alert.to_ecs()
    assert store.get("0" * 32) is None


def test_same_alert_written_twice_is_one_document(store: AlertStore) -> None:
    store.write([make_alert(1), make_alert(2)])
    store.write([make_alert(1), make_alert(2)])
    assert store.count() == 2


def test_rewrite_updates_detection_and_keeps_triage(store: AlertStore) -> None:
    store.write([make_alert(3, count=5)])
    assert store.set_triage(make_alert(3).id, AlertStatus.ACKNOWLEDGED, "analyst1")
    store.write([make_alert(3, severity=Severity.HIGH, count=9)])
    got = store.get(make_alert(3).id)
    assert got is not None
    assert (got.count, got.severity) == (9, Severity.HIGH)
    assert (got.status, got.assignee) == (AlertStatus.ACKNOWLEDGED, "analyst1")
    assert not store.set_triage("f" * 32, AlertStatus.CLOSED)


def test_search_filters_and_orders_newest_first(store: AlertStore) -> None:
    alerts = [make_alert(n, severity=Severity.LOW if n % 2 else Severity.HIGH) for n in range(1, 7)]
    store.write(alerts)
    store.set_triage(alerts[1].id, AlertStatus.CLOSED)
    everything = store.search(AlertQuery())
    assert [a.first_seen for a in everything] == sorted((a.first_seen for a in alerts), reverse=True)
    high = store.search(AlertQuery(min_severity=Severity.HIGH))
    assert {a.id for a in high} == {a.id for a in alerts if a.severity == Severity.HIGH}
    closed = store.search(AlertQuery(status=AlertStatus.CLOSED))
    assert [a.id for a in closed] == [alerts[1].id]
    assert len(store.search(AlertQuery(limit=2))) == 2
    assert store.search(AlertQuery(rule_id="other")) == []


def test_events_are_stored(store: AlertStore) -> None:
    events = [{"@timestamp": "2026-11-25T01:02:03.000000Z", "event": {"dataset": "soc.flow", "kind": "event"},
               "source": {"ip": "10.1.1.1", "port": 1234 + n}, "destination": {"ip": "2001:db8::1", "port": 443}}
              for n in range(3)]
    assert store.write_events(events) == 3
    assert store.write_events([*events, events[0]]) == 0  # seen again (twice in one batch too): nothing new
    stored = store.events_for_address("10.1.1.1")
    assert sorted(e["source"]["port"] for e in stored) == [1234, 1235, 1236]


def test_elasticsearch_mappings_are_ecs(es_url: str, es_prefix: str) -> None:
    from soc.store.elasticsearch import ElasticsearchStore

    store = ElasticsearchStore(es_url, ElasticsearchSettings(index_prefix=es_prefix))
    store.write([make_alert(1)])
    store.write_events([{"@timestamp": "2026-11-25T01:02:03Z", "source": {"ip": "10.1.1.1"}}])
    mappings = store.client.indices.get_mapping(index=f"{es_prefix}-*").body
    alerts = next(v["mappings"]["properties"] for k, v in mappings.items() if "-alerts-" in k)
    events = next(v["mappings"]["properties"] for k, v in mappings.items() if "-events-" in k)
    assert alerts["@timestamp"]["type"] == "date"
    assert alerts["source"]["properties"]["ip"]["type"] == "ip"
    assert alerts["destination"]["properties"]["port"]["type"] == "long"
    assert alerts["rule"]["properties"]["id"]["type"] == "keyword"
    assert alerts["threat"]["properties"]["technique"]["properties"]["id"]["type"] == "keyword"
    assert alerts["event"]["properties"]["severity"]["type"] == "long"
    assert events["source"]["properties"]["ip"]["type"] == "ip"
    store.close()
