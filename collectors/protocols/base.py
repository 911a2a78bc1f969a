"""What the protocol parsers share: the packet view a parser reads, the error it raises, the counters and the
registry of parsers by protocol name.

A parser sees one transport payload at a time (:class:`Packet`), builds events with :meth:`Packet.event`, which
fills the fields every protocol event carries, and raises :class:`Malformed` for bytes it cannot read; the
extractor counts the reason and goes on.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from soc.core.errors import SocError
from soc.core.model import Event, PacketBatch, ip_to_str, ns_to_iso

log = logging.getLogger("collectors.protocols")

# a capture talks to few addresses many times over; ipaddress formatting is most of the cost of an event
address_text = functools.lru_cache(maxsize=65536)(lambda raw: ip_to_str(raw))

MAX_SAMPLES_PER_REASON = 5  # messages kept per reason: enough to find the frames in Wireshark, bounded on floods


class Malformed(SocError):
    """A payload a parser cannot read. ``reason`` is the counter key (``dns.truncated``, ``tls.bad_length``...)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class Incomplete(Malformed):
    """A message that continues past the bytes we have (a later TCP segment, the snaplen): not bad input, and
    counted under ``skipped``, not ``malformed``."""


def logsource(category: str) -> dict[str, str | None]:
    return {"product": None, "category": category, "service": None}


@dataclass(slots=True)
class Packet:
    """One candidate packet: its payload bytes and where it is, read from a :class:`PacketBatch` row."""

    batch: PacketBatch
    row: int
    payload: bytes
    source: str = ""  # the capture's name, for messages

    @property
    def frame(self) -> int:
        """Frame number as Wireshark counts it (1-based)."""
        return self.batch.first_index + self.row + 1

    @property
    def offset(self) -> int:
        """Byte offset of the frame in the capture file (the batch buffer is the whole file)."""
        return int(self.batch.data_offset[self.row])

    @property
    def ts_ns(self) -> int:
        return int(self.batch.ts_ns[self.row])

    @property
    def transport(self) -> int:
        """6 (TCP) or 17 (UDP): the extractor hands parsers nothing else."""
        return int(self.batch.protocol[self.row])

    @property
    def src_port(self) -> int:
        return int(self.batch.src_port[self.row])

    @property
    def dst_port(self) -> int:
        return int(self.batch.dst_port[self.row])

    @property
    def src_ip(self) -> bytes:
        return self.batch.src_ip[self.row].tobytes()

    @property
    def dst_ip(self) -> bytes:
        return self.batch.dst_ip[self.row].tobytes()

    def where(self) -> str:
        return f"{self.source or 'capture'} frame {self.frame} at byte offset {self.offset}"

    def event(self, protocol: str, category: str) -> Event:
        """The fields every protocol event has; the parser adds its own (``dns``, ``http``, ``url``, ``tls``)."""
        return {
            "@timestamp": ns_to_iso(self.ts_ns),
            "event": {"kind": "event", "category": ["network"], "type": ["protocol"],
                      "dataset": f"soc.{protocol}"},
            "source": {"ip": address_text(self.src_ip), "port": self.src_port},
            "destination": {"ip": address_text(self.dst_ip), "port": self.dst_port},
            "network": {"transport": "tcp" if self.transport == 6 else "udp", "protocol": protocol},
            "soc": {"logsource": logsource(category), "packet": {"frame": self.frame, "offset": self.offset}},
        }


@dataclass
class ExtractorStats:
    """Counters of one extractor: packets looked at, events by dataset, malformed and skipped by reason."""

    packets: int = 0  # packets in the batches given to process()
    candidates: Counter[str] = field(default_factory=Counter)  # by protocol: payloads handed to a parser
    events: Counter[str] = field(default_factory=Counter)  # by event.dataset
    malformed: Counter[str] = field(default_factory=Counter)  # by reason: bytes that claim a protocol but break it
    skipped: Counter[str] = field(default_factory=Counter)  # by reason: not parsed here (fragments, cut messages...)
    samples: dict[str, list[str]] = field(default_factory=dict)  # reason -> first messages naming frame and offset
    capture_error: str | None = None  # where the capture itself stopped being readable (extract_file sets it)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready counters, for run summaries."""
        return {"packets": self.packets, "candidates": dict(self.candidates), "events": dict(self.events),
                "malformed": dict(self.malformed), "skipped": dict(self.skipped), "samples": self.samples,
                "capture_error": self.capture_error}

    def malformed_payload(self, error: Malformed, packet: Packet) -> None:
        counter = self.skipped if isinstance(error, Incomplete) else self.malformed
        counter[error.reason] += 1
        self._sample(error.reason, f"{packet.where()}: {error.message}")

    def skip(self, reason: str, count: int = 1, where: str = "") -> None:
        if count <= 0:
            return
        self.skipped[reason] += count
        if where:
            self._sample(reason, where)

    def _sample(self, reason: str, message: str) -> None:
        kept = self.samples.setdefault(reason, [])
        if len(kept) < MAX_SAMPLES_PER_REASON:
            kept.append(message)
            log.warning("%s (%s)", message, reason)


class ProtocolParser(ABC):
    """One application protocol. ``select`` picks candidate rows of a batch with array operations, so Python runs
    once per message; ``parse`` turns one payload into events; ``flush`` hands over events a parser held back."""

    protocol: ClassVar[str]

    def __init__(self) -> None:
        self.notes: Counter[str] = Counter()  # events made from incomplete input, by reason (a cut hello, ...)

    @abstractmethod
    def select(self, view: BatchView) -> np.ndarray:
        """Boolean mask over the batch rows this parser wants."""

    @abstractmethod
    def parse(self, packet: Packet) -> list[Event]:
        """Events of one payload; raises :class:`Malformed` for bytes that claim the protocol but break it."""

    def flush(self, now_ns: int | None = None) -> list[Event]:
        """Held-back events older than the parser's patience at capture time ``now_ns``, or all when None."""
        return []


@dataclass(slots=True)
class BatchView:
    """Arrays every parser's ``select`` needs, computed once per batch.

    ``head`` holds the first :data:`HEAD_BYTES` bytes of each payload (zero-filled past ``available``), so content
    sniffing is one vectorised comparison instead of a Python call per packet.
    """

    batch: PacketBatch
    usable: np.ndarray  # bool: decoded, not a later IP fragment, has payload
    available: np.ndarray  # int64: payload bytes actually captured (payload_len cut at the frame's caplen)
    head: np.ndarray  # uint8 (n, HEAD_BYTES)

    @property
    def tcp(self) -> np.ndarray:
        return self.usable & (self.batch.protocol == 6)

    @property
    def udp(self) -> np.ndarray:
        return self.usable & (self.batch.protocol == 17)

    def port(self, ports: tuple[int, ...]) -> np.ndarray:
        wanted = np.array(ports, dtype=np.uint16)
        return np.isin(self.batch.src_port, wanted) | np.isin(self.batch.dst_port, wanted)

    def head_u32(self) -> np.ndarray:
        """The first four payload bytes as one big-endian integer per row."""
        h = self.head.astype(np.uint32)
        return (h[:, 0] << 24) | (h[:, 1] << 16) | (h[:, 2] << 8) | h[:, 3]


HEAD_BYTES = 8

PARSERS: dict[str, type[ProtocolParser]] = {}


def register(cls: type[ProtocolParser]) -> type[ProtocolParser]:
    PARSERS[cls.protocol] = cls
    return cls
