"""One suite, run against both alert stores: SQLite (embedded) and a real Elasticsearch node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.config import ElasticsearchSettings, StoreSettings
from soc.model import Alert, AlertStatus, Rule, Severity, Technique
from soc.store import AlertQuery, AlertStore, open_store

RULE = Rule("test-rule", "Test rule", "tests", "a rule for tests", "https://example.org/rule")


def make_alert(n: int, severity: Severity = Severity.MEDIUM, count: int = 1, bucket: int = 7) -> Alert:
    return Alert(
        rule=RULE,
        severity=severity,
        group_key=f"10.0.{n // 256}.{n % 256}",
        time_bucket=bucket,
        first_seen=f"2026-11-{1 + n % 28:02d}T10:00:00.000000Z",
        last_seen=f"2026-11-{1 + n % 28:02d}T10:00:30.000000Z",
        message=f"alert number {n}",
        techniques=[Technique("T1046", "Network Service Discovery", "TA0007", "Discovery")],
        ecs={"source": {"ip": f"10.0.{n // 256}.{n % 256}"}, "destination": {"ip": "192.0.2.1", "port": 22}},
        evidence={"ports": [22, 80, n], "note": "x"},
        count=count,
    )


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    if request.param == "sqlite":
        settings = StoreSettings(url=f"sqlite:///{tmp_path / 'alerts.db'}")
    else:
        es_url = request.getfixturevalue("es_url")
        prefix = request.getfixturevalue("es_prefix")
        settings = StoreSettings(url=es_url, elasticsearch=ElasticsearchSettings(index_prefix=prefix))
    with open_store(settings) as opened:
        yield opened


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
               "source": {"ip": "10.1.1.1", "port": 1234}, "destination": {"ip": "2001:db8::1", "port": 443}}
              for _ in range(3)]
    assert store.write_events(events) == 3


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
