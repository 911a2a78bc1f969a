"""The port-scan detector on real captures: scans are found and named, other attacks and traffic are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.flows import ReferenceFlowMeter
from collectors.packets import CaptureReader
from detectors.network import PortScanDetector, PortScanSettings
from soc.core.model import Alert, Severity

from .conftest import ATTACKS


def detect(path: Path, settings: PortScanSettings | None = None) -> list[Alert]:
    meter, detector = ReferenceFlowMeter(), PortScanDetector(settings)
    alerts = []
    for batch in CaptureReader(path, chunk_packets=256):
        alerts += detector.observe(meter.update(batch))
    alerts += detector.observe(meter.flush())
    return alerts + detector.flush()


def test_nmap_syn_scan_of_one_host() -> None:
    [alert] = detect(ATTACKS / "chrissanders__synscan.pcapng")
    assert alert.ecs["source"]["ip"] == "172.16.0.8"
    assert alert.ecs["destination"]["ip"] == "64.13.134.52"
    assert alert.severity == Severity.HIGH
    assert alert.evidence["distinct_ports"] == 997
    assert alert.evidence["distinct_hosts"] == 1
    assert alert.evidence["scan_types"] == ["vertical"]
    assert [t.id for t in alert.techniques] == ["T1046"]
    assert alert.first_seen.startswith("2010-07-04T20:24:16")


def test_nmap_service_scan_is_caught_by_its_half_open_probe() -> None:
    [alert] = detect(ATTACKS / "esnet-security__nmap_80_all.pcap")
    assert alert.ecs["source"]["ip"] == "10.87.1.10"
    assert alert.ecs["destination"]["ip"] == "130.211.223.103"
    assert alert.evidence["half_open_probes"] == 1
    assert alert.evidence["scan_types"] == ["half-open SYN"]
    assert "10.87.1.10:52232->130.211.223.103:80/tcp" in alert.evidence["flows"]


@pytest.mark.parametrize(
    "capture",
    [
        "zeek__sshguess.pcap",  # brute force: many connections to one port, all with data
        "Trace-Share__hydra-1_tasks.pcap",
        "zeek__ftp_bruteforce.pcap",
        "StopDDoS__pkt.TCP.synflood.spoofed.pcap",  # every spoofed source sends one SYN
        "StopDDoS__amp.dns.RRSIG.fragmented.pcap",  # big unanswered datagrams are replies, not probes
        "chrissanders__cryptowall4_c2.pcapng",
        "chrissanders__http_dvwa_sqlinjection.pcapng",
        "OISF__20171220_smb_psexec_add_user.pcap",
        "ntop__dns-tunnel-iodine.pcap",
        "zeek__dhcp_flood.pcap",
    ],
)
def test_other_attacks_are_not_port_scans(capture: str) -> None:
    assert detect(ATTACKS / capture) == []


def test_thresholds_and_allow_list_come_from_settings() -> None:
    scan = ATTACKS / "chrissanders__synscan.pcapng"
    assert detect(scan, PortScanSettings(min_ports=998, min_half_open=1)) == []
    assert detect(scan, PortScanSettings(ignore_sources=["172.16.0.0/24"])) == []
    [medium] = detect(scan, PortScanSettings(min_ports=500))
    assert medium.severity == Severity.MEDIUM


def test_alert_id_is_stable_across_chunkings() -> None:
    scan = ATTACKS / "chrissanders__synscan.pcapng"
    meter, detector = ReferenceFlowMeter(), PortScanDetector()
    alerts = []
    for batch in CaptureReader(scan, chunk_packets=65536):
        alerts += detector.observe(meter.update(batch))
    alerts += detector.observe(meter.flush()) + detector.flush()
    assert [a.id for a in alerts] == [a.id for a in detect(scan)]
