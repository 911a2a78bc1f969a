"""Packets to protocol metadata to Sigma rules: one capture, both kinds of detection, into one store."""

from __future__ import annotations

import subprocess
from pathlib import Path

from soc.core.config import Settings
from soc.engine.sources import replay_files
from soc.store.sqlite import SqliteStore

from .conftest import ATTACKS, SHARED

NMAP = ATTACKS / "esnet-security__nmap_80_all.pcap"


def nse_requests() -> int:
    """tshark's count of HTTP requests carrying the Nmap Scripting Engine's user agent (the oracle)."""
    out = subprocess.run(["tshark", "-n", "-r", str(NMAP), "-o", "tcp.desegment_tcp_streams:FALSE", "-Y",
                          'http.user_agent contains "Nmap Scripting Engine"', "-T", "fields", "-e", "frame.number"],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return len(out.split())


def test_recon_user_agent_in_http_from_packets_fires_the_sigmahq_rule(tmp_path: Path) -> None:
    settings = Settings.model_validate({
        "inventory": [{"name": "portal", "owner": "web-team", "security_level": 3,
                       "addresses": ["130.211.223.103/32"]}],
        "sigma": {"rules": [str(SHARED / "sigma" / "rules" / "web")]},
        "base_dir": tmp_path,
    })
    store = SqliteStore(tmp_path / "soc.db")
    report = replay_files(settings, store, [NMAP], store_events=True)
    by_rule = {a.rule.name: a for a in report.alerts}
    assert set(by_rule) == {"Port scan", "Suspicious User-Agents Related To Recon Tools"}
    recon = by_rule["Suspicious User-Agents Related To Recon Tools"]
    assert recon.rule.ruleset == "sigma"
    assert (recon.ecs["source"]["ip"], recon.ecs["destination"]["ip"]) == ("10.87.1.10", "130.211.223.103")
    assert recon.system == "portal"
    assert recon.count == nse_requests()  # one alert, every matching request counted
    stored = store.get(recon.id)
    assert stored is not None and stored.count == recon.count
    # the HTTP events themselves were stored too, with their Sigma log source
    http = [e for e in store.events_for_address("10.87.1.10", limit=1000) if e.get("http")]
    assert http and {e["soc"]["logsource"]["category"] for e in http} == {"webserver"}


def test_requests_outside_the_inventory_are_proxy_traffic(tmp_path: Path) -> None:
    settings = Settings.model_validate({"sigma": {"rules": [str(SHARED / "sigma" / "rules" / "web")]},
                                        "base_dir": tmp_path})
    report = replay_files(settings, SqliteStore(tmp_path / "soc.db"), [NMAP], store_events=True)
    assert {a.rule.name for a in report.alerts} == {"Port scan"}  # webserver rules do not run on proxy events
