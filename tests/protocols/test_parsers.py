"""The DNS, HTTP and TLS parsers on crafted and damaged input, JA3/JA4 against hand-computed values and the
``ja4plus`` package, and whole events from real captures checked field by field."""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.packets import CaptureReader
from collectors.protocols import Malformed, ProtocolExtractor, extract_file
from collectors.protocols.dns import parse_message, read_name
from collectors.protocols.http import parse_request, parse_response
from collectors.protocols.tls import ClientHello, is_grease, parse_client_hello
from soc.core.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
ATTACKS = SHARED / "pcaps" / "attacks"
MIX_30K = SHARED / "pcaps" / "throughput" / "ordinary_mix_first30k.pcap"


# --- DNS ------------------------------------------------------------------------------------------------------


def dns_header(ident: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0) -> bytes:
    return struct.pack(">HHHHHH", ident, flags, qd, an, 0, 0)


def test_dns_compression_pointers_are_followed() -> None:
    question = b"\x03www\x07example\x03com\x00" + struct.pack(">HH", 1, 1)
    answer = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 300, 6) + b"\x03cdn\xc0\x10"  # CNAME cdn.example.com
    answer += b"\xc0\x2d" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 7])
    dns = parse_message(dns_header(flags=0x8183, an=2) + question + answer)
    assert dns["type"] == "answer"
    assert dns["response_code"] == "NXDOMAIN"
    assert dns["header_flags"] == ["RD", "RA"]
    assert dns["question"] == {"name": "www.example.com", "type": "A", "class": "IN"}
    assert dns["answers"] == [
        {"name": "www.example.com", "type": "CNAME", "class": "IN", "ttl": 300, "data": "cdn.example.com"},
        {"name": "cdn.example.com", "type": "A", "class": "IN", "ttl": 60, "data": "192.0.2.7"},
    ]
    assert dns["resolved_ip"] == ["192.0.2.7"]


def test_dns_pointer_loops_end_as_malformed() -> None:
    self_loop = dns_header() + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    with pytest.raises(Malformed) as error:
        parse_message(self_loop)
    assert error.value.reason == "dns.pointer_loop"
    # two labels pointing at each other: 12 -> 16 -> 12
    ping_pong = dns_header() + b"\x01a\xc0\x10" + b"\x01b\xc0\x0c"
    with pytest.raises(Malformed) as error:
        read_name(ping_pong, 12)
    assert error.value.reason == "dns.pointer_loop"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00\x01", "dns.truncated"),
        (dns_header() + b"\x05ab", "dns.truncated"),
        (dns_header() + b"\x40abc\x00\x00\x01\x00\x01", "dns.bad_label"),
        (dns_header() + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63 + b"\x3f" + b"a" * 63
         + b"\x00\x00\x01\x00\x01", "dns.name_too_long"),
        (dns_header(flags=0x8180, an=1) + b"\x00\x00\x01\x00\x01" + b"\x00" + struct.pack(">HHIH", 16, 1, 0, 3)
         + b"\x05ab", "dns.bad_rdata"),
    ],
)
def test_dns_malformed_reasons(message: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as error:
        parse_message(message)
    assert error.value.reason == reason


def test_dns_binary_labels_are_escaped_losslessly() -> None:
    dns = parse_message(dns_header() + b"\x04a\xe4\x00b\x03sea\x00" + struct.pack(">HH", 10, 1))
    assert dns["question"] == {"name": "a\\xe4\\x00b.sea", "type": "NULL", "class": "IN"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_dns_parser_only_raises_malformed(data: bytes) -> None:
    try:
        parse_message(data)
        parse_message(dns_header(an=3) + data)
    except Malformed:
        pass


# --- HTTP -----------------------------------------------------------------------------------------------------


def test_http_request_fields() -> None:
    request = (b"GET http://Proxy.Example:8080/a/b.PHP?x=1&y=2 HTTP/1.1\r\nHost: ignored.example\r\n"
               b"User-Agent: curl/8.0\r\nReferer: http://r.example/\r\nContent-Length: 12\r\n\r\nbody")
    assert parse_request(request) == {
        "http": {"version": "1.1",
                 "request": {"method": "GET", "referrer": "http://r.example/", "body": {"bytes": 12}}},
        "url": {"original": "http://Proxy.Example:8080/a/b.PHP?x=1&y=2", "scheme": "http", "path": "/a/b.PHP",
                "extension": "php", "query": "x=1&y=2", "domain": "proxy.example", "port": 8080},
        "user_agent": {"original": "curl/8.0"},
    }
    assert parse_request(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n")["url"] == {
        "original": "[2001:db8::1]:443", "domain": "2001:db8::1", "port": 443}


def test_http_request_line_cut_by_the_segment() -> None:
    fields = parse_request(b"SEARCH /" + b"A" * 1400)
    assert fields["http"] == {"request": {"method": "SEARCH"}}
    assert fields["url"]["original"] == "/" + "A" * 1400
    assert fields["soc"] == {"http": {"request_line_cut": True}}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"GET / SPDY/3\r\n\r\n", "http.bad_version"),
        (b"GETX / HTTP/1.1\r\n\r\n", "http.bad_request_line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "http.bad_status_line"),
        (b"HTTP/2.0 200 OK\r\n\r\n", "http.bad_version"),
    ],
)
def test_http_malformed_reasons(payload: bytes, reason: str) -> None:
    parse = parse_response if payload.startswith(b"HTTP/") else parse_request
    with pytest.raises(Malformed) as error:
        parse(payload)
    assert error.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"GET ", b"POST ", b"HTTP/1.1 ", b"CONNECT "]), st.binary(max_size=300))
def test_http_parsers_only_raise_malformed(prefix: bytes, data: bytes) -> None:
    with contextlib.suppress(Malformed):
        (parse_response if prefix.startswith(b"HTTP") else parse_request)(prefix + data)


# --- TLS ------------------------------------------------------------------------------------------------------


def extension(kind: int, body: bytes) -> bytes:
    return struct.pack(">HH", kind, len(body)) + body


def u16_vector(values: list[int]) -> bytes:
    return struct.pack(">H", 2 * len(values)) + b"".join(struct.pack(">H", v) for v in values)


def client_hello(extensions: bytes, ciphers: tuple[int, ...] = (0x0A0A, 0x1301, 0xC02F)) -> bytes:
    body = struct.pack(">H", 0x0303) + bytes(32) + b"\x00" + u16_vector(list(ciphers)) + b"\x01\x00"
    body += struct.pack(">H", len(extensions)) + extensions
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake


SNI = b"\x00\x0e\x00\x00\x0bexample.com"
HELLO = client_hello(
    extension(0x1A1A, b"")  # GREASE
    + extension(0x0000, SNI)
    + extension(0x000A, u16_vector([0x2A2A, 0x001D, 0x0017]))
    + extension(0x000B, b"\x01\x00")
    + extension(0x0010, b"\x00\x0c\x02h2\x08http/1.1")
    + extension(0x000D, u16_vector([0x0403, 0x0804]))
    + extension(0x002B, b"\x06\x3a\x3a\x03\x04\x03\x03")
)


def test_ja3_and_ja4_of_a_hand_built_hello() -> None:
    hello = parse_client_hello(HELLO)
    assert hello.server_name == "example.com"
    assert hello.alpn == [b"h2", b"http/1.1"]
    # JA3 by hand: version 771; ciphers, extensions and groups in wire order without GREASE; point format 0
    assert hello.ja3_string() == "771,4865-49199,0-10-11-16-13-43,29-23,0"
    assert hello.ja3() == hashlib.md5(b"771,4865-49199,0-10-11-16-13-43,29-23,0").hexdigest()
    # JA4 by hand: TLS 1.3 offered, SNI present, 2 ciphers, 6 extensions, ALPN h2; sorted ciphers; sorted
    # extensions without SNI and ALPN, then the signature algorithms in wire order
    ciphers = hashlib.sha256(b"1301,c02f").hexdigest()[:12]
    extensions = hashlib.sha256(b"000a,000b,000d,002b_0403,0804").hexdigest()[:12]
    assert hello.ja4() == f"t13d0206h2_{ciphers}_{extensions}"


def hello_from_lists(ciphers: list[int], extensions: list[int], groups: list[int],
                     signatures: list[int]) -> bytes:
    """A ClientHello offering TLS 1.3 and 1.2, SNI example.com and ALPN h2 with the given lists in wire order;
    extensions without a listed body are sent empty."""
    bodies = {
        0x0000: SNI,
        0x0010: b"\x00\x03\x02h2",
        0x000D: u16_vector(signatures),
        0x002B: b"\x04\x03\x04\x03\x03",
        0x000A: u16_vector(groups),
        0x000B: b"\x01\x00",
    }
    return client_hello(b"".join(extension(kind, bodies.get(kind, b"")) for kind in extensions), tuple(ciphers))


SIGNATURES = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
CHROME_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
                  0x009D, 0x002F, 0x0035]


def test_ja4_worked_example_of_the_spec() -> None:
    """FoxIO technical_details/JA4.md (v0.18.2), section Example: the JA4_ro lists give t13d1516h2_8daaf6152771_
    e5627efa2ab1; without signature algorithms the extension part is 6d807ffa2a79."""
    extensions = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005, 0x0023, 0x0012, 0x002B,
                  0xFF01, 0x000B, 0x000A, 0x0015]
    hello = parse_client_hello(hello_from_lists(CHROME_CIPHERS, extensions, [0x001D], SIGNATURES))
    assert hello.ja4() == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    hello.signature_algorithms = []
    assert hello.ja4() == "t13d1516h2_8daaf6152771_6d807ffa2a79"


def test_ja3_and_ja4_of_a_published_chrome_hello() -> None:
    """A Chrome 143 hello as a public fingerprinting page reported it (JA3 text and MD5, JA4 and its raw lists),
    with GREASE values added back at the places browsers put them: both fingerprints must come out equal."""
    extensions = [0x5A5A, 45, 51, 16, 65037, 23, 17613, 0, 11, 10, 43, 65281, 35, 18, 5, 13, 27, 0x3A3A]
    groups = [0x8A8A, 4588, 29, 23, 24]
    hello = parse_client_hello(hello_from_lists([0x0A0A, *CHROME_CIPHERS], extensions, groups, SIGNATURES))
    assert hello.ja3_string() == ("771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
                                  "45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0")
    assert hello.ja3() == "98487aa16281980e7d1120d399efb6a4"
    assert hello.ja4() == "t13d1516h2_8daaf6152771_d8a2da3f94cd"


def test_ja4_edge_cases() -> None:
    bare = parse_client_hello(client_hello(b"", ciphers=()))
    assert bare.ja4() == "t12i000000_000000000000_000000000000"
    odd_alpn = ClientHello(version=0x0303, ciphers=[0x002F], alpn=[b"\xab-\xcd"], extensions=[0x0010])
    assert odd_alpn.ja4().split("_")[0] == "t12i0101ad"
    assert [v for v in range(0x10000) if is_grease(v)] == [0x0A0A + 0x1010 * k for k in range(16)]


def test_hello_cut_by_the_segment_keeps_what_is_complete() -> None:
    hello = parse_client_hello(HELLO[:80])
    assert not hello.complete
    assert hello.server_name == "example.com"
    with pytest.raises(Malformed) as error:
        parse_client_hello(HELLO[:5] + b"\x02" + HELLO[6:])
    assert error.value.reason == "tls.not_client_hello"


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=6, max_value=len(HELLO) - 1), st.binary(min_size=1, max_size=8))
def test_tls_parser_only_raises_malformed(at: int, junk: bytes) -> None:
    with contextlib.suppress(Malformed):
        parse_client_hello(HELLO[:at] + junk + HELLO[at + len(junk):])


def hello_payloads(path: Path) -> dict[int, bytes]:
    """frame -> payload of every TLS event's frame, read through the capture reader."""
    frames = {e["soc"]["packet"]["frame"] for e in extract_file(path) if e["event"]["dataset"] == "soc.tls"}
    out: dict[int, bytes] = {}
    for batch in CaptureReader(path):
        for row in range(len(batch)):
            if batch.first_index + row + 1 in frames:
                start = int(batch.payload_offset[row])
                out[batch.first_index + row + 1] = batch.buffer[start:start + int(batch.payload_len[row])].tobytes()
    return out


@pytest.mark.parametrize("path", [MIX_30K, ATTACKS / "StopDDoS__amp.dns.RRSIG.fragmented.pcap"], ids=lambda p: p.name)
def test_ja4_equals_the_ja4plus_package(path: Path) -> None:
    tls_utils = pytest.importorskip("ja4plus.utils.tls_utils", reason="the JA4 oracle is the ja4plus package")
    from ja4plus.fingerprinters.ja4 import generate_ja4

    payloads = hello_payloads(path)
    assert payloads
    for frame, payload in payloads.items():
        theirs = generate_ja4(tls_utils.parse_tls_handshake(payload))
        assert parse_client_hello(payload).ja4() == theirs, f"frame {frame}"


# --- events and the extractor ---------------------------------------------------------------------------------


def events_by_frame(path: Path) -> dict[int, dict]:
    return {e["soc"]["packet"]["frame"]: e for e in extract_file(path)}


def test_dns_event_in_full() -> None:
    event = events_by_frame(ATTACKS / "ntop__dns_exfiltration.pcap")[1]
    name = ("dnscat.546b03f50000000000a6023ed4df184d6ac5c2628b47714fdee584fed739.5a03b5b1e1aa8f8fdb1bbe8d5e04952141"
            "f7d4f82c7e3b06dcc8b87fad7a.19e4d098dc8c618f8d81cfeb02")
    assert event == {
        "@timestamp": "2020-02-06T08:35:46.717893Z",
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "dataset": "soc.dns"},
        "source": {"ip": "192.168.220.56", "port": 56373},
        "destination": {"ip": "192.168.203.167", "port": 53},
        "network": {"transport": "udp", "protocol": "dns"},
        "soc": {"logsource": {"product": None, "category": "dns", "service": None},
                "packet": {"frame": 1, "offset": 40}},
        "dns": {"id": 14621, "type": "query", "op_code": "QUERY", "header_flags": ["RD"],
                "question": {"name": name, "type": "MX", "class": "IN"},
                "answers_count": 0, "authorities_count": 0, "additionals_count": 0},
    }


def test_http_event_pairs_request_and_response() -> None:
    event = events_by_frame(ATTACKS / "chrissanders__http_dvwa_sqlinjection.pcapng")[4]
    assert event["soc"] == {"logsource": {"product": None, "category": "webserver", "service": None},
                            "packet": {"frame": 4, "offset": 592, "response_frame": 6}}
    assert event["source"] == {"ip": "10.2.2.101", "port": 58856}
    assert event["destination"] == {"ip": "10.2.2.104", "port": 80}
    assert event["http"] == {
        "version": "1.1",
        "request": {"method": "GET", "referrer": "http://10.2.2.104/dvwa/vulnerabilities/sqli/",
                    "cookie": "security=low; PHPSESSID=8tokslnu6t07ru35q4vbsc8tk6"},
        "response": {"status_code": 200, "mime_type": "text/html;charset=utf-8", "body": {"bytes": 1500}},
    }
    assert event["url"] == {"original": "/dvwa/vulnerabilities/sqli/?id=%25%27+or+%270%27%3D%270&Submit=Submit",
                            "path": "/dvwa/vulnerabilities/sqli/", "query": "id=%25%27+or+%270%27%3D%270&Submit=Submit",
                            "domain": "10.2.2.104"}


def test_http_logsource_by_destination() -> None:
    """Requests to a home network are the server's log (webserver); requests going out are a proxy's."""
    categories = {(e["destination"]["ip"], e["soc"]["logsource"]["category"])
                  for e in extract_file(ATTACKS / "chrissanders__cryptowall4_c2.pcapng")}
    assert categories == {("184.170.149.44", "proxy")}
    inside = ProtocolExtractor.from_dict({"http": {"home_networks": ["184.170.0.0/16"]}})
    events = list(extract_file(ATTACKS / "chrissanders__cryptowall4_c2.pcapng", extractor=inside))
    assert {e["soc"]["logsource"]["category"] for e in events} == {"webserver"}


def test_tls_event_fields() -> None:
    event = events_by_frame(ATTACKS / "StopDDoS__amp.dns.RRSIG.fragmented.pcap")[896]
    assert event["soc"]["logsource"] == {"product": None, "category": "tls", "service": None}
    # the cipher part of JA4 is the one FoxIO's README shows for Chrome (t13d1516h2_8daaf6152771_...)
    assert event["tls"] == {"version": "1.3", "version_protocol": "tls", "client": {
        "server_name": "node24.ferox.host", "ja3": "e1d8b04eeb8ef3954ec4f49267a783ef",
        "ja4": "t13d1515h2_8daaf6152771_f37e75b10bcc"}}
    assert event["destination"] == {"ip": "10.10.10.10", "port": 8080}
    assert event["soc"]["tls"]["alpn"] == ["h2", "http/1.1"]
    assert event["soc"]["tls"]["ja3_string"].startswith("771,4865-4866-4867-49195-")


def test_extractor_survives_damaged_payloads(tmp_path: Path) -> None:
    """Random bytes written over the DNS and HTTP payloads of real captures: counted, never fatal."""
    rng = random.Random(7)
    for name in ("ntop__dns-tunnel-iodine.pcap", "esnet-security__nmap_80_all.pcap"):
        source = ATTACKS / name
        data = bytearray(source.read_bytes())
        for batch in CaptureReader(source):
            for row in np.flatnonzero(batch.payload_len > 0).tolist():
                start, length = int(batch.payload_offset[row]), int(batch.payload_len[row])
                for _ in range(rng.randint(1, 6)):
                    data[start + rng.randrange(length)] = rng.randrange(256)
        damaged = tmp_path / name
        damaged.write_bytes(bytes(data))
        extractor = ProtocolExtractor(source=damaged)
        events = list(extract_file(damaged, extractor=extractor))
        stats = extractor.stats
        assert sum(stats.candidates.values()) > 0
        assert sum(stats.malformed.values()) > 0
        assert sum(stats.events.values()) == len(events)
        for reason, messages in stats.samples.items():
            assert all(str(damaged) in m and "byte offset" in m for m in messages), reason


def test_from_dict_rejects_unknown_protocols_and_options() -> None:
    with pytest.raises(ConfigError, match="unknown protocol 'smtp'"):
        ProtocolExtractor.from_dict({"protocols": ["dns", "smtp"]})
    with pytest.raises(ConfigError, match="bad options for dns"):
        ProtocolExtractor.from_dict({"dns": {"port": 53}})
    only_dns = ProtocolExtractor.from_dict({"protocols": ["dns"], "dns": {"ports": [53, 5353]}})
    assert [p.protocol for p in only_dns.parsers] == ["dns"]


def test_capture_cut_short_gives_events_up_to_the_damage(tmp_path: Path) -> None:
    source = ATTACKS / "ntop__dns-tunnel-iodine.pcap"
    whole = list(extract_file(source))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(source.read_bytes()[:40_000])
    extractor = ProtocolExtractor(source=cut)
    events = list(extract_file(cut, extractor=extractor))
    assert 0 < len(events) < len(whole)
    assert events == whole[:len(events)]
    assert extractor.stats.capture_error is not None
    assert extractor.stats.capture_error.startswith(f"{cut} at byte offset ")
    assert extractor.stats.as_dict()["capture_error"] == extractor.stats.capture_error
