"""The streaming front of the protocol parsers: PacketBatch in, DNS/HTTP/TLS events out, counters kept.

Per batch, array operations pick the candidate rows (ports, and the first payload bytes for content sniffing);
Python runs once per candidate message, never per packet. IP fragments are not reassembled: they are counted
(``ip_fragment``) and skipped. Payloads are read up to the captured length (a parser that fails on a
payload the snaplen cut counts ``<protocol>.snaplen_cut`` under ``skipped``, not ``malformed``).

>>> extractor = ProtocolExtractor(source="trace.pcap")
>>> for batch in CaptureReader("trace.pcap"):
...     events = extractor.process(batch)
>>> events += extractor.finish()  # requests still waiting for their response
>>> extractor.stats.malformed  # Counter({'dns.pointer_loop': 2, ...})
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from collectors.packets import CaptureReader

# importing the parser modules registers them in PARSERS
from collectors.protocols import dns, http, tls  # noqa: F401
from collectors.protocols.base import (
    HEAD_BYTES,
    PARSERS,
    BatchView,
    ExtractorStats,
    Incomplete,
    Malformed,
    Packet,
    ProtocolParser,
    log,
)
from soc.core.errors import ConfigError
from soc.core.model import DecodeStatus, Event, IpFlag, PacketBatch

_HEAD_RANGE = np.arange(HEAD_BYTES, dtype=np.int64)
MAX_SEEN_SEGMENTS = 65536  # (connection, sequence number) of recent TCP messages, to skip retransmissions


def batch_view(batch: PacketBatch) -> BatchView:
    """Usable rows, captured payload lengths and the first payload bytes of every row, by array operations."""
    fragment = (batch.ip_flags & np.uint8(IpFlag.FRAGMENT)) != 0
    captured_end = batch.data_offset + batch.caplen.astype(np.int64)
    available = np.minimum(batch.payload_len.astype(np.int64), captured_end - batch.payload_offset)
    available = np.maximum(available, 0)
    usable = (batch.status == DecodeStatus.OK) & ~fragment & (available > 0)
    usable &= (batch.protocol == 6) | (batch.protocol == 17)
    head = np.zeros((len(batch), HEAD_BYTES), dtype=np.uint8)
    rows = np.flatnonzero(usable)
    if rows.size:
        positions = batch.payload_offset[rows, None] + _HEAD_RANGE
        inside = available[rows, None] > _HEAD_RANGE
        np.minimum(positions, batch.buffer.shape[0] - 1, out=positions)
        head[rows] = np.where(inside, batch.buffer[positions], 0)
    return BatchView(batch=batch, usable=usable, available=available, head=head)


class ProtocolExtractor:
    """Runs the registered parsers over PacketBatch chunks of one capture or live ring.

    ``parsers``: instances to use (default: one of each registered protocol with its defaults).
    ``source``: the capture's name, used in the messages about malformed payloads.
    """

    def __init__(self, parsers: Iterable[ProtocolParser] | None = None, source: str | os.PathLike[str] = "") -> None:
        self.parsers = list(parsers) if parsers is not None else [cls() for cls in PARSERS.values()]
        self.source = str(source)
        self.stats = ExtractorStats()
        self._seen: dict[tuple[bytes, int, int, str], None] = {}  # insertion-ordered: the oldest is evicted first

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], source: str = "") -> ProtocolExtractor:
        """``{"protocols": ["dns", "http"], "http": {"home_networks": [...], "patience_s": 30},
        "dns": {"ports": [53, 5353]}}``; every key optional."""
        names = config.get("protocols", list(PARSERS))
        parsers: list[ProtocolParser] = []
        for name in names:
            if name not in PARSERS:
                raise ConfigError(f"unknown protocol {name!r}: use {', '.join(PARSERS)}", key="protocols")
            options = dict(config.get(name) or {})
            for key in ("ports", "home_networks"):
                if key in options:
                    options[key] = tuple(options[key])
            try:
                parsers.append(PARSERS[name](**options))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad options for {name}: {exc}", key=name) from None
        return cls(parsers, source)

    def process(self, batch: PacketBatch) -> list[Event]:
        """Events of one batch (and requests of earlier batches whose wait ended), in frame order."""
        self.stats.packets += len(batch)
        if not len(batch):
            return []
        view = batch_view(batch)
        self.stats.skip("ip_fragment", int(np.count_nonzero(batch.ip_flags & np.uint8(IpFlag.FRAGMENT))))
        events: list[Event] = []
        buffer = batch.buffer
        for parser in self.parsers:
            rows = np.flatnonzero(parser.select(view))
            if not rows.size:
                continue
            self.stats.candidates[parser.protocol] += int(rows.size)
            starts = batch.payload_offset[rows].tolist()
            lengths = view.available[rows].tolist()
            cut = (view.available[rows] < batch.payload_len[rows]).tolist()
            tcp = (batch.protocol[rows] == 6).tolist()
            for row, start, length, was_cut, is_tcp in zip(rows.tolist(), starts, lengths, cut, tcp, strict=True):
                if is_tcp and self._retransmitted(batch, row, parser.protocol):
                    self.stats.skip("tcp_retransmission")
                    continue
                packet = Packet(batch, row, buffer[start:start + length].tobytes(), self.source)
                try:
                    events.extend(parser.parse(packet))
                except Malformed as error:
                    # a parser that ran out of the bytes the capture kept says nothing about the message
                    counted = Incomplete(f"{parser.protocol}.snaplen_cut", error.message) if was_cut else error
                    self.stats.malformed_payload(counted, packet)
        now = int(batch.ts_ns[-1])
        for parser in self.parsers:
            events.extend(parser.flush(now))
        events.sort(key=lambda e: e["soc"]["packet"]["frame"])
        self._count(events)
        return events

    def _retransmitted(self, batch: PacketBatch, row: int, protocol: str) -> bool:
        """A TCP message whose connection and sequence number were parsed before: the same bytes again (a
        retransmission, or the same trace seen twice on a mirrored port), which tshark does not dissect either."""
        seq = int(batch.tcp_seq[row])
        if seq < 0:
            return False
        key = (batch.src_ip[row].tobytes() + batch.dst_ip[row].tobytes(),
               (int(batch.src_port[row]) << 16) | int(batch.dst_port[row]), seq, protocol)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > MAX_SEEN_SEGMENTS:
            del self._seen[next(iter(self._seen))]
        return False

    def finish(self) -> list[Event]:
        """At the end of a capture: every event a parser still holds."""
        return self.expire(None)

    def expire(self, now_ns: int | None) -> list[Event]:
        """Events held longer than their parser's patience at time ``now_ns`` (all of them for None): a live tap
        that has gone quiet calls this on a timer, since ``process`` only looks at the clock of its batches."""
        events = [event for parser in self.parsers for event in parser.flush(now_ns)]
        self._count(events)
        return events

    @property
    def notes(self) -> Counter[str]:
        """Events made from incomplete input or left unpaired, by reason, over all parsers."""
        total: Counter[str] = Counter()
        for parser in self.parsers:
            total.update(parser.notes)
        return total

    def _count(self, events: list[Event]) -> None:
        for event in events:
            self.stats.events[event["event"]["dataset"]] += 1


def extract_file(path: str | os.PathLike[str], chunk_packets: int = 65536,
                 extractor: ProtocolExtractor | None = None) -> Iterator[Event]:
    """Every protocol event of one capture file. A capture damaged part way is read up to the damage, which
    ``extractor.stats.capture_error`` then names (file and byte offset); one that cannot be opened raises
    :class:`soc.core.errors.CaptureError`."""
    extractor = extractor or ProtocolExtractor(source=path)
    reader = CaptureReader(path, chunk_packets=chunk_packets)
    for batch in reader:
        yield from extractor.process(batch)
    yield from extractor.finish()
    if reader.error is not None:
        extractor.stats.capture_error = str(reader.error)
        log.warning("%s", reader.error)
