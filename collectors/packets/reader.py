"""Read a pcap or pcapng file as a stream of PacketBatch chunks over one memory map.

Memory stays bounded by the chunk size: the file is mapped, not read, and each chunk's arrays hold
``chunk_packets`` rows. Damage ends the stream at the last good record; ``reader.error`` then says where.
"""

from __future__ import annotations

import mmap
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collectors.packets import formats
from collectors.packets.decode import Frames, allocate_frames, decode_frames
from soc.core.errors import CaptureError
from soc.core.model import DecodeStatus, PacketBatch

_PCAP_MAGIC = {
    # magic as read little-endian -> (swapped, nanoseconds)
    0xA1B2C3D4: (False, False),
    0xA1B23C4D: (False, True),
    0xD4C3B2A1: (True, False),
    0x4D3CB2A1: (True, True),
}


@dataclass(slots=True)
class CaptureStats:
    packets: int = 0
    bytes_captured: int = 0
    by_status: Counter[str] = field(default_factory=Counter)


class CaptureReader:
    """Iterate a capture file as PacketBatch chunks.

    >>> reader = CaptureReader("trace.pcapng")
    >>> for batch in reader: ...
    >>> reader.error  # None, or a CaptureError naming the byte offset where the file stopped being readable
    """

    def __init__(self, path: str | os.PathLike[str], chunk_packets: int = 16384) -> None:
        self.path = Path(path)
        self.chunk_packets = chunk_packets
        self.stats = CaptureStats()
        self.error: CaptureError | None = None
        self.size = 0

    def _open(self) -> np.ndarray:
        try:
            with open(self.path, "rb") as handle:
                self.size = os.fstat(handle.fileno()).st_size
                if self.size == 0:
                    raise CaptureError("empty file, not a capture", path=str(self.path), offset=0)
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise CaptureError("no such file", path=str(self.path)) from None
        except IsADirectoryError:
            raise CaptureError("is a directory, not a capture file", path=str(self.path)) from None
        except PermissionError:
            raise CaptureError("permission denied", path=str(self.path)) from None
        except OSError as exc:
            raise CaptureError(f"cannot read: {exc.strerror or exc}", path=str(self.path)) from None
        return np.frombuffer(mapped, dtype=np.uint8)

    def __iter__(self) -> Iterator[PacketBatch]:
        buf = self._open()
        if self.size < 4:
            raise CaptureError("too short to be a capture", path=str(self.path), offset=0)
        magic = int.from_bytes(bytes(buf[:4]), "little")
        if magic == formats.PCAPNG_SHB:
            yield from self._pcapng(buf)
        elif magic in _PCAP_MAGIC:
            yield from self._pcap(buf, *_PCAP_MAGIC[magic])
        else:
            raise CaptureError(
                f"not a pcap or pcapng file (magic 0x{magic:08x})", path=str(self.path), offset=0
            )

    def _pcap(self, buf: np.ndarray, swapped: bool, nanoseconds: bool) -> Iterator[PacketBatch]:
        if self.size < 24:
            raise CaptureError("pcap global header cut short", path=str(self.path), offset=0)
        # the link type's upper bits may hold FCS information (pcap spec); the type is the low 16 bits
        linktype = int.from_bytes(bytes(buf[20:24]), "big" if swapped else "little") & 0xFFFF
        frac_to_ns = 1 if nanoseconds else 1000
        pos = 24
        while True:
            frames = allocate_frames(self.chunk_packets)
            n, pos, stop = formats.index_pcap(buf, pos, swapped, frac_to_ns, linktype, *frames[:5])
            if n:
                yield self._batch(buf, frames, n)
            if stop != formats.STOP_FULL:
                self._stopped(stop, pos)
                return

    def _pcapng(self, buf: np.ndarray) -> Iterator[PacketBatch]:
        state = np.array([-1, 0], dtype=np.int64)
        interfaces = np.zeros((formats.MAX_INTERFACES, 4), dtype=np.int64)
        pos = 0
        while True:
            frames = allocate_frames(self.chunk_packets)
            n, pos, stop = formats.index_pcapng(buf, pos, state, interfaces, *frames[:5])
            if n:
                yield self._batch(buf, frames, n)
            if stop != formats.STOP_FULL:
                self._stopped(stop, pos)
                return

    def _stopped(self, stop: int, pos: int) -> None:
        if stop != formats.STOP_END:
            self.error = CaptureError(
                f"{formats.STOP_REASONS[stop]}; {self.stats.packets} packets before it were read",
                path=str(self.path),
                offset=pos,
            )

    def _batch(self, buf: np.ndarray, f: Frames, n: int) -> PacketBatch:
        decode_frames(
            buf, f.data_offset, f.caplen, f.linktype, f.status, f.vlan, f.ethertype, f.l3_offset, f.ip_version,
            f.src_ip, f.dst_ip, f.protocol, f.src_port, f.dst_port, f.tcp_flags, f.tcp_window, f.tcp_seq, f.ip_flags,
            f.payload_offset, f.payload_len, f.status_counts, n,
        )
        columns = {name: getattr(f, name)[:n] for name in Frames._fields if name != "status_counts"}
        batch = PacketBatch(buffer=buf, **columns, first_index=self.stats.packets)
        counts = f.status_counts
        self.stats.packets += n
        self.stats.bytes_captured += int(batch.caplen.sum())
        for code in np.flatnonzero(counts).tolist():
            self.stats.by_status[DecodeStatus(code).name.lower()] += int(counts[code])
        return batch
