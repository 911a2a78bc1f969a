"""The engine: plug-ins found by name with their own settings, observers fed by every source, one code path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field

from soc.core.config import Settings, load_settings
from soc.core.errors import ConfigError
from soc.core.model import Alert, FlowBatch, Rule, Severity
from soc.core.plugins import REGISTRY, Observer, Output, PluginContext, PluginSettings, plugin
from soc.engine.engine import Engine
from soc.engine.plugins import build_observers, check_plugins
from soc.engine.sources import CaptureFiles, EventStream, replay_files, run_to_end
from soc.store.sqlite import SqliteStore

from .conftest import ATTACKS, REPO

SYNSCAN = ATTACKS / "chrissanders__synscan.pcapng"
SSH_BRUTE_FORCE = "b6e92c17-a4cb-4b13-a9d5-46c802f21124"  # rules/linux/ssh_bruteforce.yml
BIG_FLOWS = Rule("test-big-flows", "Many flows", "tests", "a plug-in declared by a test", "")


def settings(tmp_path: Path, text: str = "") -> Settings:
    path = tmp_path / "soc.yaml"
    path.write_text("sigma: {rules: []}\n" + text)
    return load_settings(path)


class FlowCountSettings(PluginSettings):
    min_flows: int = Field(100, ge=1)


class FlowCounter(Observer):
    """A plug-in of the test's own: one alert at the end when enough flows ended."""

    def __init__(self, options: FlowCountSettings) -> None:
        self.options = options
        self.flows = 0
        self.last_ns = 0

    def on_flows(self, flows: FlowBatch) -> Output:
        self.flows += len(flows)
        self.last_ns = max(self.last_ns, int(np.max(flows.last_ts_ns)))
        return ()

    def on_finish(self) -> Output:
        if self.flows < self.options.min_flows:
            return ()
        when = "2026-01-01T00:00:00.000000Z"
        return [Alert(rule=BIG_FLOWS, severity=Severity.LOW, group_key="all", time_bucket=0, first_seen=when,
                      last_seen=when, message=f"{self.flows} flows", count=self.flows)]


@pytest.fixture
def flow_counter() -> Iterator[None]:
    plugin("flow_counter", settings=FlowCountSettings)(FlowCounter)
    yield
    REGISTRY.remove("detectors", "flow_counter")


def test_a_plugin_runs_with_its_own_settings_without_touching_the_core(tmp_path: Path, flow_counter: None) -> None:
    config = settings(tmp_path, "detectors:\n  flow_counter: {min_flows: 1000}\n")
    report = replay_files(config, SqliteStore(tmp_path / "soc.db"), [SYNSCAN])
    [mine] = [a for a in report.alerts if a.rule.id == BIG_FLOWS.id]
    assert mine.message == f"{report.flows} flows" and report.flows == 1994
    config = settings(tmp_path, "detectors:\n  flow_counter: {min_flows: 5000}\n")
    report = replay_files(config, SqliteStore(tmp_path / "other.db"), [SYNSCAN])
    assert not [a for a in report.alerts if a.rule.id == BIG_FLOWS.id]


def test_a_plugin_turned_off_does_not_run(tmp_path: Path) -> None:
    on = replay_files(settings(tmp_path), SqliteStore(tmp_path / "on.db"), [SYNSCAN])
    assert {a.rule.id for a in on.alerts} == {"soc-net-portscan"}
    off = replay_files(settings(tmp_path, "detectors:\n  portscan: {enabled: false}\n"),
                       SqliteStore(tmp_path / "off.db"), [SYNSCAN])
    assert off.alerts == [] and off.flows == on.flows


def test_an_unknown_plugin_names_the_key_the_line_and_the_known_names(tmp_path: Path) -> None:
    config = settings(tmp_path, "detectors:\n  portscan: {min_ports: 10}\n  port_scan: {}\n")
    with pytest.raises(ConfigError) as caught:
        check_plugins(config)
    assert caught.value.key == "detectors.port_scan" and caught.value.line == 4
    assert "known: admin_share, anomaly, arp_spoof" in caught.value.message and "portscan" in caught.value.message


def test_a_bad_plugin_value_names_its_key_and_line(tmp_path: Path) -> None:
    config = settings(tmp_path, "analyzers:\n  protocols:\n    protocols: [dns]\n    http: 7\n")
    with pytest.raises(ConfigError) as caught:
        build_observers(config)
    assert (caught.value.key, caught.value.line) == ("analyzers.protocols.http", 5)


def test_an_unknown_sigma_pipeline_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "soc.yaml").write_text("sigma: {rules: [], pipeline: soc_windowz}\n")
    config = load_settings(tmp_path / "soc.yaml")
    with pytest.raises(ConfigError) as caught:
        check_plugins(config)
    assert caught.value.key == "sigma.pipeline" and "soc_windows" in caught.value.message


def test_earlier_config_key_collectors_protocols_is_read_as_analyzers_protocols(tmp_path: Path) -> None:
    config = settings(tmp_path, "collectors:\n  protocols: {protocols: [dns]}\n")
    assert config.analyzers == {"protocols": {"protocols": ["dns"]}}


class AlertWatcher(Observer):
    def __init__(self) -> None:
        self.seen: list[Alert] = []

    def on_alerts(self, alerts: list[Alert]) -> Output:
        self.seen.extend(alerts)
        return ()


def test_packets_and_events_go_through_the_same_engine(tmp_path: Path) -> None:
    """A capture and a log file in one engine: the flow detectors and the Sigma rules of the same run, and an
    observer of alerts sees both before grouping."""
    from collectors.logs.ingest import ingest_paths

    (tmp_path / "soc.yaml").write_text(f"sigma: {{rules: [{REPO / 'rules'}]}}\n")
    config = load_settings(tmp_path / "soc.yaml")
    lines = [f"Nov 30 10:00:{i:02d} web1 sshd[4{i:03d}]: Failed password for root from 203.0.113.7 port {40000 + i}"
             " ssh2" for i in range(12)]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    watcher = AlertWatcher()
    engine = Engine(config, SqliteStore(tmp_path / "soc.db"), observers=[*build_observers(config), watcher])
    events = ingest_paths([log], options={"year": 2026})
    report = run_to_end(engine, [CaptureFiles([SYNSCAN]), EventStream(events)])
    rules = {a.rule.id for a in report.alerts}
    assert rules == {"soc-net-portscan", SSH_BRUTE_FORCE}
    assert {a.rule.id for a in watcher.seen} == rules
    assert report.events == 12 and report.flows == 1994


def test_build_observers_runs_analyzers_before_detectors(tmp_path: Path) -> None:
    names = [type(o).__name__ for o in build_observers(settings(tmp_path))]
    assert names[0] == "ProtocolAnalyzer"
    assert "PortScanDetector" in names and "AnomalyDetector" not in names  # no model configured: off


def test_plugin_context_resolves_paths_against_the_config_file(tmp_path: Path) -> None:
    assert PluginContext(settings(tmp_path)).resolve("models/x.skops") == tmp_path / "models/x.skops"
