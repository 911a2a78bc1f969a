"""The scenario generator: deterministic, readable by our packet reader, labelled with the flows it injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.flows import ReferenceFlowMeter
from collectors.packets import CaptureReader
from lab.evaluate import _flow_texts
from lab.labels import CaptureLabels, load_labels
from lab.scenarios import SCENARIOS, generate
from lab.traffic import mac_of
from soc.core.model import DecodeStatus

from .conftest import DURATION, SEED


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first, _ = generate("ssh_bruteforce", tmp_path / "a", seed=5, duration=60)
    again, _ = generate("ssh_bruteforce", tmp_path / "b", seed=5, duration=60)
    other, _ = generate("ssh_bruteforce", tmp_path / "c", seed=6, duration=60)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert (tmp_path / "a" / "ssh_bruteforce.labels.json").read_bytes() == (
        tmp_path / "b" / "ssh_bruteforce.labels.json").read_bytes()


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        generate("nope", tmp_path)


def test_labels_file_round_trips(scenarios: dict[str, tuple[Path, CaptureLabels]]) -> None:
    pcap, labels = scenarios["dns_tunnel"]
    [loaded] = load_labels(pcap.with_name("dns_tunnel.labels.json"))
    assert loaded == labels
    [attack] = loaded.attacks
    assert (attack.attack, attack.detector, attack.subject, attack.victims) == (
        "dns_tunnel", "soc-net-dns-tunnel", "10.10.10.121", ["10.10.1.53"])
    assert attack.start_ns == loaded.start_ns + 24 * 1_000_000_000  # a fifth into a two-minute scenario


@pytest.mark.parametrize("name", SCENARIOS)
def test_capture_decodes_and_labelled_flows_exist(name: str, scenarios: dict[str, tuple[Path, CaptureLabels]]
                                                  ) -> None:
    pcap, labels = scenarios[name]
    reader, meter, keys = CaptureReader(pcap), ReferenceFlowMeter(), set()
    statuses: set[int] = set()
    for batch in reader:
        statuses |= set(batch.status.tolist())
        keys |= set(_flow_texts(meter.update(batch))[2])
    keys |= set(_flow_texts(meter.flush())[2])
    assert reader.error is None
    assert statuses <= {DecodeStatus.OK, DecodeStatus.NOT_IP}  # NOT_IP: the ARP frames
    assert labels.attack_flow_keys() <= keys  # every labelled flow is a flow the meter sees
    assert labels.seed == SEED
    assert labels.end_ns - labels.start_ns >= int(DURATION * 1e9)


def test_attack_sizes_are_as_designed(scenarios: dict[str, tuple[Path, CaptureLabels]]) -> None:
    sizes = {name: len(labels.attack_flow_keys()) for name, (_, labels) in scenarios.items()}
    assert sizes == {
        "baseline": 0, "syn_scan": 300, "connect_scan": 150, "udp_scan": 101, "horizontal_scan": 80,
        "syn_flood": 3000, "ssh_bruteforce": 60, "ftp_bruteforce": 50, "dns_tunnel": 400, "beaconing": 5,
        "exfiltration": 1, "arp_spoof": 0, "lateral_movement": 12,
    }


def test_lab_macs_are_stable_and_locally_administered() -> None:
    assert mac_of("10.10.0.1") == mac_of("10.10.0.1")
    assert mac_of("10.10.0.1") != mac_of("10.10.0.2")
    assert int(mac_of("10.10.0.1").split(":")[0], 16) & 0x02
