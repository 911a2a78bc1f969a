"""Offline ingestion and bad input: malformed lines counted by reason with their offsets in the dead-letter file,
oversized lines cut and flagged, invalid UTF-8 replaced; the ``soc ingest`` command and its summary."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from collectors.logs.base import Diagnostics
from collectors.logs.ingest import ingest_paths
from collectors.logs.tail import FileSource
from soc.cli.logs import app

GOOD = b'10.0.0.5 - - [25/Nov/2026:07:43:26 +0000] "GET /a HTTP/1.1" 200 12 "-" "curl/8.5.0"\n'
SYSLOG = b"Nov 25 07:43:26 web01 app[7]: "


def test_bad_lines_are_counted_dead_lettered_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [
        SYSLOG + b"started\n",
        b"garbage line\n",
        b"\n",
        SYSLOG + b"caf\xe9 au lait\n",  # a Latin-1 byte: replaced, not fatal
        b"Nov 25 07:43:26 web01\n",  # header without program and message
        SYSLOG + b"x" * 3000 + b"\n",  # over the 1000-byte limit below: cut and flagged
        b"y" * 1500 + b"\n",  # over the limit and not syslog at all
        SYSLOG + b"last line without newline",
    ]
    log.write_bytes(b"".join(lines))
    offsets = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
    dead = tmp_path / "dead.jsonl"
    diag = Diagnostics(dead_letter=dead)
    events = list(FileSource(log, "syslog", diagnostics=diag, limit=1000, options={"year": 2026}))
    diag.close()
    assert [e["log"]["offset"] for e in events] == [offsets[0], offsets[3], offsets[5], offsets[7]]
    assert events[1]["message"] == "caf\ufffd au lait"
    assert events[2]["log"]["flags"] == ["truncated"]
    assert events[2]["message"] == "x" * (1000 - len(SYSLOG))
    assert events[3]["message"] == "last line without newline"
    assert all(e["log"]["file"]["path"] == str(log) for e in events)
    assert diag.stats.truncated == 2 and diag.stats.utf8_replaced == 1
    assert diag.stats.malformed == {"no_match": 2, "oversized": 1}
    assert diag.stats.skipped == {"blank": 1}
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [(r["reason"], r["offset"], r["source"]) for r in records] == [
        ("no_match", offsets[1], str(log)),
        ("no_match", offsets[4], str(log)),
        ("oversized", offsets[6], str(log)),
    ]
    assert records[0]["raw"] == "garbage line"
    assert records[2]["raw"] == "y" * 1000


def test_ingest_paths_mixes_evtx_and_text(evtx_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "access.log"
    text.write_bytes(GOOD * 3)
    diag = Diagnostics()
    events = list(ingest_paths([evtx_dir / "UACME_59_Sysmon.evtx", tmp_path], diagnostics=diag))
    assert len(events) == 10
    assert dict(diag.stats.events) == {"windows.sysmon": 7, "http.access": 3}
    assert dict(diag.stats.logsources) == {"windows/-/sysmon": 7, "-/webserver/-": 3}


def test_cli_ingest_summary_and_errors(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(
        "Nov 25 07:43:26 web01 sshd[1]: Failed password for root from 203.0.113.9 port 40022 ssh2\nnot a syslog line\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(log), "--dead-letter", str(tmp_path / "dead.jsonl")])
    assert result.exit_code == 0, result.output
    assert "system.auth" in result.output
    assert "linux/-/auth" in result.output
    assert "no_match" in result.output
    assert "1 events, 1 malformed" in result.output
    out = tmp_path / "events.jsonl"
    result = runner.invoke(app, ["ingest", str(log), "--format", "syslog", "--output", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text())["user"]["name"] == "root"
    missing = runner.invoke(app, ["ingest", str(tmp_path / "absent.log")])
    assert missing.exit_code == 2
    unknown = runner.invoke(app, ["ingest", str(log), "--format", "nope"])
    assert unknown.exit_code == 2
    assert "unknown log format" in unknown.output
    listing = runner.invoke(app, ["ingest", "--list-formats"])
    assert listing.exit_code == 0 and "suricata-eve" in listing.output
    assert runner.invoke(app, ["ingest"]).exit_code == 2
