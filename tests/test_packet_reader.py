"""The capture reader against real pcap and pcapng files, with tshark as the oracle, and on damaged files."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.packets import CaptureReader
from soc.core.errors import CaptureError
from soc.core.model import DecodeStatus, ip_to_str

from .conftest import ATTACKS

CAPTURES = sorted(ATTACKS.glob("*.pcap*"))


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    command = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for field in fields:
        command += ["-e", field]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300).stdout
    return [line.split("|") for line in output.splitlines()]


def read_all(path: Path) -> tuple[CaptureReader, list]:
    reader = CaptureReader(path, chunk_packets=1024)  # small chunks: batches must join seamlessly
    return reader, list(reader)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_frames_times_and_addresses_match_tshark(capture: Path) -> None:
    expected = tshark_fields(capture, "frame.time_epoch", "frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst")
    reader, batches = read_all(capture)
    assert reader.error is None
    assert reader.stats.packets == len(expected)
    ts = np.concatenate([b.ts_ns for b in batches])
    wirelen = np.concatenate([b.wirelen for b in batches])
    assert wirelen.tolist() == [int(row[1]) for row in expected]
    assert np.allclose(ts / 1e9, [float(row[0]) for row in expected], rtol=0, atol=1e-6)
    for batch in batches:
        for i in range(len(batch)):
            row = expected[batch.first_index + i]
            # the outer IP header is ours; tshark lists inner (tunnelled, ICMP-quoted) addresses after it
            outer_src = (row[2] or row[4]).split(",")[0]
            outer_dst = (row[3] or row[5]).split(",")[0]
            if batch.ip_version[i]:
                assert ip_to_str(batch.src_ip[i]) == outer_src
                assert ip_to_str(batch.dst_ip[i]) == outer_dst


def test_ports_and_flags_match_tshark_on_a_scan() -> None:
    capture = ATTACKS / "chrissanders__synscan.pcapng"
    expected = tshark_fields(capture, "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.window_size_value")
    _, batches = read_all(capture)
    got = [
        [str(b.src_port[i]), str(b.dst_port[i]), f"0x{b.tcp_flags[i]:04x}", str(b.tcp_window[i])]
        for b in batches
        for i in range(len(b))
    ]
    assert got == expected


def test_arp_is_kept_as_its_own_record() -> None:
    _, batches = read_all(ATTACKS / "chrissanders__arppoison.pcapng")
    arp = sum(int(((b.ethertype == 0x0806) & (b.status == DecodeStatus.NOT_IP)).sum()) for b in batches)
    assert arp == len(tshark_fields(ATTACKS / "chrissanders__arppoison.pcapng", "arp.opcode")) - sum(
        1 for row in tshark_fields(ATTACKS / "chrissanders__arppoison.pcapng", "arp.opcode") if not row[0]
    )
    assert arp > 0


def test_truncated_file_keeps_packets_before_the_damage(tmp_path: Path) -> None:
    source = ATTACKS / "esnet-security__nmap_80_all.pcap"
    data = source.read_bytes()
    # walk the record headers to cut the file in the middle of the 101st packet's data
    offset, starts = 24, []
    while offset < len(data):
        starts.append(offset)
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    cut = starts[100] + 16 + 5
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes(data[:cut])
    reader, batches = read_all(damaged)
    assert sum(len(b) for b in batches) == 100
    assert reader.error is not None
    assert reader.error.offset == starts[100]
    assert str(damaged) in str(reader.error) and f"byte offset {starts[100]}" in str(reader.error)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"GIF89a" + b"\0" * 40, "not a pcap or pcapng file"),
        (b"\xd4\xc3\xb2\xa1", "global header cut short"),
    ],
)
def test_files_that_are_not_captures_are_refused_with_their_path(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message) as caught:
        list(CaptureReader(path))
    assert str(path) in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file") as caught:
        list(CaptureReader(tmp_path / "nope.pcap"))
    assert "nope.pcap" in str(caught.value)


def _pcapng_with_resolution(resolution: int, ticks: int) -> bytes:
    """One section, one Ethernet interface with ``if_tsresol`` = ``resolution``, one 60-byte packet at ``ticks``."""
    section = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    options = struct.pack("<HHB3x", 9, 1, resolution) + struct.pack("<HH", 0, 0)
    interface = struct.pack("<IIHHI", 1, 16 + len(options) + 4, 1, 0, 0) + options
    interface += struct.pack("<I", len(interface) + 4)
    packet = struct.pack("<IIIIIII", 6, 28 + 60 + 4, 0, ticks >> 32, ticks & 0xFFFFFFFF, 60, 60) + bytes(60)
    return section + interface + packet + struct.pack("<I", 28 + 60 + 4)


@pytest.mark.parametrize(
    ("resolution", "ticks", "ts_ns"),
    [(9, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),  # nanoseconds
     (6, 1_700_000_000_123_456, 1_700_000_000_123_456_000),  # microseconds (the default)
     (0x80 | 20, (5 << 20) | (1 << 19), 5_500_000_000),  # 2^-20 s
     (18, 7 * 10**18 + 3 * 10**9, 7_000_000_003)],  # attoseconds, the finest decimal resolution we read
)
def test_pcapng_timestamp_resolutions(tmp_path: Path, resolution: int, ticks: int, ts_ns: int) -> None:
    path = tmp_path / "resolution.pcapng"
    path.write_bytes(_pcapng_with_resolution(resolution, ticks))
    reader, batches = read_all(path)
    assert reader.error is None
    assert [int(t) for b in batches for t in b.ts_ns] == [ts_ns]


@pytest.mark.parametrize("resolution", [19, 30, 127, 0x80 | 33, 0xFF])
def test_pcapng_resolution_beyond_64_bit_arithmetic_is_a_malformed_interface(tmp_path: Path, resolution: int) -> None:
    path = tmp_path / "resolution.pcapng"
    path.write_bytes(_pcapng_with_resolution(resolution, 12345))
    reader, batches = read_all(path)
    assert sum(len(b) for b in batches) == 0
    assert reader.error is not None and reader.error.offset == 28  # where the interface block starts
    assert "malformed pcapng block" in str(reader.error)


def test_pcapng_split_across_sections_and_byte_orders(tmp_path: Path) -> None:
    """Two sections in one file (as `cat a.pcapng b.pcapng` makes): the second resets the interfaces."""
    first, second = ATTACKS / "chrissanders__synscan.pcapng", ATTACKS / "chrissanders__arppoison.pcapng"
    joined = tmp_path / "joined.pcapng"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    reader, _batches = read_all(joined)
    assert reader.error is None
    assert reader.stats.packets == 2011 + 165


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=20000), noise=st.binary(min_size=0, max_size=64),
       where=st.integers(min_value=0, max_value=20000))
def test_damaged_captures_never_crash_the_reader(tmp_path: Path, cut: int, noise: bytes, where: int) -> None:
    for source in (ATTACKS / "esnet-security__nmap_80_all.pcap", ATTACKS / "chrissanders__synscan.pcapng"):
        data = bytearray(source.read_bytes()[:20000])
        data[where:where + len(noise)] = noise
        path = tmp_path / "fuzz.bin"
        path.write_bytes(bytes(data[:cut]))
        try:
            reader = CaptureReader(path, chunk_packets=64)
            packets = sum(len(b) for b in reader)
        except CaptureError:
            continue  # refused with a reason: fine
        assert packets == reader.stats.packets


def test_encapsulations_and_tcp_sequence_numbers_match_tshark(tmp_path: Path) -> None:
    """802.3 frames with an LLC/SNAP header, PPPoE sessions (PPP protocol field compressed or not), MPLS label
    stacks and IPv4 with a zero total length (segmentation offload) carry IP that tshark decodes, and so do we;
    plain LLC (spanning tree) and PPPoE's own control frames are not IP."""
    from scapy.contrib.mpls import MPLS
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import LLC, SNAP, STP, Dot1Q, Dot3, Ether
    from scapy.layers.ppp import PPP, PPPoE
    from scapy.utils import wrpcap

    mac = {"src": "00:11:22:33:44:55", "dst": "66:77:88:99:aa:bb"}
    frames = [
        Dot3(**mac) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
        / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=1234, dport=80, flags="S", seq=123456789),
        Ether(**mac) / Dot1Q(vlan=42, type=len(IP() / UDP()) + 8) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
        / SNAP(OUI=0, code=0x0800) / IP(src="10.1.0.3", dst="10.1.0.4") / UDP(sport=53, dport=5353),
        Dot3(dst="01:80:c2:00:00:00", src=mac["src"]) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / STP(),
        Ether(**mac) / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop()
        / TCP(sport=40000, dport=443, flags="A", seq=4000000000),
        Ether(**mac) / Dot1Q(vlan=7) / PPPoE(sessionid=9) / PPP(proto=0x0021) / IP(src="100.64.0.1", dst="10.1.0.9")
        / TCP(sport=5555, dport=22, flags="S", seq=77),
        Ether(**mac) / PPPoE(sessionid=9) / PPP(proto=0xC021) / b"\x01\x01\x00\x04",  # LCP: no IP inside
        Ether(**mac) / PPPoE(sessionid=9)  # PPP protocol field compressed to one byte
        / (b"\x21" + bytes(IP(src="100.64.0.2", dst="10.1.0.9") / UDP(sport=1, dport=2))),
        Ether(**mac, type=0x8847) / MPLS(label=100, s=0) / MPLS(label=200, s=1)
        / IP(src="10.2.0.1", dst="10.2.0.2") / TCP(sport=179, dport=50000, flags="PA", seq=5) / b"bgp",
        Ether(**mac) / IP(src="10.3.0.1", dst="10.3.0.2", len=0) / TCP(sport=443, dport=51000, flags="A", seq=6)
        / (b"x" * 3000),
    ]
    capture = tmp_path / "llc.pcap"
    wrpcap(str(capture), frames)
    expected = tshark_fields(capture, "ip.src", "ipv6.src", "tcp.srcport", "udp.srcport", "tcp.seq_raw", "vlan.id")
    _, batches = read_all(capture)
    batch = batches[0]
    ok, not_ip = DecodeStatus.OK, DecodeStatus.NOT_IP
    assert batch.status.tolist() == [ok, ok, not_ip, ok, ok, not_ip, ok, ok, ok]
    assert int(batch.payload_len[-1]) == 3000
    for i, (ip4, ip6, tcp_port, udp_port, seq, vlan) in enumerate(expected):
        assert (ip_to_str(batch.src_ip[i]) if batch.ip_version[i] else "") == (ip4 or ip6)
        assert (str(batch.src_port[i]) if batch.ip_version[i] else "") == (tcp_port or udp_port)
        assert int(batch.tcp_seq[i]) == (int(seq) if seq else -1)
        assert int(batch.vlan[i]) == (int(vlan) if vlan else 0)
