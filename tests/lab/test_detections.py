"""The whole pipeline (flow and packet detectors) on every lab scenario and every real attack capture: exactly the
expected alerts, with their evidence and ATT&CK technique, and nothing on background traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.evaluate import CaptureResult, evaluate_capture
from lab.labels import CaptureLabels, load_labels
from lab.scenarios import SCENARIOS
from soc.core.config import Settings
from soc.core.model import Alert

from .conftest import REAL_LABELS


@pytest.fixture(scope="module")
def lab_results(scenarios: dict[str, tuple[Path, CaptureLabels]]) -> dict[str, CaptureResult]:
    return {name: evaluate_capture(pcap, labels, Settings()) for name, (pcap, labels) in scenarios.items()}


def summary(alerts: list[Alert]) -> list[tuple[str, str, int]]:
    return sorted((a.rule.id, a.group_key, a.count) for a in alerts)


EXPECTED = {
    "baseline": [],
    "syn_scan": [("soc-net-portscan", "198.51.100.7", 300)],
    "connect_scan": [("soc-net-portscan", "10.10.10.113", 150)],
    "udp_scan": [("soc-net-portscan", "198.51.100.9", 99)],  # the DNS port answered: not a probe
    "horizontal_scan": [("soc-net-portscan", "10.10.10.117", 80)],
    "syn_flood": [("soc-net-flood", "10.10.1.10", 3000)],
    "ssh_bruteforce": [("soc-net-bruteforce", "198.51.100.23", 60)],
    "ftp_bruteforce": [("soc-net-bruteforce", "198.51.100.41", 50)],
    "dns_tunnel": [("soc-net-dns-tunnel", "10.10.10.121", 400)],
    "beaconing": [("soc-net-beacon", "10.10.10.108", 5)],
    "exfiltration": [("soc-net-exfiltration", "10.10.2.40", 1)],
    # 30 rounds of 10 replies every ~2 s, counted in the two 60 s windows they fall in
    "arp_spoof": [("soc-net-arp-spoof", "10.10.0.1", 120), ("soc-net-arp-spoof", "10.10.0.1", 180)],
    "lateral_movement": [("soc-net-lateral", "10.10.10.111", 13)],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_exact_alerts_on_lab_scenario(name: str, lab_results: dict[str, CaptureResult]) -> None:
    result = lab_results[name]
    assert summary(result.alerts) == EXPECTED[name]
    assert result.missed == []
    for score in result.scores:
        assert score.recall == 1.0 and score.precision == 1.0
        assert score.fp_flows == 0


def _only(result: CaptureResult) -> Alert:
    [alert] = result.alerts
    return alert


def test_evidence_of_lab_alerts(lab_results: dict[str, CaptureResult]) -> None:
    flood = _only(lab_results["syn_flood"])
    assert flood.evidence["flood_types"] == ["SYN"] and flood.evidence["distinct_sources"] == 3000
    assert [t.id for t in flood.techniques] == ["T1498"]
    brute = _only(lab_results["ssh_bruteforce"])
    assert (brute.evidence["service"], brute.evidence["attempts"], brute.evidence["reply_spread"]) == ("ssh", 60, 0.0)
    assert brute.ecs["destination"] == {"ip": "10.10.1.22", "port": 22}
    assert [t.id for t in brute.techniques] == ["T1110.001"]
    tunnel = _only(lab_results["dns_tunnel"])
    assert tunnel.evidence["domains"] == {"cdn-sync.example": 400}
    assert tunnel.ecs["dns"]["question"]["registered_domain"] == "cdn-sync.example"
    beacon = _only(lab_results["beaconing"])
    assert beacon.ecs["destination"] == {"ip": "203.0.113.66", "port": 443}
    assert 17 <= beacon.evidence["interval_seconds"] <= 23 and beacon.evidence["jitter"] <= 0.15
    exfil = _only(lab_results["exfiltration"])
    assert exfil.evidence["bytes_out"] >= 12_000_000 and exfil.evidence["destinations"] == ["198.51.100.200"]
    assert [t.id for t in exfil.techniques] == ["T1048"]
    lateral = _only(lab_results["lateral_movement"])
    assert lateral.evidence["distinct_hosts"] == 12 and lateral.evidence["services"] == ["rdp", "smb", "ssh"]
    spoof = lab_results["arp_spoof"].alerts[0]
    assert spoof.evidence["kind"] == "changed" and spoof.evidence["spoofer_ip"] == "10.10.10.126"
    assert spoof.ecs["source"]["ip"] == "10.10.10.126"
    assert [t.id for t in spoof.techniques] == ["T1557.002"]


def test_time_to_detect_is_measured_in_capture_time(lab_results: dict[str, CaptureResult]) -> None:
    for name, result in lab_results.items():
        for score in result.scores:
            assert score.ttd_seconds is not None and 0 < score.ttd_seconds <= 120, name


REAL = {record.capture: record for record in load_labels(REAL_LABELS)}

REAL_EXPECTED = {
    "chrissanders__synscan.pcapng": [("soc-net-portscan", "172.16.0.8")],
    "esnet-security__nmap_80_all.pcap": [("soc-net-portscan", "10.87.1.10")],
    "Trace-Share__hydra-1_tasks.pcap": [("soc-net-bruteforce", "240.0.1.2")] * 2,  # 61 tries over 18 minutes
    "zeek__sshguess.pcap": [("soc-net-bruteforce", "192.168.56.1")],
    "zeek__ftp_bruteforce.pcap": [("soc-net-bruteforce", "192.168.56.1")],
    "StopDDoS__pkt.TCP.synflood.spoofed.pcap": [("soc-net-flood", "10.10.10.10")],
    "StopDDoS__amp.dns.RRSIG.fragmented.pcap": [("soc-net-flood", "10.10.10.10")],
    "ntop__dns-tunnel-iodine.pcap": [("soc-net-dns-tunnel", "10.0.2.30")],
    "ntop__dns_exfiltration.pcap": [("soc-net-dns-tunnel", "192.168.220.56")],
    "chrissanders__cryptowall4_c2.pcapng": [("soc-net-beacon", "192.168.122.145")],
    "chrissanders__arppoison.pcapng": [("soc-net-arp-spoof", "00:25:b3:bf:91:ee")],
    "OISF__20171220_smb_psexec_add_user.pcap": [("soc-net-admin-share", "192.168.10.31")] * 2,  # two sessions
    "zeek__dhcp_flood.pcap": [("soc-net-flood", "dhcp:128.2.7.31")],
    "chrissanders__http_dvwa_sqlinjection.pcapng": [],
}


def test_every_real_capture_is_labelled() -> None:
    assert sorted(REAL) == sorted(REAL_EXPECTED)


@pytest.mark.parametrize("capture", sorted(REAL_EXPECTED))
def test_real_capture_raises_the_right_alert_class(capture: str, attacks_dir: Path) -> None:
    result = evaluate_capture(attacks_dir / capture, REAL[capture], Settings())
    assert sorted((a.rule.id, a.group_key) for a in result.alerts) == REAL_EXPECTED[capture]
    assert result.missed == []
