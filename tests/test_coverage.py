"""Monitoring coverage: events and flows counted per system and source, and posture check C5 reading them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from soc.core.config import Settings
from soc.coverage import coverage_of
from soc.engine.engine import Engine
from soc.engine.sources import EventStream, replay_files, run_to_end
from soc.posture.evaluate import PostureEvaluator
from soc.store.sqlite import SqliteStore

from .conftest import ATTACKS
from .test_packet_reader import tshark_fields

TARGET = "64.13.134.52"


def settings_for(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "inventory": [{"name": "portal", "owner": "web-team", "security_level": 3, "addresses": [f"{TARGET}/32"],
                       "hosts": ["portal.example.gov.vn"]}],
        "sigma": {"rules": []},
        "base_dir": tmp_path,
    })


def test_flows_count_for_the_system_they_touch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "soc.db")
    report = replay_files(settings_for(tmp_path), store, [ATTACKS / "chrissanders__synscan.pcapng"])
    assert report.flows == 1994  # every flow of the scan has the portal's address at one end
    # last seen: the capture's last packet to or from the portal, by tshark
    [[last_epoch]] = tshark_fields(ATTACKS / "chrissanders__synscan.pcapng", "frame.time_epoch")[-1:]
    last_seen = datetime.fromtimestamp(float(last_epoch), tz=UTC).isoformat(timespec="microseconds")
    assert coverage_of(store, "portal") == {"network": {"events": 1994, "last_seen": last_seen.replace("+00:00", "Z")}}


def web_log(when: datetime) -> dict:
    return {"@timestamp": when.isoformat().replace("+00:00", "Z"), "host": {"name": "portal.example.gov.vn"},
            "source": {"ip": "203.0.113.9"}, "url": {"original": "/"}, "http": {"request": {"method": "GET"}},
            "event": {"dataset": "nginx.access"}, "soc": {"logsource": {"category": "webserver"}}}


def test_posture_c5_names_the_sources_that_do_not_flow(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(tmp_path / "soc.db")
    now = datetime.now(tz=UTC)
    run_to_end(Engine(settings, store), [EventStream([web_log(now - timedelta(hours=2)),
                                                     web_log(now - timedelta(hours=1))])])
    assert coverage_of(store, "portal")["webserver"]["events"] == 2

    [portal] = PostureEvaluator(settings, store).evaluate(["portal"], now)
    c5 = next(c for c in portal.checks if c.id == "C5")
    assert (c5.status, c5.reason) == ("fail", "not seen within 24 h: network, firewall logs")
    assert portal.coverage["web server logs"]["events"] == 2
    assert portal.coverage["web server logs"]["last_seen"] == web_log(now - timedelta(hours=1))["@timestamp"]
