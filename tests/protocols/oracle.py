"""tshark as the oracle: the same records from tshark's dissection and from our events, keyed by frame number.

tshark runs with TCP, HTTP and TLS reassembly off, so it reports each message at its first segment as we do.
Rows outside what our parsers read are set aside by category, and the tests assert each category's cause:

- ``tunnelled``: two IP layers in one frame; the reader decodes the outer headers only.
- ``reassembled``: a datagram tshark rebuilt from IP fragments; we skip fragments (counted ``ip_fragment``).
- ``undecoded``: a frame the reader does not decode to IP (802.2 LLC/SNAP framing is read as not IP).
- ``retransmission``: a frame tshark flags as a TCP retransmission and does not dissect, which we parse when the
  original segment is not in the capture (a repeat of one we parsed is skipped by both).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.packets import CaptureReader
from collectors.protocols import ProtocolExtractor, extract_file
from collectors.protocols.budget import tshark_fields
from collectors.protocols.dns import class_name, type_name
from soc.core.model import DecodeStatus, Event, get_field

SEP = "\x1f"
TSHARK_BUDGET_S = 120.0
NO_REASSEMBLY = ("-o", "tcp.desegment_tcp_streams:FALSE", "-o", "http.desegment_headers:FALSE",
                 "-o", "http.desegment_body:FALSE", "-o", "tls.desegment_ssl_records:FALSE")

_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")
_REPLACEMENTS = re.compile("\ufffd+")

Records = dict[int, tuple[Any, ...]]


def as_tshark_text(name: str) -> str:
    """Our escaped name (``\\xNN`` for bytes outside printable ASCII) as tshark prints it: the raw bytes read as
    UTF-8 with invalid sequences replaced by U+FFFD. glib and Python cut invalid sequences differently (one
    U+FFFD or two for the same bytes), so a run of U+FFFD counts as one on both sides (:func:`squeeze`)."""
    raw = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name).encode("latin-1")
    return squeeze(raw.decode("utf-8", "replace"))


def squeeze(text: str) -> str:
    return _REPLACEMENTS.sub("\ufffd", text)


def split(value: str) -> list[str]:
    return value.split(SEP) if value else []


@dataclass
class Capture:
    """One capture run through our extractor, with what the comparison needs to know about its frames."""

    path: Path
    events: list[Event]
    extractor: ProtocolExtractor
    undecoded: dict[int, str] = field(default_factory=dict)  # frame -> reader status name

    @classmethod
    def load(cls, path: Path) -> Capture:
        extractor = ProtocolExtractor(source=path)
        events = list(extract_file(path, chunk_packets=4096, extractor=extractor))
        undecoded: dict[int, str] = {}
        for batch in CaptureReader(path):
            for row in (batch.status != DecodeStatus.OK).nonzero()[0].tolist():
                undecoded[batch.first_index + row + 1] = DecodeStatus(int(batch.status[row])).name
        return cls(path, events, extractor, undecoded)

    def of(self, dataset: str) -> list[Event]:
        return [e for e in self.events if e["event"]["dataset"] == dataset]

    def server_ports(self, dataset: str) -> set[int]:
        return {e["destination"]["port"] for e in self.of(dataset)}


@dataclass
class Comparison:
    """Expected (tshark) and ours, each keyed by frame, and tshark rows set aside by category."""

    expected: Records
    ours: Records
    set_aside: dict[str, set[int]]

    def differences(self) -> dict[int, tuple[Any, Any]]:
        return {f: (self.expected.get(f), self.ours.get(f)) for f in self.expected.keys() | self.ours.keys()
                if self.expected.get(f) != self.ours.get(f)}


Row = Callable[[list[str]], tuple[Any, ...] | None]


def tshark(capture: Capture, fields: list[str], display_filter: str, extra: tuple[str, ...] = (),
           row: Row = tuple) -> tuple[Records, dict[str, set[int]]]:
    """tshark rows by frame (``row`` turns the field values into the record), minus the set-aside categories."""
    result = tshark_fields(capture.path, [*fields, "ip.src", "ip.fragment"], display_filter,
                           budget_s=TSHARK_BUDGET_S, extra_args=(*NO_REASSEMBLY, *extra))
    assert result.complete, result.cut or result.error
    records: Records = {}
    aside: dict[str, set[int]] = {"tunnelled": set(), "reassembled": set(), "undecoded": set()}
    for values in result.rows:
        frame, src, fragments = int(values[0]), values[-2], values[-1]
        if len(split(src)) > 1:
            aside["tunnelled"].add(frame)
        elif fragments:
            aside["reassembled"].add(frame)
        elif frame in capture.undecoded:
            aside["undecoded"].add(frame)
        else:
            record = row(values[1:-2])
            if record is not None:
                records[frame] = record
    return records, aside


def retransmissions(capture: Capture, frames: set[int]) -> set[int]:
    """The frames among ``frames`` tshark flags as TCP retransmissions."""
    if not frames:
        return set()
    wanted = " || ".join(f"frame.number == {f}" for f in sorted(frames))
    result = tshark_fields(capture.path, [], f"tcp.analysis.retransmission && ({wanted})", budget_s=TSHARK_BUDGET_S)
    assert result.complete, result.cut or result.error
    return {int(values[0]) for values in result.rows}


def decode_as(ports: set[int], protocol: str) -> tuple[str, ...]:
    """tshark's Decode As for the ports we found ``protocol`` on (we find messages by content, tshark by port)."""
    return tuple(arg for port in sorted(ports) for arg in ("-d", f"tcp.port=={port},{protocol}"))


# --- DNS ------------------------------------------------------------------------------------------------------

DNS_FIELDS = ["dns.id", "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.qry.class", "dns.flags.rcode",
              "dns.count.answers", "dns.resp.name", "dns.resp.type", "dns.a", "dns.aaaa", "dns.cname"]
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}


def _dns_row(values: list[str]) -> tuple[Any, ...]:
    """tshark lists the records of all three sections in one field; the first ``dns.count.answers`` are the
    answer section, and its A/AAAA/CNAME data are the first values of ``dns.a``/``dns.aaaa``/``dns.cname``."""
    ident, response, qname, qtype, qclass, rcode, ancount, rnames, rtypes, a, aaaa, cname = values
    count = int(ancount) if ancount else 0
    names, types = split(rnames)[:count], [int(t) for t in split(rtypes)[:count]]
    is_response = response in ("1", "True")
    return (
        int(ident, 16),
        "answer" if is_response else "query",
        squeeze(split(qname)[0]) if qname else None,
        type_name(int(split(qtype)[0])) if qtype else None,
        class_name(int(split(qclass)[0], 0)) if qclass else None,
        int(rcode) if is_response else None,
        sorted(zip(map(squeeze, names), map(type_name, types), strict=True)) if is_response else [],
        sorted(split(a)[:types.count(1)] + split(aaaa)[:types.count(28)] + split(cname)[:types.count(5)])
        if is_response else [],
    )


def compare_dns(capture: Capture) -> Comparison:
    expected, aside = tshark(capture, DNS_FIELDS, "dns && (udp.port == 53 || tcp.port == 53)", row=_dns_row)
    ours: Records = {}
    for event in capture.of("soc.dns"):
        dns = event["dns"]
        answers, question = dns.get("answers", []), dns.get("question", {})
        ours[event["soc"]["packet"]["frame"]] = (
            dns["id"],
            dns["type"],
            as_tshark_text(question["name"]) if question else None,
            question.get("type"),
            question.get("class"),
            RCODES.get(dns["response_code"], dns["response_code"]) if "response_code" in dns else None,
            sorted((as_tshark_text(a["name"]), a["type"]) for a in answers),
            sorted(a["data"] for a in answers if a["type"] in ("A", "AAAA", "CNAME")),
        )
    return Comparison(expected, ours, aside)


# --- HTTP -----------------------------------------------------------------------------------------------------

HTTP_FIELDS = ["http.request.method", "http.request.uri", "http.host", "http.user_agent", "http.request.version",
               "http.response.code"]


def _http_row(values: list[str]) -> tuple[Any, ...]:
    method, uri, host, agent, version, code = values
    if method:
        return (method, uri, host.lower() or None, agent or None, version)
    return (int(code),)


def compare_http(capture: Capture) -> Comparison:
    """Requests (method, uri, Host header, user agent, version) and responses (status) by their frame.

    HTTP over UDP (SSDP's ``M-SEARCH``) is outside our parser: only TCP rows are read."""
    expected, aside = tshark(capture, HTTP_FIELDS, "tcp && (http.request || http.response)",
                             decode_as(capture.server_ports("soc.http"), "http"), row=_http_row)
    ours: Records = {}
    for event in capture.of("soc.http"):
        packet = event["soc"]["packet"]
        method = get_field(event, "http.request.method")
        if method:
            url = event["url"]
            host = url.get("domain")
            if host and "port" in url:
                host = f"{host}:{url['port']}"
            ours[packet["frame"]] = (method, url["original"], host, get_field(event, "user_agent.original"),
                                     "HTTP/" + event["http"]["version"] if "version" in event["http"] else "")
        code = get_field(event, "http.response.status_code")
        if code is not None:
            ours[packet.get("response_frame", packet["frame"])] = (code,)
    return Comparison(expected, ours, aside)


# --- TLS ------------------------------------------------------------------------------------------------------

TLS_FIELDS = ["tls.handshake.extensions_server_name", "tls.handshake.ja3", "tls.handshake.ja3_full"]


def compare_tls(capture: Capture) -> Comparison:
    """ClientHellos over TCP: TLS carried in UDP (DTLS, RDP-UDP, QUIC) is outside our parser."""
    expected, aside = tshark(capture, TLS_FIELDS, "tcp && tls.handshake.type == 1",
                             decode_as(capture.server_ports("soc.tls"), "tls"),
                             row=lambda v: (v[0] or None, split(v[1])[0], split(v[2])[0]))
    ours: Records = {
        event["soc"]["packet"]["frame"]: (
            get_field(event, "tls.client.server_name"),
            get_field(event, "tls.client.ja3"),
            get_field(event, "soc.tls.ja3_string"),
        )
        for event in capture.of("soc.tls")
    }
    return Comparison(expected, ours, aside)
