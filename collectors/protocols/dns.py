"""DNS messages (RFC 1035) over UDP and TCP port 53 to ECS ``dns.*`` events of Sigma category ``dns``.

One event per message: queries have ``dns.type: query``, responses ``answer`` with ``dns.answers``. In both,
``source`` is the client and ``destination`` the server, as in our HTTP events. Only the answer section is
decoded; authority and additional records are counted, so the OPT record's DO bit and extended rcode are not
reported. Names keep printable ASCII (0x20-0x7e) and write any other byte as ``\\xNN``, as Zeek does, so a
tunnel's binary labels stay one readable, lossless string. Over TCP every whole length-prefixed message in the
segment is read; one cut by the segment end is counted (``dns.tcp_split``), not reassembled.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

import numpy as np

from collectors.protocols.base import BatchView, Incomplete, Malformed, Packet, ProtocolParser, register
from soc.core.model import Event

PORT = 53
MAX_NAME = 255  # RFC 1035 2.3.4: longer is malformed, and it bounds the work per name
MAX_POINTERS = 64  # a name has at most 127 labels; more jumps than this is a loop or an attack
MAX_ANSWERS = 64  # answers decoded per message; the rest are counted in dns.answers_count only

TYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX",
    16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC", 33: "SRV", 35: "NAPTR",
    36: "KX", 37: "CERT", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG",
    47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP",
    59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF",
    249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI",
    257: "CAA",
}
CLASSES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
    7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
}
OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
# ECS dns.header_flags, by bit of the flags word
FLAGS = (("AA", 0x0400), ("TC", 0x0200), ("RD", 0x0100), ("RA", 0x0080), ("AD", 0x0020), ("CD", 0x0010))

# byte -> its text in a name: printable ASCII as itself, the rest as \xNN (RFC 3597-style presentation, as Zeek)
_BYTE_TEXT = [chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}" for b in range(256)]


def type_name(code: int) -> str:
    return TYPES.get(code) or f"TYPE{code}"  # RFC 3597 names for unknown types


def class_name(code: int) -> str:
    return CLASSES.get(code) or f"CLASS{code}"


def label_text(raw: bytes) -> str:
    try:
        text = raw.decode("ascii")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "".join(_BYTE_TEXT[b] for b in raw)


def read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` and the offset just after it in the message (after the first pointer, if any).

    Compression pointers (RFC 1035 4.1.4) are followed at most :data:`MAX_POINTERS` times and only to offsets
    not visited before, so a pointer loop ends as ``dns.pointer_loop`` instead of running forever."""
    labels: list[str] = []
    size = 0
    end = -1
    visited: set[int] = set()
    while True:
        if pos >= len(msg):
            raise Malformed("dns.truncated", f"name runs past the message end at offset {pos}")
        length = msg[pos]
        if length == 0:
            pos += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(msg):
                raise Malformed("dns.truncated", f"compression pointer cut at offset {pos}")
            target = ((length & 0x3F) << 8) | msg[pos + 1]
            if end < 0:
                end = pos + 2
            if target in visited or len(visited) >= MAX_POINTERS:
                raise Malformed("dns.pointer_loop", f"compression pointer loop at offset {pos} (to {target})")
            visited.add(target)
            pos = target
            continue
        if kind:
            raise Malformed("dns.bad_label", f"label type 0x{kind:02x} at offset {pos}")
        start = pos + 1
        pos = start + length
        if pos > len(msg):
            raise Malformed("dns.truncated", f"label at offset {start - 1} runs past the message end")
        size += length + 1
        if size > MAX_NAME:
            raise Malformed("dns.name_too_long", f"name longer than {MAX_NAME} bytes at offset {start - 1}")
        labels.append(label_text(msg[start:pos]))
    return (".".join(labels) if labels else "."), (end if end >= 0 else pos)


def _u16(msg: bytes, pos: int) -> int:
    return (msg[pos] << 8) | msg[pos + 1]


def _rdata(msg: bytes, rtype: int, start: int, length: int) -> str:
    """Presentation text of the rdata of common types; other types as lowercase hex."""
    rdata = msg[start:start + length]
    if rtype == 1 and length == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == 28 and length == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (2, 5, 12, 39):  # NS, CNAME, PTR, DNAME
        return read_name(msg, start)[0]
    if rtype == 15 and length >= 3:  # MX
        return f"{_u16(msg, start)} {read_name(msg, start + 2)[0]}"
    if rtype == 33 and length >= 7:  # SRV
        return f"{_u16(msg, start)} {_u16(msg, start + 2)} {_u16(msg, start + 4)} {read_name(msg, start + 6)[0]}"
    if rtype == 6:  # SOA
        mname, pos = read_name(msg, start)
        rname, pos = read_name(msg, pos)
        if pos + 20 > start + length:
            raise Malformed("dns.bad_rdata", f"SOA record cut at offset {start}")
        numbers = [int.from_bytes(msg[pos + 4 * k:pos + 4 * k + 4], "big") for k in range(5)]
        return " ".join([mname, rname, *map(str, numbers)])
    if rtype in (16, 99):  # TXT, SPF: the character-strings concatenated, as SPF and DKIM readers do (RFC 7208)
        parts: list[str] = []
        pos, stop = start, start + length
        while pos < stop:
            n = rdata[pos - start]
            if pos + 1 + n > stop:
                raise Malformed("dns.bad_rdata", f"TXT string at offset {pos} runs past its record")
            parts.append(label_text(msg[pos + 1:pos + 1 + n]))
            pos += 1 + n
        return "".join(parts)
    return rdata.hex()


def parse_message(msg: bytes) -> dict[str, Any]:
    """One DNS message to the ECS ``dns`` object."""
    if len(msg) < 12:
        raise Malformed("dns.truncated", f"{len(msg)} bytes, shorter than the 12-byte header")
    ident, flags = _u16(msg, 0), _u16(msg, 2)
    qdcount, ancount, nscount, arcount = _u16(msg, 4), _u16(msg, 6), _u16(msg, 8), _u16(msg, 10)
    response = bool(flags & 0x8000)
    opcode = (flags >> 11) & 0xF
    dns: dict[str, Any] = {
        "id": ident,
        "type": "answer" if response else "query",
        "op_code": OPCODES.get(opcode, str(opcode)),
        "header_flags": [name for name, bit in FLAGS if flags & bit],
    }
    if response:
        rcode = flags & 0xF
        dns["response_code"] = RCODES.get(rcode, f"RCODE{rcode}")
    pos = 12
    for q in range(qdcount):
        name, pos = read_name(msg, pos)
        if pos + 4 > len(msg):
            raise Malformed("dns.truncated", f"question type and class cut at offset {pos}")
        if q == 0:  # ECS has one question; more than one is unheard of outside attacks
            dns["question"] = {"name": name, "type": type_name(_u16(msg, pos)), "class": class_name(_u16(msg, pos + 2))}
        pos += 4
    answers: list[dict[str, Any]] = []
    resolved: list[str] = []
    for _ in range(min(ancount, MAX_ANSWERS)):
        name, pos = read_name(msg, pos)
        if pos + 10 > len(msg):
            raise Malformed("dns.truncated", f"resource record header cut at offset {pos}")
        rtype, rclass = _u16(msg, pos), _u16(msg, pos + 2)
        ttl = int.from_bytes(msg[pos + 4:pos + 8], "big")
        length = _u16(msg, pos + 8)
        pos += 10
        if pos + length > len(msg):
            raise Malformed("dns.truncated", f"rdata of {length} bytes at offset {pos} runs past the message end")
        data = _rdata(msg, rtype, pos, length)
        pos += length
        answers.append({"name": name, "type": type_name(rtype), "class": class_name(rclass), "ttl": ttl,
                        "data": data})
        if rtype in (1, 28):
            resolved.append(data)
    if response:
        dns["answers"] = answers
        if resolved:
            dns["resolved_ip"] = resolved
    dns["answers_count"] = ancount  # soc addition: ECS has no count, tunnels show in it
    dns["authorities_count"] = nscount
    dns["additionals_count"] = arcount
    return dns


@register
class DnsParser(ProtocolParser):
    protocol: ClassVar[str] = "dns"

    def __init__(self, ports: tuple[int, ...] = (PORT,)) -> None:
        super().__init__()
        self.ports = ports

    def select(self, view: BatchView) -> np.ndarray:
        return (view.udp | view.tcp) & view.port(self.ports)

    def parse(self, packet: Packet) -> list[Event]:
        if packet.transport == 17:
            return [self._event(packet, parse_message(packet.payload))]
        events: list[Event] = []
        data, pos = packet.payload, 0
        while pos + 2 <= len(data):
            length = _u16(data, pos)
            if pos + 2 + length > len(data):
                if not events:
                    raise Incomplete("dns.tcp_split", f"{length}-byte message continues past this segment")
                break
            events.append(self._event(packet, parse_message(data[pos + 2:pos + 2 + length])))
            pos += 2 + length
        return events

    def _event(self, packet: Packet, dns: dict[str, Any]) -> Event:
        event = packet.event("dns", "dns")
        if dns["type"] == "answer":
            event["source"], event["destination"] = event["destination"], event["source"]
        event["dns"] = dns
        return event
