"""TLS ClientHello messages to ECS ``tls.*`` events with JA3 and JA4 fingerprints, Sigma category ``tls``.

Candidates are found by content on any TCP port (a handshake record whose first message is a ClientHello), so
STARTTLS, MySQL and SOCKS-wrapped handshakes are seen too. Only the first segment is read: a hello cut by the
segment end (large post-quantum key shares) still gives what was complete (often the SNI) but no fingerprint, and
is counted as ``tls.client_hello_split``.

- ``tls.version``: the highest version the client offers (``supported_versions``, else the hello's version);
  ECS means the negotiated one, which only the ServerHello knows; ``tls.version_protocol`` is ``tls``/``ssl``.
- ``tls.client.ja3``: MD5 of JA3 (Salesforce): ``version,ciphers,extensions,groups,point formats`` in wire order,
  decimal, GREASE values (RFC 8701) removed; the string itself is ``soc.tls.ja3_string``.
- ``tls.client.ja4``: JA4 TLS client fingerprint as FoxIO's ``technical_details/JA4.md`` v0.18.2 specifies it
  (its worked example is a test): ``t``, the offered version, ``d``/``i`` for an SNI extension or none, cipher
  and extension counts, first and last character of the first ALPN (``00`` without one); then the sorted cipher
  list and the sorted extension list (SNI and ALPN left out) with the signature algorithms in wire order, each
  SHA-256 truncated to 12; GREASE removed everywhere. An ALPN whose first or last byte is not alphanumeric gives
  the first and last hex digit, as FoxIO's later revision does (v0.18.2 does not say; ``ja4plus`` 1.4.0 differs
  there).
- No SigmaHQ rule has a ``tls`` log source; network detectors read ``tls.client.*`` and our own rules name
  ``category: tls``. The lists behind the fingerprints are under ``soc.tls`` (numbers, wire order).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from collectors.protocols.base import BatchView, Malformed, Packet, ProtocolParser, register
from soc.core.model import Event

EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B

VERSIONS = {0x0300: ("ssl", "3.0"), 0x0301: ("tls", "1.0"), 0x0302: ("tls", "1.1"), 0x0303: ("tls", "1.2"),
            0x0304: ("tls", "1.3")}
JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values: 0x0a0a, 0x1a1a, ... 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass(slots=True)
class ClientHello:
    """The fields of a ClientHello that fingerprints and events need, in wire order, GREASE kept."""

    version: int
    ciphers: list[int] = field(default_factory=list)
    extensions: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    point_formats: list[int] = field(default_factory=list)
    signature_algorithms: list[int] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    alpn: list[bytes] = field(default_factory=list)
    server_name: str | None = None
    complete: bool = True  # False: the segment ended inside the hello

    def offered_version(self) -> int:
        offered = [v for v in self.supported_versions if not is_grease(v)]
        return max(offered) if offered else self.version

    def ja3_string(self) -> str:
        def join(values: list[int]) -> str:
            return "-".join(str(v) for v in values if not is_grease(v))

        return ",".join([str(self.version), join(self.ciphers), join(self.extensions), join(self.groups),
                         "-".join(map(str, self.point_formats))])

    def ja3(self) -> str:
        return hashlib.md5(self.ja3_string().encode(), usedforsecurity=False).hexdigest()

    def ja4(self, transport: str = "t") -> str:
        ciphers = [c for c in self.ciphers if not is_grease(c)]
        extensions = [e for e in self.extensions if not is_grease(e)]
        part_a = "".join([
            transport,
            JA4_VERSIONS.get(self.offered_version(), "00"),
            "d" if EXT_SERVER_NAME in extensions else "i",
            f"{min(len(ciphers), 99):02d}",
            f"{min(len(extensions), 99):02d}",
            _ja4_alpn(self.alpn[0] if self.alpn else b""),
        ])
        cipher_text = ",".join(f"{c:04x}" for c in sorted(ciphers))
        hashed = sorted(e for e in extensions if e not in (EXT_SERVER_NAME, EXT_ALPN))
        ext_text = ",".join(f"{e:04x}" for e in hashed)
        signatures = [s for s in self.signature_algorithms if not is_grease(s)]
        if signatures:
            ext_text += "_" + ",".join(f"{s:04x}" for s in signatures)
        return f"{part_a}_{_sha12(cipher_text) if ciphers else '0' * 12}_{_sha12(ext_text) if hashed else '0' * 12}"


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _is_alnum(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _ja4_alpn(first: bytes) -> str:
    if not first:
        return "00"
    if _is_alnum(first[0]) and _is_alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    text = first.hex()
    return text[0] + text[-1]


class _Reader:
    """Bounds-checked reads over the hello; running off the end marks the hello as cut."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Cut
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(length_bytes), "big"))


class _Cut(Exception):
    """The segment ended inside the hello."""


def _u16_list(data: bytes) -> list[int]:
    if len(data) % 2:
        raise Malformed("tls.bad_length", f"list of 16-bit values with odd length {len(data)}")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def parse_client_hello(payload: bytes) -> ClientHello:
    """A TLS record carrying a ClientHello (the payload's first bytes) to :class:`ClientHello`."""
    if len(payload) < 9 or payload[0] != 0x16 or payload[5] != 1:
        raise Malformed("tls.not_client_hello", "payload does not start with a handshake record and ClientHello")
    record_end = 5 + int.from_bytes(payload[3:5], "big")
    reader = _Reader(payload[:record_end], 6)
    hello = ClientHello(version=0)
    try:
        body_end = reader.pos + 3 + reader.u24()
        hello.version = reader.u16()
        reader.take(32)  # random
        reader.vector(1)  # session id
        hello.ciphers = _u16_list(reader.vector(2))
        reader.vector(1)  # compression methods
        if reader.pos >= body_end:  # no extensions (SSL 3.0 style)
            return hello
        extensions_end = reader.pos + 2 + reader.u16()
        if extensions_end > body_end:
            raise Malformed("tls.bad_length", "extensions run past the ClientHello")
        while reader.pos < extensions_end:
            kind = reader.u16()
            body = reader.vector(2)
            hello.extensions.append(kind)
            _extension(hello, kind, body)
    except _Cut:
        if record_end > len(payload) or body_end > record_end:
            hello.complete = False  # cut by the segment (or record) end: the rest is in later bytes
            return hello
        raise Malformed("tls.bad_length", "a length inside the ClientHello runs past its record") from None
    return hello


def _extension(hello: ClientHello, kind: int, body: bytes) -> None:
    inner = _Reader(body, 0)
    try:
        if kind == EXT_SERVER_NAME and body:
            names = _Reader(inner.vector(2), 0)
            while names.pos < len(names.data):
                name_type, name = names.u8(), names.vector(2)
                if name_type == 0:
                    hello.server_name = name.decode("ascii", "backslashreplace")
                    break
        elif kind == EXT_SUPPORTED_GROUPS:
            hello.groups = _u16_list(inner.vector(2))
        elif kind == EXT_EC_POINT_FORMATS:
            hello.point_formats = list(inner.vector(1))
        elif kind == EXT_SIGNATURE_ALGORITHMS:
            hello.signature_algorithms = _u16_list(inner.vector(2))
        elif kind == EXT_SUPPORTED_VERSIONS:
            hello.supported_versions = _u16_list(inner.vector(1))
        elif kind == EXT_ALPN:
            protocols = _Reader(inner.vector(2), 0)
            while protocols.pos < len(protocols.data):
                hello.alpn.append(protocols.vector(1))
    except _Cut:
        raise Malformed("tls.bad_extension", f"extension 0x{kind:04x} is shorter than its contents say") from None


def hello_fields(hello: ClientHello) -> dict[str, Any]:
    """The ``tls`` ECS object and our ``soc.tls`` lists of one hello."""
    protocol, version = VERSIONS.get(hello.offered_version(), ("unknown", f"0x{hello.offered_version():04x}"))
    client: dict[str, Any] = {}
    if hello.server_name is not None:
        client["server_name"] = hello.server_name
    extra: dict[str, Any] = {
        "cipher_suites": hello.ciphers,
        "extensions": hello.extensions,
        "supported_groups": hello.groups,
        "ec_point_formats": hello.point_formats,
        "signature_algorithms": hello.signature_algorithms,
        "supported_versions": hello.supported_versions,
        "alpn": [p.decode("ascii", "backslashreplace") for p in hello.alpn],
        "complete": hello.complete,
    }
    if hello.complete:
        client["ja3"] = hello.ja3()
        client["ja4"] = hello.ja4()
        extra["ja3_string"] = hello.ja3_string()
    return {"tls": {"version": version, "version_protocol": protocol, "client": client}, "soc_tls": extra}


@register
class TlsParser(ProtocolParser):
    protocol: ClassVar[str] = "tls"

    def select(self, view: BatchView) -> np.ndarray:
        head = view.head
        return (view.tcp & (view.available >= 9) & (head[:, 0] == 0x16) & (head[:, 1] == 3) & (head[:, 2] <= 4)
                & (head[:, 5] == 1))

    def parse(self, packet: Packet) -> list[Event]:
        hello = parse_client_hello(packet.payload)
        fields = hello_fields(hello)
        event = packet.event("tls", "tls")
        event["tls"] = fields["tls"]
        event["soc"]["tls"] = fields["soc_tls"]
        if not hello.complete:
            self.notes["tls.client_hello_split"] += 1
        return [event]
