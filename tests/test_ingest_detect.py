"""`soc ingest`: log files through the Sigma rules into the store, the offline twin of `soc replay`."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import SHARED
from .test_cli import soc, stored

LSASS_DUMP = SHARED / "evtx" / "Credential Access" / "sysmon_rdrleakdiag_lsass_dump.evtx"


def test_evtx_through_sigmahq_windows_rules(tmp_path: Path) -> None:
    (tmp_path / "soc.yaml").write_text(f"sigma:\n  rules: [{SHARED / 'sigma' / 'rules' / 'windows'}]\n")
    result = soc("ingest", str(LSASS_DUMP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    docs = stored(tmp_path)
    names = {d["rule"]["name"] for d in docs}
    assert "Process Memory Dump via RdrLeakDiag.EXE" in names
    assert "Potential Credential Dumping Via LSASS Process Clone" in names
    dump = next(d for d in docs if d["rule"]["name"] == "Process Memory Dump via RdrLeakDiag.EXE")
    assert dump["rule"]["ruleset"] == "sigma"
    assert dump["host"]["name"] == "DESKTOP-PIU87N6"
    assert all(d["soc"]["alert"]["evidence"]["events"] for d in docs)

    again = soc("ingest", str(LSASS_DUMP), cwd=tmp_path)  # Sigma alerts are grouped: a repeat is counted
    assert again.returncode == 0
    counts = {d["rule"]["name"]: d["soc"]["alert"]["count"] for d in stored(tmp_path)}
    first = {d["rule"]["name"]: d["soc"]["alert"]["count"] for d in docs}
    assert counts == {name: 2 * n for name, n in first.items()}


def test_parse_only_opens_no_store(tmp_path: Path) -> None:
    result = soc("ingest", "--no-detect", str(LSASS_DUMP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "soc.db").exists()


def test_events_can_be_stored_too(tmp_path: Path) -> None:
    (tmp_path / "soc.yaml").write_text("sigma:\n  rules: []\n")
    result = soc("ingest", "--events", str(LSASS_DUMP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import sqlite3

    rows = sqlite3.connect(tmp_path / "soc.db").execute("SELECT doc FROM events").fetchall()
    assert rows and all(json.loads(r[0])["soc"]["logsource"]["product"] == "windows" for r in rows)
