"""Sigma rules as scheduled Lucene queries against a real Elasticsearch: overlapping runs never duplicate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from soc.core.config import ElasticsearchSettings, ScheduledSigma, Settings
from soc.engine.scheduled_detections import ScheduledDetections, build_queries
from soc.store.elasticsearch import ElasticsearchStore

RULE = """
title: SSH connection refused by the firewall
id: 5a0c8a67-2d0e-4d59-9d5a-0e2c5e0b9a11
status: experimental
description: test rule for scheduled detections
logsource:
    category: firewall
detection:
    selection:
        dst_port: 22
        action: drop
    condition: selection
level: medium
tags:
    - attack.discovery
    - attack.t1046
"""
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


def firewall_event(minute: int, source: str, port: int = 22, action: str = "drop") -> dict:
    return {"@timestamp": f"2026-11-25T10:{minute:02d}:00.000000Z",
            "event": {"kind": "event", "category": ["network"], "action": action, "dataset": "iptables"},
            "source": {"ip": source}, "destination": {"ip": "10.10.1.5", "port": port},
            "soc": {"logsource": {"product": "linux", "category": "firewall", "service": None}}}


def test_rule_converts_to_lucene_on_ecs_fields(tmp_path: Path) -> None:
    (tmp_path / "rule.yml").write_text(RULE)
    [query], problems = build_queries([tmp_path / "rule.yml"])
    assert problems == []
    assert "destination.port:22" in query.query and "event.action:drop" in query.query


def test_overlapping_runs_count_each_event_once(tmp_path: Path, es_url: str, es_prefix: str) -> None:
    (tmp_path / "rule.yml").write_text(RULE)
    store = ElasticsearchStore(es_url, ElasticsearchSettings(index_prefix=es_prefix))
    store.write_events([firewall_event(27, "198.51.100.9"), firewall_event(28, "198.51.100.9"),
                        firewall_event(29, "198.51.100.8"), firewall_event(29, "198.51.100.8", port=443),
                        firewall_event(29, "198.51.100.8", action="accept"),
                        firewall_event(2, "198.51.100.7")])  # older than the look-back
    settings = Settings(base_dir=tmp_path)
    job = ScheduledSigma(name="fw", rules=["rule.yml"], every_minutes=5, lookback_minutes=15)
    detections = ScheduledDetections(settings, store, job)

    first = detections.run_once(NOW)
    assert first.hits == 3
    counts = sorted((a.ecs["source"]["ip"], a.count) for a in first.alerts)
    assert counts == [("198.51.100.8", 1), ("198.51.100.9", 2)]
    assert all(a.rule.ruleset == "sigma" and [t.id for t in a.techniques] == ["T1046"] for a in first.alerts)

    again = detections.run_once(NOW)  # the next run looks back over the same events
    assert again.hits == 3
    assert store.count() == 2
    assert sorted((a.ecs["source"]["ip"], a.count) for a in again.alerts) == counts

    store.write_events([firewall_event(31, "198.51.100.9")])
    later = detections.run_once(datetime(2026, 11, 25, 10, 35, tzinfo=UTC))
    assert dict((a.ecs["source"]["ip"], a.count) for a in later.alerts)["198.51.100.9"] == 3
    assert store.count() == 2
    store.close()
