"""DNS, HTTP and TLS metadata against tshark on real captures: every record equal, every difference explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import oracle
from .oracle import Capture, Comparison

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
ATTACKS = SHARED / "pcaps" / "attacks"
MIX_30K = SHARED / "pcaps" / "throughput" / "ordinary_mix_first30k.pcap"

CAPTURES = [
    ATTACKS / "ntop__dns-tunnel-iodine.pcap",
    ATTACKS / "ntop__dns_exfiltration.pcap",
    ATTACKS / "chrissanders__http_dvwa_sqlinjection.pcapng",
    ATTACKS / "chrissanders__cryptowall4_c2.pcapng",
    ATTACKS / "esnet-security__nmap_80_all.pcap",
    ATTACKS / "chrissanders__arppoison.pcapng",
    ATTACKS / "OISF__20171220_smb_psexec_add_user.pcap",
    ATTACKS / "StopDDoS__amp.dns.RRSIG.fragmented.pcap",
    MIX_30K,
]

# capture -> protocol -> (records tshark and we agree on, {category: tshark rows set aside}, retransmitted frames)
EXPECTED: dict[str, dict[str, tuple[int, dict[str, int], set[int]]]] = {
    "ntop__dns-tunnel-iodine.pcap": {"dns": (434, {}, set())},
    "ntop__dns_exfiltration.pcap": {"dns": (300, {}, set())},
    "chrissanders__http_dvwa_sqlinjection.pcapng": {"http": (6, {}, set())},
    "chrissanders__cryptowall4_c2.pcapng": {"http": (6, {}, set())},
    "esnet-security__nmap_80_all.pcap": {"http": (63, {}, set())},
    "chrissanders__arppoison.pcapng": {"dns": (54, {}, set()), "http": (30, {}, set())},
    "OISF__20171220_smb_psexec_add_user.pcap": {"dns": (22, {"tunnelled": 3}, set())},
    "StopDDoS__amp.dns.RRSIG.fragmented.pcap": {
        "dns": (64, {"reassembled": 338}, set()),
        "http": (7, {}, {3506}),
        "tls": (12, {}, set()),
    },
    "ordinary_mix_first30k.pcap": {
        "dns": (42, {"tunnelled": 10}, set()),
        "http": (87, {"tunnelled": 39}, {23084, 23093}),
        "tls": (9, {}, set()),
    },
}

COMPARE = {"dns": oracle.compare_dns, "http": oracle.compare_http, "tls": oracle.compare_tls}


@pytest.fixture(scope="module", params=CAPTURES, ids=lambda p: p.name)
def capture(request: pytest.FixtureRequest) -> Capture:
    path: Path = request.param
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read the real captures in ../shared")
    return Capture.load(path)


@pytest.mark.parametrize("protocol", ["dns", "http", "tls"])
def test_records_equal_tshark(capture: Capture, protocol: str) -> None:
    comparison: Comparison = COMPARE[protocol](capture)
    agreed, aside, retransmitted = EXPECTED[capture.path.name].get(protocol, (0, {}, set()))
    differences = comparison.differences()

    # the only frames where tshark and we disagree are TCP retransmissions tshark flags: it dissects a repeat
    # we skip (the same connection and sequence number already parsed), or skips one whose original is missing
    assert set(differences) == retransmitted
    assert oracle.retransmissions(capture, set(differences)) == retransmitted
    for frame, (theirs, ours) in differences.items():
        if ours is None:
            assert theirs in comparison.ours.values(), f"frame {frame}: tshark's record is not a repeat of ours"
            assert capture.extractor.stats.skipped["tcp_retransmission"] > 0

    same = [f for f in comparison.expected if comparison.expected[f] == comparison.ours.get(f)]
    assert len(same) == agreed
    assert {k: len(v) for k, v in comparison.set_aside.items() if v} == aside
    if "reassembled" in aside:
        assert capture.extractor.stats.skipped["ip_fragment"] > 0
    for frame in comparison.set_aside["undecoded"]:
        assert capture.undecoded[frame] == "NOT_IP"


def test_capture_counters(capture: Capture) -> None:
    """Nothing in these captures is malformed for our parsers except one 3-byte DNS payload in the mix."""
    stats = capture.extractor.stats
    expected_malformed = {"dns.truncated": 1} if capture.path == MIX_30K else {}
    assert dict(stats.malformed) == expected_malformed
    if expected_malformed:
        assert stats.samples["dns.truncated"] == [
            f"{MIX_30K} frame 28008 at byte offset 7865826: 3 bytes, shorter than the 12-byte header"
        ]
    assert sum(stats.events.values()) == len(capture.events)
