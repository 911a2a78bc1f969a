"""Alert handling, playbooks, incidents, exports and scheduled jobs on a real alert from a shared capture."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from soc.alerts.handling import AlertHandler
from soc.audit import AuditLog
from soc.audit.export import export_history
from soc.core.config import Settings
from soc.core.errors import SocError
from soc.core.model import Alert, AlertStatus, Rule, Severity
from soc.engine.sources import replay_files
from soc.incidents import Incidents
from soc.jobs import REPORT_KIND, daily_summary, retention
from soc.response import PlaybookEngine, PlaybookError, load_playbooks
from soc.response.playbook import load_playbook
from soc.store import AlertQuery
from soc.store.sqlite import SqliteStore
from soc.triage import Triage

from .conftest import ATTACKS, REPO

SYNSCAN = ATTACKS / "chrissanders__synscan.pcapng"
SCANNER, TARGET = "172.16.0.8", "64.13.134.52"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    with socket.socket() as probe:  # aiosmtpd checks its own port once started, so it needs a real one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, mailbox
    controller.stop()


def settings_for(tmp_path: Path, smtp_port: int | None = None, **response: Any) -> Settings:
    data: dict[str, Any] = {
        "inventory": [{"name": "cong-thong-tin", "owner": "so-tttt", "contact": "owner@so-tttt.example",
                       "security_level": 3, "addresses": [f"{TARGET}/32"], "hosts": ["portal.example"]}],
        "playbooks": [str(REPO / "playbooks")],
        "response": {"reporting_organisation": "Trung tam giam sat", **response},
        "base_dir": tmp_path,
    }
    if smtp_port:
        data["response"]["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "sender": "soc@example"}
    return Settings.model_validate(data)


def replay_synscan(settings: Settings, store: SqliteStore) -> Alert:
    [alert] = replay_files(settings, store, [SYNSCAN]).alerts
    return alert


def test_playbook_runs_to_the_approval_gate_then_on(tmp_path: Path, smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    settings = settings_for(tmp_path, controller.port)
    store = SqliteStore(tmp_path / "soc.db")
    alert = replay_synscan(settings, store)
    assert (alert.system, alert.system_level, alert.severity) == ("cong-thong-tin", 3, Severity.HIGH)
    assert alert.risk_score == 48.0  # high (4/5) x level 3 (3/5) x 100

    engine = PlaybookEngine(settings, store, load_playbooks([REPO / "playbooks"]))
    [run] = engine.start_all(alert, "soc engine")
    assert run["playbook"] == "playbook--port-scan"
    assert [(s["id"], s["status"]) for s in run["steps"]] == [("look-up", "done"), ("tell-owner", "done")]
    assert run["status"] == "waiting_approval"  # block-scanner disrupts service: it waits for a person
    look_up = run["steps"][0]["output"]
    assert look_up["owner"] == "so-tttt" and look_up["system"]["name"] == "cong-thong-tin"
    [mail] = mailbox.messages
    assert mail["To"] == "owner@so-tttt.example"
    assert mail["Subject"] == "[soc] high: Port scan on cong-thong-tin"
    assert SCANNER in mail.get_payload()

    assert engine.start_all(alert, "soc engine")[0]["id"] == run["id"]  # the same alert never runs it twice
    assert len(mailbox.messages) == 1
    with pytest.raises(PlaybookError, match="not waiting for approval of step 'open-case'"):
        engine.approve(run["id"], "open-case", "lead")

    done = engine.approve(run["id"], "block-scanner", "lead")
    assert done["status"] == "done"
    block = next(s for s in done["steps"] if s["id"] == "block-scanner")
    assert block["output"] == {"action": "block_ip", "target": SCANNER, "dry_run": True,
                               "command": f"nft add element inet soc blocked {{ {SCANNER} }}"}
    incident_id = next(s for s in done["steps"] if s["id"] == "open-case")["output"]["incident_id"]
    stored = store.get(alert.id)
    assert stored is not None and stored.incident_id == incident_id
    actions = [(r["actor"], r["action"]) for r in AuditLog(store).records(f"alert:{alert.id}")]
    assert actions.index(("lead", "playbook.approved")) < actions.index(("lead", "playbook.step.contain"))
    assert ("soc engine", "playbook.waiting_approval") in actions
    assert AuditLog(store).verify().ok


def test_a_failed_step_stops_the_run_until_retried(tmp_path: Path, smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    settings = settings_for(tmp_path, smtp_port=1)  # nothing listens there: the e-mail step fails
    store = SqliteStore(tmp_path / "soc.db")
    alert = replay_synscan(settings, store)
    engine = PlaybookEngine(settings, store, load_playbooks([REPO / "playbooks"]))
    [run] = engine.start_all(alert, "soc engine")
    assert run["status"] == "failed"
    assert run["steps"][-1]["id"] == "tell-owner" and "refused" in run["steps"][-1]["error"].lower()
    engine.settings = settings_for(tmp_path, controller.port)  # the mail server is fixed
    retried = engine.retry(run["id"], "lead")
    assert retried["status"] == "waiting_approval" and len(mailbox.messages) == 1


def test_incident_report_and_history_export(tmp_path: Path, smtp: tuple[Controller, Mailbox]) -> None:
    settings = settings_for(tmp_path, smtp[0].port)
    store = SqliteStore(tmp_path / "soc.db")
    alert = replay_synscan(settings, store)
    Triage(store).acknowledge([alert.id], "lan")
    incidents = Incidents(store, settings)
    incident = incidents.open("Scan of the portal <script>alert(1)</script>", [alert.id], "lan")
    incidents.record_phase(incident.id, "contain", "minh", "blocked at the edge firewall")
    draft = incidents.report(incident.id, "initial", "lan")
    assert draft["system"] == {"name": "cong-thong-tin", "domains": ["portal.example"], "addresses": [TARGET],
                               "security_level": 3, "owner": "so-tttt"}
    assert draft["reporting_organisation"] == "Trung tam giam sat"
    assert draft["discovered_at"] == alert.first_seen
    incidents.close(incident.id, "minh", "scanner blocked")
    incidents.report(incident.id, "closing", "minh")

    exported = json.loads(export_history(incidents, AuditLog(store), None, None, "json", "auditor"))
    assert exported["audit_chain"]["verified"] is True
    [timeline] = exported["incidents"]
    milestones = {k: (v or {}).get("by") for k, v in timeline["milestones"].items()}
    assert milestones == {"detected": "soc engine", "acknowledged": "lan", "contained": "minh", "reported": "lan",
                          "closed": "minh"}
    # discovered in 2010 (the capture's time), reported today: the 5-day deadline was missed
    assert [(d["form"], d["met"]) for d in timeline["deadlines"]] == [("initial", False), ("closing", True)]

    rows = list(csv.DictReader(io.StringIO(export_history(incidents, AuditLog(store), None, None, "csv", "a"))))
    assert [r["milestone"] for r in rows] == ["detected", "acknowledged", "contained", "reported", "closed",
                                              "deadline:initial", "deadline:closing"]
    page = export_history(incidents, AuditLog(store), "2000-01-01", "2999-12-31", "html", "auditor")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "verified" in page
    exports = [r for r in AuditLog(store).records("audit:history") if r["action"] == "audit.exported"]
    assert [r["actor"] for r in exports] == ["auditor", "a", "auditor"]


def test_replaying_a_2000_packet_scan_twice_keeps_one_alert(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "soc.db")
    first = replay_synscan(settings, store)
    second = replay_synscan(settings, store)
    assert first.id == second.id and store.count() == 1
    [stored] = store.search(AlertQuery())
    assert stored.count == 1991  # probe flows of the window, not doubled by the second replay


def sigma_like(n: int, host: str = "ws-01") -> Alert:
    return Alert(rule=Rule("0d894093-71bc-43c3-8c4d-ecfc28dcf5d9", "Mimikatz use", "sigma"),
                 severity=Severity.HIGH, group_key=f"0d89|{host}", time_bucket=1,
                 first_seen=f"2026-11-25T01:00:{n:02d}.000000Z", last_seen=f"2026-11-25T01:00:{n:02d}.000000Z",
                 message="mimikatz", ecs={"host": {"name": host}}, evidence={"events": [f"record-{n}"]})


def test_per_event_alerts_are_grouped_with_a_count_across_restarts(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "soc.db")
    handler = AlertHandler(Settings(), store)
    written = handler.handle([sigma_like(n) for n in range(5)] + [sigma_like(9, host="ws-02")])
    store.write(written)
    assert sorted((a.ecs["host"]["name"], a.count) for a in written) == [("ws-01", 5), ("ws-02", 1)]
    again = AlertHandler(Settings(), store).handle([sigma_like(7)])  # a new process: the group is read back
    store.write(again)
    got = store.get(again[0].id)
    assert got is not None
    assert (got.count, got.first_seen, got.last_seen) == (6, sigma_like(0).first_seen, sigma_like(7).first_seen)
    assert got.evidence["events"] == [f"record-{n}" for n in (0, 1, 2, 3, 4, 7)]


def test_suppression_stops_repeats_and_expires(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "soc.db")
    rule = Triage(store).suppress({"source.ip": "172.16.0.0/24", "rule.id": "soc-net-portscan"},
                                  "authorised pentest", "lead", days=1)
    alert = replay_synscan(settings, store)
    assert alert.suppressed_by == rule.id
    assert store.search(AlertQuery()) == []  # out of the queue ...
    [kept] = store.search(AlertQuery(include_suppressed=True))  # ... but the evidence is kept
    assert kept.suppressed_by == rule.id
    assert AuditLog(store).records(f"suppression:{rule.id}")[0]["actor"] == "lead"

    later = datetime.now(tz=UTC) + timedelta(days=2)  # the suppression has expired by then
    handler = AlertHandler(settings, SqliteStore(tmp_path / "other.db"), now=later)
    handler._suppressions = Triage(store).suppressions()
    assert handler.handle([alert_copy(alert)])[0].suppressed_by is None


def alert_copy(alert: Alert) -> Alert:
    return Alert.from_ecs({**alert.to_ecs(), "soc": {**alert.to_ecs()["soc"], "alert": {
        **alert.to_ecs()["soc"]["alert"], "suppressed_by": None}}})


def test_scheduled_summary_and_retention(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "soc.db")
    alert = replay_synscan(settings, store)
    at_scan_time = datetime.fromisoformat(alert.first_seen.replace("Z", "+00:00")) + timedelta(hours=1)
    from soc import jobs as scheduler

    written = scheduler._summary(settings, store, "daily", 1, now=at_scan_time)
    [report] = [store.get_record(REPORT_KIND, r) for r in written["reports"]]
    assert report is not None
    assert (report["system"], report["alerts"], report["by_severity"]) == ("cong-thong-tin", 1, {"high": 1})
    assert daily_summary(settings, store)["reports"] == [f"daily-cong-thong-tin-{datetime.now(tz=UTC):%Y%m%d}"]

    result = retention(settings, store)  # the 2010 alert is far past the default 365 days
    assert (result["archived"], result["deleted"]) == (1, 1)
    assert store.count() == 0
    archived = [json.loads(line) for line in Path(result["archive"]).read_text().splitlines()]
    assert [a["event"]["id"] for a in archived] == [alert.id]
    assert AuditLog(store).records("alerts")[-1]["action"] == "retention.applied"


def test_shipped_playbooks_are_valid_and_cover_the_attack_classes() -> None:
    playbooks = {p.id: p for p in load_playbooks([REPO / "playbooks"])}
    assert set(playbooks) == {"playbook--port-scan", "playbook--ssh-brute-force", "playbook--c2-beaconing",
                              "playbook--data-exfiltration", "playbook--web-attack",
                              "playbook--linux-privilege-escalation"}
    contain_steps = [s for p in playbooks.values() for s in p.steps if s.type == "contain"]
    assert contain_steps and all(s.requires_approval for s in contain_steps)


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("id: playbook--x\nname: x\ntrigger: {}\nsteps:\n  - {id: a, type: notify, channel: email}\n", 5, "steps.0",
         "an email step needs 'to'"),
        ("id: playbook--x\nname: x\ntrigger: {}\nsteps:\n  - id: a\n    type: contain\n    requires_approval: false\n",
         5, "steps.0", "cannot run without approval"),
        ("id: playbook--x\nname: x\ntrigger: {}\nsteps:\n  - id: a\n    type: teleport\n", 5, "steps.0",
         "does not match any of the expected tags"),
        ("id: playbook--x\nname: x\ntrigger: {min_severity: urgent}\nsteps:\n  - {id: a, type: enrich}\n", 3,
         "trigger", "unknown severity"),
    ],
)
def test_playbook_errors_name_file_step_and_field(tmp_path: Path, text: str, line: int, key: str,
                                                  message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(SocError) as caught:
        load_playbook(path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (str(path), line, key)
    assert message in str(caught.value)


def test_closed_alerts_stay_closed_when_detected_again(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "soc.db")
    alert = replay_synscan(settings, store)
    from soc.core.model import Verdict

    Triage(store).close([alert.id], Verdict.FALSE_POSITIVE, "lan")
    replay_synscan(settings, store)
    got = store.get(alert.id)
    assert got is not None and got.status == AlertStatus.CLOSED


def test_webhook_notification_posts_the_alert(tmp_path: Path) -> None:
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "hook.yml").write_text(
        "id: playbook--hook\nname: hook\ntrigger: {rules: [soc-net-portscan]}\nsteps:\n"
        f"  - {{id: chat, type: notify, channel: webhook, url: 'http://127.0.0.1:{server.server_port}/soc'}}\n")
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "soc.db")
    alert = replay_synscan(settings, store)
    [run] = PlaybookEngine(settings, store, load_playbooks([playbooks])).start_all(alert, "soc engine")
    server.shutdown()
    assert run["status"] == "done" and run["steps"][0]["output"]["status"] == 204
    [payload] = received
    assert payload["alert"]["id"] == alert.id and payload["system"]["name"] == "cong-thong-tin"
    assert payload["subject"] == "[soc] high: Port scan on cong-thong-tin"
