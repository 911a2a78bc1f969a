"""Our correlation rules in rules/ on streams with known answers (sshd lines parsed by the real syslog parser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import collectors.logs.parsers.linux  # noqa: F401  (registers the sshd handler)
from collectors.logs.parsers.base import get_parser
from detectors.sigma import RuleSet, SigmaEngine
from soc.core.model import Alert

RULES = Path(__file__).resolve().parents[2] / "rules"
T0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)

BRUTE = "SSH Brute Force From One Source"
THEN_SUCCESS = "SSH Brute Force Followed By Successful Login"
SPRAY = "SSH Password Spraying From One Source"
MANY_HOSTS = "SSH Account Failing On Many Hosts"
WIN_MANY_HOSTS = "Windows Account Failing On Many Hosts"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    ruleset = RuleSet.from_paths([RULES])
    assert ruleset.report.problems == []
    return ruleset


def engine(ruleset: RuleSet, **options: int) -> SigmaEngine:
    return SigmaEngine(ruleset.rules, ruleset.correlations, **options)


def ssh(seconds: float, text: str, host: str = "web01") -> dict[str, Any]:
    stamp = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return get_parser("syslog").parse(f"<38>1 {stamp} {host} sshd 42 - - {text}")


def failed(seconds: float, user: str = "root", ip: str = "10.0.0.5", host: str = "web01") -> dict[str, Any]:
    return ssh(seconds, f"Failed password for {user} from {ip} port 51234 ssh2", host)


def accepted(seconds: float, user: str = "root", ip: str = "10.0.0.5") -> dict[str, Any]:
    return ssh(seconds, f"Accepted password for {user} from {ip} port 51234 ssh2")


def run(eng: SigmaEngine, events: list[dict[str, Any]]) -> list[Alert]:
    return [alert for event in events for alert in eng.process(event)]


def test_bruteforce_then_success(ruleset: RuleSet) -> None:
    events = [failed(10 * i) for i in range(12)] + [accepted(180)]
    alerts = run(engine(ruleset), events)
    assert [a.rule.name for a in alerts] == [BRUTE, THEN_SUCCESS]
    brute, then = alerts
    assert brute.count == 10
    assert brute.group_key == "source.ip=10.0.0.5"
    assert brute.ecs == {"source": {"ip": "10.0.0.5"}}
    assert [e["timestamp"] for e in brute.evidence["events"]] == [
        f"2026-11-25T07:{10 * i // 60:02d}:{10 * i % 60:02d}.000000Z" for i in range(10)
    ]
    assert brute.first_seen == "2026-11-25T07:00:00.000000Z" and brute.last_seen == "2026-11-25T07:01:30.000000Z"
    assert [t.id for t in brute.techniques] == ["T1110.001"]
    assert brute.techniques[0].tactic_id == "TA0006"
    assert then.severity.label == "high"
    # the chain: the brute-force alert, then the successful login
    assert [e["rule_id"] for e in then.evidence["events"]] == [
        "b6e92c17-a4cb-4b13-a9d5-46c802f21124",
        "0db93088-2a18-41e5-9dfd-44643a2c7057",
    ]
    assert then.evidence["events"][0]["id"] == brute.id
    assert then.last_seen == "2026-11-25T07:03:00.000000Z"


def test_success_before_bruteforce_is_not_a_chain(ruleset: RuleSet) -> None:
    events = [accepted(0)] + [failed(10 + i) for i in range(10)]
    assert [a.rule.name for a in run(engine(ruleset), events)] == [BRUTE]


def test_nine_failures_then_success_is_quiet(ruleset: RuleSet) -> None:
    events = [failed(10 * i) for i in range(9)] + [accepted(100)]
    assert run(engine(ruleset), events) == []


def test_failures_spread_beyond_the_timespan_are_quiet(ruleset: RuleSet) -> None:
    events = [failed(40 * i) for i in range(20)]  # never ten inside five minutes (8 per 5 min)
    assert run(engine(ruleset), events) == []


def test_sources_are_counted_apart(ruleset: RuleSet) -> None:
    events = [failed(i, ip=f"10.0.0.{i % 2 + 1}") for i in range(18)]  # 9 each
    assert run(engine(ruleset), events) == []


def test_password_spray(ruleset: RuleSet) -> None:
    events = [failed(i, user=f"user{i}", ip="10.9.9.9") for i in range(10)]
    alerts = run(engine(ruleset), events)
    assert sorted(a.rule.name for a in alerts) == [BRUTE, SPRAY]
    spray = next(a for a in alerts if a.rule.name == SPRAY)
    assert spray.count == 10 and spray.evidence["correlation"] == "value_count"


def test_repeated_user_is_not_spraying(ruleset: RuleSet) -> None:
    events = [failed(i, user=f"user{i % 9}", ip="10.9.9.9") for i in range(9)]
    assert run(engine(ruleset), events) == []


def test_account_failing_on_many_hosts(ruleset: RuleSet) -> None:
    events = [failed(60 * i, user="svc_backup", ip=f"10.1.0.{i}", host=f"db{i % 5}") for i in range(7)]
    alerts = run(engine(ruleset), events)
    assert [a.rule.name for a in alerts] == [MANY_HOSTS]
    assert alerts[0].count == 5
    assert alerts[0].group_key == "user.name=svc_backup"


def windows_failure(seconds: float, user: str, computer: str) -> dict[str, Any]:
    """A Security 4625 in the layout of collectors/logs/evtx.py."""
    return {
        "@timestamp": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "event": {"code": "4625"},
        "winlog": {
            "channel": "Security",
            "event_id": 4625,
            "computer_name": computer,
            "event_data": {"TargetUserName": user, "LogonType": "3", "IpAddress": "10.2.0.1"},
        },
        "host": {"name": computer},
        "soc": {"logsource": {"product": "windows", "category": None, "service": "security"}},
    }


def test_windows_account_failing_on_many_hosts(ruleset: RuleSet) -> None:
    eng = engine(ruleset)
    noise = [windows_failure(i, "alice", "PC01") for i in range(20)]  # many failures, one host
    spread = [windows_failure(100 + 30 * i, "Administrator", f"SRV{i:02d}") for i in range(5)]
    alerts = run(eng, noise + spread)
    assert [a.rule.name for a in alerts] == [WIN_MANY_HOSTS]
    assert alerts[0].ecs == {"winlog": {"event_data": {"TargetUserName": "Administrator"}}}
    assert alerts[0].count == 5


def test_windows_hosts_outside_window_do_not_count(ruleset: RuleSet) -> None:
    spread = [windows_failure(300 * i, "Administrator", f"SRV{i:02d}") for i in range(5)]  # 20 min span
    assert run(engine(ruleset), spread) == []


def test_state_is_bounded(ruleset: RuleSet) -> None:
    eng = engine(ruleset, max_groups=3)
    events = [failed(i, ip=f"10.3.0.{i}") for i in range(50)]  # 50 sources, one failure each
    assert run(eng, events) == []
    sizes = {cid: len(groups) for cid, groups in eng.correlation._groups.items()}
    assert max(sizes.values()) <= 3
    assert eng.correlation.stats["evicted_groups"] > 0
