"""Cases the real captures lack, in captures written here with scapy: DNS over TCP (two messages in a segment,
one cut), IPv6 and VLAN-tagged frames, pipelined HTTP requests, a response without its request, a request that
is never answered, and a ClientHello cut by the segment end. tshark reads the same files as the oracle."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import wrpcap

from collectors.packets import CaptureReader
from collectors.protocols import ProtocolExtractor, extract_file
from collectors.protocols.budget import tshark_fields

from .test_parsers import HELLO

T0 = 1_700_000_000.0


def frame(payload: bytes, sport: int, dport: int, *, seq: int = 1000, v6: bool = False, vlan: int = 0,
          udp: bool = False, src: str = "10.1.1.5", dst: str = "192.0.2.80") -> Ether:
    ip = IPv6(src="2001:db8::5", dst="2001:db8::80") if v6 else IP(src=src, dst=dst)
    transport = UDP(sport=sport, dport=dport) if udp else TCP(sport=sport, dport=dport, flags="PA", seq=seq)
    link = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return link / Dot1Q(vlan=vlan) / ip / transport / payload if vlan else link / ip / transport / payload


def dns_bytes(name: str, ident: int, answer: str | None = None) -> bytes:
    if answer is None:
        return bytes(DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype="A")))
    return bytes(DNS(id=ident, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype="A"),
                     an=DNSRR(rrname=name, type="A", ttl=60, rdata=answer)))


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    query1, query2 = dns_bytes("a.example.", 1), dns_bytes("b.example.", 2)
    tcp_dns = struct.pack(">H", len(query1)) + query1 + struct.pack(">H", len(query2)) + query2
    cut_dns = struct.pack(">H", 200) + query1
    get1 = b"GET /one HTTP/1.1\r\nHost: web.example\r\nUser-Agent: t/1\r\n\r\n"
    get2 = b"GET /two?q=1 HTTP/1.1\r\nHost: web.example\r\nUser-Agent: t/1\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    packets = [
        frame(tcp_dns, 40000, 53),  # 1: two DNS queries in one TCP segment
        frame(cut_dns, 40001, 53),  # 2: a DNS message longer than the segment
        frame(dns_bytes("v6.example.", 3), 5353, 53, v6=True, udp=True),  # 3: DNS over IPv6
        frame(dns_bytes("v6.example.", 3, "192.0.2.1"), 53, 5353, v6=True, udp=True),  # 4: its answer
        frame(get1 + get2, 41000, 80, vlan=10),  # 5: two pipelined requests in one segment (first is read)
        frame(get2, 41000, 80, seq=1000 + len(get1), vlan=10),  # 6: the second request on its own
        frame(ok, 80, 41000, vlan=10, src="192.0.2.80", dst="10.1.1.5"),  # 7: answers /one
        frame(ok, 80, 41000, seq=2000, vlan=10, src="192.0.2.80", dst="10.1.1.5"),  # 8: answers /two
        frame(missing, 80, 41999, src="192.0.2.80", dst="10.1.1.5"),  # 9: a response whose request we missed
        frame(get1, 42000, 80),  # 10: never answered
        frame(HELLO[:80], 43000, 443),  # 11: a ClientHello cut by the segment end
        frame(get1, 42000, 80),  # 12: frame 10 again (a retransmission)
    ]
    for i, packet in enumerate(packets):
        packet.time = T0 + i
    path = tmp_path_factory.mktemp("synthetic") / "cases.pcap"
    wrpcap(str(path), packets)
    return path


def test_synthetic_cases(capture: Path) -> None:
    extractor = ProtocolExtractor(source=capture)
    events = list(extract_file(capture, extractor=extractor))
    summary = [
        (e["soc"]["packet"]["frame"], e["network"]["protocol"], e["network"]["transport"],
         e.get("dns", {}).get("question", {}).get("name") or e.get("url", {}).get("original"),
         e.get("http", {}).get("response", {}).get("status_code"))
        for e in events
    ]
    assert summary == [
        (1, "dns", "tcp", "a.example", None),
        (1, "dns", "tcp", "b.example", None),
        (3, "dns", "udp", "v6.example", None),
        (4, "dns", "udp", "v6.example", None),
        (5, "http", "tcp", "/one", 200),
        (6, "http", "tcp", "/two?q=1", 200),
        (9, "http", "tcp", None, 404),
        (11, "tls", "tcp", None, None),
        (10, "http", "tcp", "/one", None),  # held for its response, emitted by finish() without a status
    ]
    by_frame = {e["soc"]["packet"]["frame"]: e for e in events}
    assert by_frame[3]["source"] == {"ip": "2001:db8::5", "port": 5353}
    assert by_frame[4]["dns"]["answers"][0]["data"] == "192.0.2.1"
    # an answer (sent from 2001:db8::5 port 53) names its receiver, the client, as source
    assert by_frame[4]["source"] == {"ip": "2001:db8::80", "port": 5353}
    assert by_frame[4]["destination"] == {"ip": "2001:db8::5", "port": 53}
    # the orphan response names the connection's client as source, like the paired events
    assert by_frame[9]["source"] == {"ip": "10.1.1.5", "port": 41999}
    assert by_frame[11]["tls"]["client"] == {"server_name": "example.com"}  # no fingerprint from a cut hello
    assert by_frame[11]["soc"]["tls"]["complete"] is False
    assert dict(extractor.stats.malformed) == {}
    frame_2 = int(next(iter(CaptureReader(capture))).data_offset[1])
    assert extractor.stats.samples["dns.tcp_split"] == [
        f"{capture} frame 2 at byte offset {frame_2}: 200-byte message continues past this segment"
    ]
    assert dict(extractor.stats.skipped) == {"dns.tcp_split": 1, "tcp_retransmission": 1}
    assert dict(extractor.notes) == {"http.response_without_request": 1, "http.request_without_response": 1,
                                     "tls.client_hello_split": 1}


def test_synthetic_dns_matches_tshark(capture: Path) -> None:
    result = tshark_fields(capture, ["dns.qry.name", "dns.id"], "dns", budget_s=60)
    assert result.complete
    # tshark puts both messages of frame 1 in one row; frame 2's cut message it waits for and never shows
    theirs = [(int(row[0]), name, int(ident, 16)) for row in result.rows
              for name, ident in zip(row[1].split("\x1f"), row[2].split("\x1f"), strict=True)]
    ours = [(e["soc"]["packet"]["frame"], e["dns"]["question"]["name"], e["dns"]["id"])
            for e in extract_file(capture) if e["network"]["protocol"] == "dns"]
    assert theirs == ours


def test_expire_releases_requests_by_capture_time(capture: Path) -> None:
    extractor = ProtocolExtractor(source=capture)
    for batch in CaptureReader(capture):
        extractor.process(batch)
    # frame 10 (t0 + 9 s) is still waiting for its response: not yet 30 s later, then released
    assert extractor.expire(int((T0 + 9 + 29) * 1e9)) == []
    released = extractor.expire(int((T0 + 9 + 31) * 1e9))
    assert [e["soc"]["packet"]["frame"] for e in released] == [10]
    assert extractor.finish() == []
