"""The `soc` command as a user runs it: replay real captures, read alerts back, bad input, store outages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ATTACKS, REPO

SYNSCAN = ATTACKS / "chrissanders__synscan.pcapng"
NMAP = ATTACKS / "esnet-security__nmap_80_all.pcap"


def soc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soc.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def stored(cwd: Path, *store: str) -> list[dict]:
    listed = soc("alerts", "list", "--json", *store, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_replay_names_the_scanners_and_alerts_read_back(tmp_path: Path) -> None:
    result = soc("replay", str(SYNSCAN), str(NMAP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Port scan" in result.stdout and "172.16.0.8" in result.stdout and "10.87.1.10" in result.stdout
    assert (tmp_path / "soc.db").exists()  # the embedded default store, no server
    docs = stored(tmp_path)
    assert sorted(d["source"]["ip"] for d in docs) == ["10.87.1.10", "172.16.0.8"]
    assert {d["rule"]["id"] for d in docs} == {"soc-net-portscan"}
    assert all(d["event"]["kind"] == "alert" and d["threat"]["technique"]["id"] == ["T1046"] for d in docs)

    high = stored(tmp_path, "--severity", "high")
    assert [d["source"]["ip"] for d in high] == ["172.16.0.8"]
    shown = soc("alerts", "show", high[0]["event"]["id"], cwd=tmp_path)
    assert shown.returncode == 0
    assert "evidence.distinct_ports" in shown.stdout and "997" in shown.stdout

    again = soc("replay", str(SYNSCAN), cwd=tmp_path)  # the same capture again: the same alert, not a second
    assert again.returncode == 0
    assert len(stored(tmp_path)) == 2


def test_alert_names_the_information_system_from_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "soc.yaml").write_text(
        "inventory:\n  - {name: cong-web, owner: web-team, security_level: 3, addresses: [130.211.223.0/24]}\n")
    assert soc("replay", str(NMAP), cwd=tmp_path).returncode == 0
    [doc] = stored(tmp_path)
    assert doc["soc"]["system"] == {"name": "cong-web", "security_level": 3}


def test_truncated_capture_reports_offset_and_keeps_earlier_alerts(tmp_path: Path) -> None:
    damaged = tmp_path / "synscan-cut.pcapng"
    data = SYNSCAN.read_bytes()
    damaged.write_bytes(data[: len(data) * 3 // 4])
    result = soc("replay", str(damaged), cwd=tmp_path)
    assert result.returncode == 1
    assert str(damaged) in result.stderr and "byte offset" in result.stderr
    [doc] = stored(tmp_path)
    assert doc["source"]["ip"] == "172.16.0.8"


def test_missing_and_foreign_files_are_errors(tmp_path: Path) -> None:
    missing = soc("replay", str(tmp_path / "absent.pcap"), cwd=tmp_path)
    assert missing.returncode == 1 and "absent.pcap" in missing.stderr and "no such file" in missing.stderr
    foreign = soc("replay", str(REPO / "pyproject.toml"), cwd=tmp_path)
    assert foreign.returncode == 1 and "not a pcap or pcapng file" in foreign.stderr


def test_config_check(tmp_path: Path) -> None:
    good = soc("config", "check", str(REPO / "soc.example.yaml"), cwd=tmp_path)
    assert good.returncode == 0 and "valid" in good.stdout
    (tmp_path / "bad.yaml").write_text("store:\n  url: sqlite:///x.db\n  colour: blue\n")
    bad = soc("config", "check", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert "bad.yaml:3" in bad.stderr and "store.colour" in bad.stderr


def test_bad_severity_is_a_usage_error(tmp_path: Path) -> None:
    result = soc("alerts", "list", "--severity", "urgent", cwd=tmp_path)
    assert result.returncode == 2 and "unknown severity" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def es_config(path: Path, url: str, prefix: str, timeout: float = 60) -> Path:
    path.write_text(f"store:\n  url: {url}\n  elasticsearch: {{index_prefix: {prefix}, request_timeout: {timeout},"
                    " max_retries: 0}\n")
    return path


def test_replay_into_elasticsearch_gives_the_same_alerts(tmp_path: Path, es_url: str, es_prefix: str) -> None:
    assert soc("replay", str(SYNSCAN), str(NMAP), cwd=tmp_path).returncode == 0
    config = es_config(tmp_path / "es.yaml", es_url, es_prefix)
    result = soc("replay", "--config", str(config), str(SYNSCAN), str(NMAP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    in_es = stored(tmp_path, "--config", str(config))
    assert sorted(d["event"]["id"] for d in in_es) == sorted(d["event"]["id"] for d in stored(tmp_path))
    from elasticsearch import Elasticsearch

    indices = Elasticsearch(es_url).indices.get(index=f"{es_prefix}-alerts-*")
    assert sorted(indices) == [f"{es_prefix}-alerts-2010.07", f"{es_prefix}-alerts-2020.08"]


def test_unreachable_elasticsearch_spools_then_delivers(tmp_path: Path, es_url: str, es_prefix: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    outage = soc("replay", "--config", str(es_config(tmp_path / "down.yaml", down, es_prefix, 3)), str(SYNSCAN),
                 str(NMAP), cwd=tmp_path)
    assert outage.returncode == 75
    assert outage.stderr.count(f"Elasticsearch at {down} unreachable") == 1  # reported once, with its URL
    assert "2 alerts wait in the spool" in outage.stderr
    assert list((tmp_path / ".soc-spool").glob("segment-*.jsonl"))  # the replay's own spool segment

    up = es_config(tmp_path / "up.yaml", es_url, es_prefix)  # same folder, so the same spool
    recovered = soc("replay", "--config", str(up), str(NMAP), cwd=tmp_path)
    assert recovered.returncode == 0, recovered.stderr
    docs = stored(tmp_path, "--config", str(up))
    assert sorted(d["source"]["ip"] for d in docs) == ["10.87.1.10", "172.16.0.8"]
    assert not list((tmp_path / ".soc-spool").glob("segment-*.jsonl"))


@pytest.mark.parametrize("command", [["--help"], ["replay", "--help"], ["alerts", "list", "--help"]])
def test_help_works(tmp_path: Path, command: list[str]) -> None:
    assert soc(*command, cwd=tmp_path).returncode == 0
