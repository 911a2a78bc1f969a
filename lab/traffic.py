"""Packet builders for the lab: whole TCP conversations, UDP exchanges, DNS and ARP, collected with their times so
a scenario can be written to one pcap in time order.

scapy builds the protocol messages (DNS, ARP, the datagram quoted in ICMP errors) and writes the pcap; the
Ethernet/IPv4/TCP/UDP headers of the bulk of the traffic are packed with ``struct`` because scapy spends about a
millisecond per packet, which would make a five-minute scenario take a minute to generate.
Bulk transfers are written the way a sensor with a short snap length records them: headers only, with the
frame's length on the wire kept, so a 20 MB transfer costs kilobytes of pcap and still counts 20 MB in flows.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import RawPcapWriter

from collectors.flows.events import transport_name

_NS = 1_000_000_000
MSS = 1448
ETHERNET_LINKTYPE = 1
BULK_SEGMENTS = 8  # transfers longer than this many segments are written headers-only (snap length) ...
BULK_SEGMENT = 64_000  # ... in 64 kB segments, as a sensor on the sending host sees them (segmentation offload)
_FILL = b"\x17" * MSS
_TCP_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def mac_of(ip: str) -> str:
    """A stable, locally administered MAC per address, so ARP tables in the lab are reproducible."""
    digest = hashlib.sha256(ip.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def flow_key(src: str, sport: int, dst: str, dport: int, protocol: int) -> str:
    """The label form of a flow: the same text the detectors put in their evidence."""
    return f"{src}:{sport}->{dst}:{dport}/{transport_name(protocol)}"


@dataclass(slots=True)
class Frame:
    ts_ns: int
    data: bytes
    wirelen: int


@dataclass
class Capture:
    """Frames of one scenario, in any order until written. ``gateway`` is the router every off-site packet
    crosses, so external addresses are reached through its MAC, as on a real LAN segment."""

    gateway: str
    local: list[ipaddress.IPv4Network]
    frames: list[Frame] = field(default_factory=list)

    def mac_for(self, ip: str) -> str:
        address = ipaddress.ip_address(ip)
        return mac_of(ip) if any(address in net for net in self.local) else mac_of(self.gateway)

    def add(self, ts_ns: int, data: bytes, wirelen: int | None = None) -> None:
        self.frames.append(Frame(ts_ns, data, wirelen if wirelen is not None else len(data)))

    def ip_frame(self, src: str, dst: str, protocol: int, l4: bytes, payload_len: int = 0,
                 ident: int = 0) -> bytes:
        """Ethernet + IPv4 around a transport header (and payload); ``payload_len`` extra bytes are on the wire
        but not in ``l4`` (a snap-length capture), and count in the IP total length."""
        total = 20 + len(l4) + payload_len
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64, protocol, 0,
                             socket.inet_aton(src), socket.inet_aton(dst))
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        ether = _mac_bytes(self.mac_for(dst)) + _mac_bytes(self.mac_for(src)) + b"\x08\x00"
        return ether + header + l4

    def segment(self, ts_ns: int, src: str, sport: int, dst: str, dport: int, flags: str, seq: int = 0,
                ack: int = 0, window: int = 502, payload: bytes = b"", snapped: int = 0) -> None:
        """One TCP segment; ``snapped`` payload bytes were on the wire but are not kept."""
        bits = sum(_TCP_BITS[c] for c in flags)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, bits, window, 0,
                          0) + payload
        frame = self.ip_frame(src, dst, 6, tcp, snapped, ident=sport)
        self.add(ts_ns, frame, len(frame) + snapped)

    def datagram(self, ts_ns: int, src: str, sport: int, dst: str, dport: int, payload: bytes) -> None:
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        self.add(ts_ns, self.ip_frame(src, dst, 17, udp, ident=sport))

    def write(self, path: Path) -> int:
        self.frames.sort(key=lambda f: f.ts_ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = RawPcapWriter(str(path), linktype=ETHERNET_LINKTYPE, nano=True)
        try:
            writer._write_header(None)  # an empty scenario is still a valid pcap
            for frame in self.frames:
                sec, nsec = divmod(frame.ts_ns, _NS)
                writer.write_packet(frame.data, sec=sec, usec=nsec, caplen=len(frame.data), wirelen=frame.wirelen)
        finally:
            writer.close()
        return len(self.frames)

    # --- conversations ---------------------------------------------------------------------------------------

    def tcp(self, t0: int, client: str, cport: int, server: str, sport: int,
            exchanges: Sequence[tuple[bool, int]] = (), rtt_ns: int = 2_000_000, answer: str = "accept",
            close: str = "fin", gap_ns: int = 5_000_000) -> int:
        """One TCP connection from ``client``; ``exchanges`` are (client speaks?, bytes) in order.

        ``answer``: ``accept`` (SYN/ACK), ``reset`` (closed port: RST/ACK), ``silent`` (filtered, no answer).
        ``close``: ``fin`` (both sides FIN), ``rst`` (client aborts), ``half`` (client RST right after SYN/ACK,
        as a raw-socket SYN scanner does), ``abandon`` (client never completes the handshake: spoofed SYNs),
        ``none`` (left open). Returns the time of the last packet.
        """
        cseq, sseq = (cport * 7919) & 0xFFFFFFFF, (sport * 104729 + cport) & 0xFFFFFFFF
        t = t0
        self.segment(t, client, cport, server, sport, "S", cseq, 0, 64240)
        if answer == "silent":
            return t
        t += rtt_ns // 2
        if answer == "reset":
            self.segment(t, server, sport, client, cport, "RA", 0, cseq + 1, 0)
            return t
        self.segment(t, server, sport, client, cport, "SA", sseq, cseq + 1, 65160)
        cseq, sseq = cseq + 1, sseq + 1
        t += rtt_ns // 2
        if close == "half":
            self.segment(t, client, cport, server, sport, "R", cseq, 0, 0)
            return t
        if close == "abandon":
            return t
        self.segment(t, client, cport, server, sport, "A", cseq, sseq)
        ends = {True: (client, cport), False: (server, sport)}
        for client_speaks, size in exchanges:
            t += gap_ns
            (a, a_port), (b, b_port) = ends[client_speaks], ends[not client_speaks]
            seq, ack = (cseq, sseq) if client_speaks else (sseq, cseq)
            bulk = size > BULK_SEGMENTS * MSS
            step = BULK_SEGMENT if bulk else MSS
            left = size
            while left > 0:
                chunk = min(step, left)
                left -= chunk
                if bulk:  # headers only, as a snap-length capture keeps them
                    self.segment(t, a, a_port, b, b_port, "PA", seq, ack, snapped=chunk)
                else:
                    self.segment(t, a, a_port, b, b_port, "PA", seq, ack, payload=_FILL[:chunk])
                seq += chunk
                t += 200_000
            if client_speaks:
                cseq = seq
            else:
                sseq = seq
            t += rtt_ns // 2
            self.segment(t, b, b_port, a, a_port, "A", sseq if client_speaks else cseq, seq)
        t += gap_ns
        if close == "rst":
            self.segment(t, client, cport, server, sport, "RA", cseq, sseq, 0)
        elif close == "fin":
            self.segment(t, client, cport, server, sport, "FA", cseq, sseq)
            t += rtt_ns // 2
            self.segment(t, server, sport, client, cport, "FA", sseq, cseq + 1)
            t += rtt_ns // 2
            self.segment(t, client, cport, server, sport, "A", cseq + 1, sseq + 1)
        return t

    def udp(self, t0: int, client: str, cport: int, server: str, sport: int, request: bytes,
            reply: bytes | None, rtt_ns: int = 1_000_000) -> int:
        """One datagram and its answer (``reply`` None: unanswered)."""
        self.datagram(t0, client, cport, server, sport, request)
        if reply is None:
            return t0
        self.datagram(t0 + rtt_ns, server, sport, client, cport, reply)
        return t0 + rtt_ns

    def port_unreachable(self, t: int, client: str, cport: int, server: str, sport: int) -> None:
        """The ICMP answer of a closed UDP port, quoting the probe."""
        quoted = bytes(IP(src=client, dst=server, ttl=64, id=cport) / UDP(sport=cport, dport=sport))
        body = struct.pack("!BBHI", 3, 3, 0, 0) + quoted
        icmp = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
        self.add(t, self.ip_frame(server, client, 1, icmp))

    def dns(self, t0: int, client: str, cport: int, resolver: str, name: str, qtype: str = "A",
            answer: str | None = None, txid: int = 0) -> int:
        query = bytes(DNS(id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype)))
        if answer is None:
            reply = bytes(DNS(id=txid, qr=1, ra=1, rcode=3, qd=DNSQR(qname=name, qtype=qtype)))
        else:
            reply = bytes(DNS(id=txid, qr=1, ra=1, qd=DNSQR(qname=name, qtype=qtype),
                              an=DNSRR(rrname=name, type=qtype, ttl=60, rdata=answer)))
        return self.udp(t0, client, cport, resolver, 53, query, reply)

    def arp_reply(self, t: int, sender_ip: str, sender_mac: str, target_ip: str) -> None:
        self.add(t, bytes(Ether(src=sender_mac, dst=mac_of(target_ip))
                          / ARP(op=2, hwsrc=sender_mac, psrc=sender_ip, hwdst=mac_of(target_ip), pdst=target_ip)))

    def arp_exchange(self, t: int, asker: str, target: str) -> None:
        """Who-has ``target``, then its genuine answer."""
        self.add(t, bytes(Ether(src=mac_of(asker), dst="ff:ff:ff:ff:ff:ff")
                          / ARP(op=1, hwsrc=mac_of(asker), psrc=asker, hwdst="00:00:00:00:00:00", pdst=target)))
        self.arp_reply(t + 300_000, target, mac_of(target), asker)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))
