"""Posture of systems evaluated on real alerts (a shared port-scan capture replayed through the pipeline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soc.audit import AuditLog
from soc.core.config import Settings
from soc.core.model import Verdict
from soc.engine.sources import replay_files
from soc.incidents import PHASES, Incidents
from soc.jobs import EXTRA_JOBS, daily_summary, weekly_report
from soc.posture import (
    REPORT_KIND,
    SCORE_KIND,
    PostureError,
    PostureEvaluator,
    load_profile,
    profile_names,
    weekly_posture_reports,
)
from soc.posture.checks import parse_time
from soc.store.base import AlertQuery
from soc.store.sqlite import SqliteStore
from soc.triage import Triage

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SYNSCAN = SHARED / "pcaps" / "attacks" / "chrissanders__synscan.pcapng"
TARGET = "64.13.134.52"


def settings_for(tmp_path: Path, profile: str = "vn-decree85-2016", **portal: Any) -> Settings:
    return Settings.model_validate({
        "inventory": [
            {"name": "cong-dich-vu", "owner": "so-tttt", "security_level": 3, "addresses": [f"{TARGET}/32"],
             "description": "the province's online public service portal", "approved_by": "UBND tinh",
             "approved_on": "2025-03-14", "last_assessment": "2026-01-10", "retention_days": 60, **portal},
            {"name": "csdl-tai-chinh", "owner": "so-tai-chinh", "security_level": 2,
             "description": "holds personal data of taxpayers", "addresses": ["10.20.5.0/24"]},
        ],
        "response": {"profile": profile},
        "base_dir": tmp_path,
    })


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the real alert of the capture; each test works on its own copy."""
    folder = tmp_path_factory.mktemp("replayed")
    store = SqliteStore(folder / "soc.db")
    [alert] = replay_files(settings_for(folder), store, [SYNSCAN]).alerts
    assert alert.system == "cong-dich-vu"
    store.close()
    return folder / "soc.db"


@pytest.fixture
def store(replayed: Path, tmp_path: Path) -> SqliteStore:
    copy = tmp_path / "soc.db"
    copy.write_bytes(replayed.read_bytes())
    return SqliteStore(copy)


def by_id(posture: Any) -> dict[str, tuple[str, str]]:
    return {c.id: (c.status, c.reason) for c in posture.checks}


def test_profiles_are_data_with_sources() -> None:
    assert profile_names() == ["vn-decree331-2026", "vn-decree85-2016"]
    old, new = load_profile("vn-decree85-2016"), load_profile("vn-decree331-2026")
    assert [c.id for c in old.checks] == ["C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9"]
    assert all(c.source for c in old.checks + new.checks)
    assert {c.id: c.source for c in new.checks}["C8"] == "Decree 331/2026/ND-CP art. 31"
    assert {c.id: c.params for c in new.checks}["C7"] == {"min_days": {2: 30, 3: 90, 4: 180, 5: 365}}
    with pytest.raises(PostureError, match="no posture profile 'vn-decree1-1999'"):
        load_profile("vn-decree1-1999")


def test_posture_of_the_scanned_system(store: SqliteStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, last_assessment="2009-12-01")
    evaluator = PostureEvaluator(settings, store)
    now = datetime(2010, 7, 5, 8, 0, tzinfo=UTC)  # the morning after the capture
    portal, finance = evaluator.evaluate(now=now)
    assert by_id(portal) == {
        "C1": ("pass", "level 3 approved by UBND tinh on 2025-03-14"),
        "C2": ("pass", "nothing in the inventory calls for more than level 3"),
        "C4": ("pass", "last assessed on 2009-12-01, 216 days ago (at most 365)"),
        "C5": ("fail", "not seen within 24 h: web server logs, firewall logs"),
        "C6": ("fail", "no daily report produced; no weekly report produced"),
        "C7": ("fail", "alerts kept 60 days, configured for the system; level 3 needs 90"),
        "C8": ("pass", "0 incident(s), no reporting deadline missed"),
        "C9": ("pass", "0 closed incident(s), each with every response phase recorded"),
    }
    assert portal.score == 62  # 5 of 8
    assert portal.reasons[0] == "C5 Central monitoring: not seen within 24 h: web server logs, firewall logs"
    assert portal.open_alerts == {"high": 1}
    # the capture's last packet (the replay counted every flow of the portal) is later than the alert's last probe
    assert portal.coverage["network"] == {"events": 1994, "alerts": 1, "detections": 1991,
                                          "last_seen": "2010-07-04T20:24:39.360213Z"}
    assert portal.coverage["web server logs"] == {"events": 0, "alerts": 0, "detections": 0, "last_seen": None}
    assert portal.alerts_by_day == [("2010-07-04", 1)]
    # level 2 with personal data: C4, C5, C6 do not apply; the level fits (personal data needs 2)
    assert {k: v[0] for k, v in by_id(finance).items()} == {
        "C1": "fail", "C2": "pass", "C4": "not_applicable", "C5": "not_applicable", "C6": "not_applicable",
        "C7": "pass", "C8": "pass", "C9": "pass"}
    assert by_id(finance)["C1"][1] == "level 2 is recorded without approving body and approval date"
    assert finance.score == 80 and finance.open_alerts == {} and finance.coverage["network"]["alerts"] == 0


def test_level_must_fit_and_retention_depends_on_the_profile(store: SqliteStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "vn-decree331-2026", security_level=2, retention_days=20)
    [portal] = PostureEvaluator(settings, store).evaluate(["cong-dich-vu"])
    checks = by_id(portal)
    assert checks["C2"] == ("fail", "an online public service or province-wide shared infrastructure must be at "
                                    "least level 3, this one is level 2")
    assert checks["C7"] == ("fail", "alerts kept 20 days, configured for the system; level 2 needs 30")
    with pytest.raises(PostureError, match="no system 'nope' in the inventory"):
        PostureEvaluator(settings, store).evaluate(["nope"])


def test_reports_response_times_incidents_and_trend(store: SqliteStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    now = datetime.now(tz=UTC)
    daily_summary(settings, store)
    weekly_report(settings, store)
    [alert] = store.search(AlertQuery())
    triage = Triage(store)
    triage.acknowledge([alert.id], "an")
    incidents = Incidents(store, settings)
    incident = incidents.open("Port scan on the portal", [alert.id], "an")
    for phase in list(PHASES)[:3]:
        incidents.record_phase(incident.id, phase, "an")
    incidents.close(incident.id, "lead", "scan blocked")
    triage.close([alert.id], Verdict.TRUE_POSITIVE, "an")

    evaluator = PostureEvaluator(settings, store)
    portal, _ = evaluator.record_scores(now)
    checks = by_id(portal)
    assert checks["C6"] == ("pass", "daily and weekly reports produced; data kept 60 days")
    assert checks["C8"][0] == "fail" and f"{incident.id} initial report" in checks["C8"][1]
    assert checks["C9"] == ("fail", f"closed without every response phase: {incident.id} lacks direction, report, "
                                    "contain, recover, review")
    assert portal.open_alerts == {}
    assert portal.incidents == [{"id": incident.id, "title": "Port scan on the portal", "status": "closed",
                                 "discovered_at": alert.first_seen}]
    trail = AuditLog(store).records(f"alert:{alert.id}")
    acked = next(r for r in trail if r["action"] == "alert.acknowledged")
    closed = next(r for r in trail if r["action"] == "alert.closed")
    hours = lambda r: round((parse_time(r["at"]) - parse_time(alert.created_at)).total_seconds() / 3600, 2)  # noqa: E731
    assert portal.time_to_acknowledge == {"this_month": hours(acked), "last_month": None}
    assert portal.time_to_resolve == {"this_month": hours(closed), "last_month": None}
    day = now.date().isoformat()
    assert store.get_record(SCORE_KIND, f"cong-dich-vu-{day}") == {
        "system": "cong-dich-vu", "date": day, "score": portal.score, "profile": "vn-decree85-2016",
        "failed": [c.id for c in portal.checks if c.status == "fail"]}
    [again] = evaluator.evaluate(["cong-dich-vu"], now)
    assert again.trend == [{"date": day, "score": portal.score}]


def test_weekly_html_report_is_a_scheduled_job(store: SqliteStore, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, description="<script>alert(1)</script>", owner="<b>so</b>")
    assert EXTRA_JOBS["posture-report"].run is weekly_posture_reports
    result = weekly_posture_reports(settings, store, datetime(2026, 11, 23, 7, 15, tzinfo=UTC))
    assert result == {"reports": ["cong-dich-vu-20261123", "csdl-tai-chinh-20261123"]}
    html = store.get_record(REPORT_KIND, "cong-dich-vu-20261123")["html"]  # type: ignore[index]
    assert "<h1>Posture of cong-dich-vu</h1>" in html
    assert "Owner: &lt;b&gt;so&lt;/b&gt;" in html and "<b>so</b>" not in html
    assert "<svg class=\"chart\"" in html and "2010-07-04: 1" in html
    assert AuditLog(store).records("reports")[-1]["action"] == "report.posture"


def test_posture_and_users_commands(store: SqliteStore, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from soc.cli.main import app

    config = tmp_path / "soc.yaml"
    config.write_text(json.dumps({**settings_for(tmp_path).model_dump(mode="json"),
                                  "store": {"url": f"sqlite:///{tmp_path / 'soc.db'}"}}), encoding="utf-8")
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["posture", "--config", str(config), "--system", "cong-dich-vu", "--json"])
    assert result.exit_code == 0, result.output
    [portal] = json.loads(result.stdout)
    assert (portal["system"], portal["open_alerts"]) == ("cong-dich-vu", {"high": 1})
    assert {c["id"]: c["status"] for c in portal["checks"]}["C7"] == "fail"
    result = runner.invoke(app, ["posture", "--config", str(config), "--system", "nope"])
    assert result.exit_code == 1 and "no system 'nope' in the inventory" in result.stderr
    result = runner.invoke(app, ["users", "add", "chu", "--role", "owner", "--systems", "cong-dich-vu",
                                 "--password-stdin", "--config", str(config)], input="a long password\n")
    assert result.exit_code == 0 and "user chu (owner) added" in result.stdout
    result = runner.invoke(app, ["users", "add", "chu2", "--role", "owner", "--password-stdin", "--config",
                                 str(config)], input="a long password\n")
    assert result.exit_code == 1 and "a system owner needs at least one system" in result.stderr
    reopened = SqliteStore(tmp_path / "soc.db")
    user = reopened.get_record("user", "chu")
    assert user is not None and user["systems"] == ["cong-dich-vu"] and user["password_hash"].startswith("$argon2id$")
    assert "a long password" not in json.dumps(user)
    assert AuditLog(reopened).records("user:chu")[0]["action"] == "user.added"
