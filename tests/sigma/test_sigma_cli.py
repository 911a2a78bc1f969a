"""``soc sigma match`` and ``soc rules check|convert`` through typer's test runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from soc.cli.sigma import register

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
RULES = Path(__file__).resolve().parents[2] / "rules"
LOG_CLEARED_RULE = SHARED / "sigma/rules/windows/builtin/security/win_security_audit_log_cleared.yml"
SECURITY_RULES = SHARED / "sigma/rules/windows/builtin/security"
LOG_CLEARED_EVTX = SHARED / "evtx/Defense Evasion/DE_1102_security_log_cleared.evtx"

app = typer.Typer()
register(app)
runner = CliRunner()


def test_match_evtx() -> None:
    result = runner.invoke(app, ["sigma", "match", "--rules", str(SECURITY_RULES), str(LOG_CLEARED_EVTX)])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(m["rule"]["id"], m["rule"]["title"], m["rule"]["level"]) for m in lines] == [
        ("d99b79d2-0a6f-4f46-ad8b-260b6e17f982", "Security Eventlog Cleared", "high")
    ]
    assert lines[0]["rule"]["tags"] == ["attack.defense-impairment", "attack.t1685.005", "car.2016-04-002"]
    assert lines[0]["event"]["winlog"]["record_id"] == 452811
    assert "112 events, 1 matches" in result.stderr.replace("\n", " ")


def test_match_jsonl_with_bad_lines_and_correlations(tmp_path: Path) -> None:
    events = tmp_path / "auth.jsonl"
    good = {
        "@timestamp": "2026-11-25T07:00:00Z",
        "event": {"action": "ssh_login", "outcome": "failure"},
        "source": {"ip": "10.0.0.5"},
        "user": {"name": "root"},
    }
    lines = [json.dumps({**good, "@timestamp": f"2026-11-25T07:00:{i:02d}Z"}) for i in range(10)]
    lines.insert(3, "{not json")
    lines.insert(5, "[1, 2]")
    events.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app, ["sigma", "match", "--rules", str(RULES), "--product", "linux", "--service", "auth", str(events)]
    )
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    titles = [m["rule"]["title"] for m in out]
    assert titles == ["SSH Failed Login"] * 10 + ["SSH Brute Force From One Source"]
    assert out[-1]["correlation"]["soc"]["alert"]["count"] == 10
    err = result.stderr.replace("\n", " ")
    assert f"{events}:4: not JSON" in err
    assert f"{events}:6: a JSON list, not an event object" in err


def test_match_stdin() -> None:
    event = {
        "winlog": {"event_id": 1102, "provider_name": "Microsoft-Windows-Eventlog", "channel": "Security"},
        "soc": {"logsource": {"product": "windows", "service": "security"}},
    }
    result = runner.invoke(app, ["sigma", "match", "--rules", str(LOG_CLEARED_RULE), "-"],
                           input=json.dumps(event) + "\n")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["rule"]["title"] for line in result.stdout.splitlines()] == ["Security Eventlog Cleared"]


def test_match_unknown_pipeline() -> None:
    result = runner.invoke(app, ["sigma", "match", "--rules", str(RULES), "--pipeline", "nope", "-"], input="")
    assert result.exit_code == 2
    assert "unknown pipeline 'nope'" in result.stderr


def test_rules_check_counts_by_reason() -> None:
    placeholder = SHARED / "sigma/rules-placeholder/windows/builtin/security"
    result = runner.invoke(app, ["rules", "check", str(RULES), str(placeholder)])
    assert result.exit_code == 1
    assert "not loaded: placeholder" in result.stdout and "│    10 │" in result.stdout
    assert "win_security_admin_logon.yml" in result.stderr and "%Admins_Workstations%" in result.stderr


def test_rules_check_clean() -> None:
    result = runner.invoke(app, ["rules", "check", str(RULES)])
    assert result.exit_code == 0
    assert "correlations loaded" in result.stdout


def test_rules_convert_targets() -> None:
    queries = {}
    for target in ("lucene", "eql", "esql"):
        result = runner.invoke(app, ["rules", "convert", "--target", target, str(LOG_CLEARED_RULE)])
        assert result.exit_code == 0, result.stderr
        (line,) = result.stdout.splitlines()
        queries[target] = json.loads(line)["query"]
    assert queries == {
        "lucene": "(winlog.event_id:517 AND winlog.provider_name:Security) OR "
        "(winlog.event_id:1102 AND winlog.provider_name:Microsoft\\-Windows\\-Eventlog)",
        "eql": 'any where (winlog.event_id:517 and winlog.provider_name:"Security") or '
        '(winlog.event_id:1102 and winlog.provider_name:"Microsoft-Windows-Eventlog")',
        "esql": 'from * metadata _id, _index, _version | where winlog.event_id==517 and '
        'winlog.provider_name=="Security" or winlog.event_id==1102 and '
        'winlog.provider_name=="Microsoft-Windows-Eventlog"',
    }


def test_rules_convert_correlations_report_what_a_target_lacks() -> None:
    result = runner.invoke(app, ["rules", "convert", "--target", "lucene", str(RULES)])
    assert result.exit_code == 1
    assert "5 rules not converted (NotImplementedError: 5)" in result.stderr.replace("\n", " ")
    result = runner.invoke(app, ["rules", "convert", "--target", "esql", str(RULES)])
    assert len(result.stdout.splitlines()) == 4  # temporal_ordered has no ES|QL form
    assert "temporal_ordered" in result.stderr


def test_rules_convert_bad_target() -> None:
    result = runner.invoke(app, ["rules", "convert", "--target", "splunk", str(RULES)])
    assert result.exit_code == 2


def _engine_and_parser(rule: str, parser: str) -> tuple[Any, Callable[[str], Any]]:
    """A SigmaEngine with one SigmaHQ rule (a path under ``rules/``) and one of our log parsers."""
    from collectors.logs.parsers import get_parser
    from detectors.sigma import SigmaEngine

    return SigmaEngine.from_paths([SHARED / "sigma" / "rules" / rule]), get_parser(parser).parse


def test_sshd_lines_reach_sigmahq_rules_written_for_service_sshd() -> None:
    """Our parsers give Linux auth lines one log source (linux/auth); SigmaHQ's sshd rules name service sshd."""
    engine, parse = _engine_and_parser("linux/builtin/sshd/lnx_sshd_susp_ssh.yml", "syslog")
    hit = parse("<38>1 2026-11-25T10:00:00Z web01 sshd 42 - - error: Corrupted MAC on input. [preauth]")
    miss = parse("<38>1 2026-11-25T10:00:00Z web01 sudo 42 - - error: Corrupted MAC on input.")
    assert [a.rule.name for a in engine.process(hit)] == ["Suspicious OpenSSH Daemon Error"]
    assert engine.process(miss) == []


def test_auditd_records_reach_sigmahq_auditd_rules() -> None:
    """SigmaHQ's auditd rules name the record's raw keys (type, a0, ...); the auditd parser keeps them under
    auditd.log.*: the soc pipeline maps one to the other."""
    engine, parse = _engine_and_parser("linux/auditd/execve/lnx_auditd_chattr_immutable_removal.yml", "auditd")
    hit = parse('type=EXECVE msg=audit(1732528800.123:456): argc=3 a0="chattr" a1="-i" a2="/etc/passwd"')
    miss = parse('type=EXECVE msg=audit(1732528800.123:457): argc=3 a0="chattr" a1="+i" a2="/etc/passwd"')
    assert [a.rule.name for a in engine.process(hit)] == ["Remove Immutable File Attribute - Auditd"]
    assert engine.process(miss) == []
