"""Capture file formats: walk pcap and pcapng records in a memory-mapped buffer (numba, no copies).

Each indexer fills preallocated arrays with one row per packet (timestamp, captured and wire length, frame offset,
link type) and stops at the end of the buffer, at ``max_packets``, or at the first record it cannot trust; it then
returns where it stopped and why, so the reader can report the byte offset and keep what came before.
"""

from __future__ import annotations

import numpy as np

from soc.core.kernels import kernel, prefetch

# Why an indexer stopped.
STOP_END = 0  # clean end of file
STOP_FULL = 1  # output arrays full: call again from the returned position
STOP_TRUNCATED_HEADER = 2
STOP_TRUNCATED_DATA = 3
STOP_BAD_LENGTH = 4
STOP_BAD_BLOCK = 5
STOP_NO_SECTION = 6
STOP_TOO_MANY_INTERFACES = 7
STOP_UNKNOWN_INTERFACE = 8

STOP_REASONS = {
    STOP_TRUNCATED_HEADER: "record header cut short (file truncated?)",
    STOP_TRUNCATED_DATA: "packet data cut short (file truncated?)",
    STOP_BAD_LENGTH: "impossible record length",
    STOP_BAD_BLOCK: "malformed pcapng block",
    STOP_NO_SECTION: "pcapng data before any section header",
    STOP_TOO_MANY_INTERFACES: "more than 256 interfaces in one pcapng section",
    STOP_UNKNOWN_INTERFACE: "packet names an interface that was not described",
}

# A record longer than this is corruption, not a packet (Wireshark uses 256 KiB as its usual maximum snaplen).
MAX_RECORD = 1 << 24
MAX_INTERFACES = 256
# how far ahead of the record being read the indexers prefetch (measured on the 166 MB mix: 1-16 KiB all help,
# 4 KiB most; the walk from record to record is otherwise one cache miss after another)
PREFETCH_AHEAD = 4096

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D


@kernel(inline=True)
def _u8(buf: np.ndarray, pos: int) -> int:
    """The byte at ``pos`` (in bounds: callers check). Indexed unsigned: a signed index makes numba correct it for
    negative values, two instructions per byte read, and that stops LLVM from merging neighbouring byte reads into
    one load."""
    return np.int64(buf[np.uint64(pos)])


@kernel(inline=True)
def read_u16(buf: np.ndarray, pos: int, swapped: bool) -> int:
    if swapped:
        return (_u8(buf, pos) << 8) | _u8(buf, pos + 1)
    return _u8(buf, pos) | (_u8(buf, pos + 1) << 8)


@kernel(inline=True)
def read_u32(buf: np.ndarray, pos: int, swapped: bool) -> int:
    if swapped:
        return (
            (_u8(buf, pos) << 24)
            | (_u8(buf, pos + 1) << 16)
            | (_u8(buf, pos + 2) << 8)
            | _u8(buf, pos + 3)
        )
    return (
        _u8(buf, pos)
        | (_u8(buf, pos + 1) << 8)
        | (_u8(buf, pos + 2) << 16)
        | (_u8(buf, pos + 3) << 24)
    )


@kernel("UniTuple(i8, 3)(buffer, i8, b1, i8, i8, i8[::1], u4[::1], u4[::1], i8[::1], u2[::1])")
def index_pcap(
    buf: np.ndarray,
    pos: int,
    swapped: bool,
    frac_to_ns: int,
    linktype: int,
    ts_ns: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    data_offset: np.ndarray,
    linktypes: np.ndarray,
) -> tuple[int, int, int]:
    """Classic pcap records from ``pos``. Returns (packets, next position, STOP_*)."""
    size = buf.shape[0]
    capacity = ts_ns.shape[0]
    n = 0
    fetched = pos
    while True:
        if pos == size:
            return n, pos, STOP_END
        if n == capacity:
            return n, pos, STOP_FULL
        ahead = min(pos + PREFETCH_AHEAD, size)
        while fetched < ahead:
            prefetch(buf, fetched)
            fetched += 64
        if pos + 16 > size:
            return n, pos, STOP_TRUNCATED_HEADER
        seconds = read_u32(buf, pos, swapped)
        fraction = read_u32(buf, pos + 4, swapped)
        included = read_u32(buf, pos + 8, swapped)
        original = read_u32(buf, pos + 12, swapped)
        if included > MAX_RECORD:
            return n, pos, STOP_BAD_LENGTH
        if pos + 16 + included > size:
            return n, pos, STOP_TRUNCATED_DATA
        ts_ns[n] = seconds * 1_000_000_000 + fraction * frac_to_ns
        caplen[n] = included
        wirelen[n] = max(original, included)
        data_offset[n] = pos + 16
        linktypes[n] = linktype
        n += 1
        pos += 16 + included


@kernel()
def _ticks_to_ns(ticks: int, binary: int, exponent: int) -> int:
    if binary:
        whole = ticks >> exponent
        rest = ticks & ((1 << exponent) - 1)
        return whole * 1_000_000_000 + ((rest * 1_000_000_000) >> exponent)
    if exponent <= 9:
        return ticks * 10 ** (9 - exponent)
    return ticks // 10 ** (exponent - 9)


@kernel()
def _read_interface(buf: np.ndarray, body: int, end: int, swapped: bool, state: np.ndarray, ifaces: np.ndarray) -> int:
    """Record one Interface Description Block; returns a STOP_* code (STOP_END means fine)."""
    count = state[1]
    if count >= MAX_INTERFACES:
        return STOP_TOO_MANY_INTERFACES
    if body + 8 > end:
        return STOP_BAD_BLOCK
    ifaces[count, 0] = read_u16(buf, body, swapped)  # link type
    ifaces[count, 1] = 0  # resolution is a power of ten ...
    ifaces[count, 2] = 6  # ... microseconds unless if_tsresol says otherwise
    ifaces[count, 3] = 0  # if_tsoffset, seconds
    opt = body + 8
    while opt + 4 <= end:
        code = read_u16(buf, opt, swapped)
        length = read_u16(buf, opt + 2, swapped)
        if code == 0 or opt + 4 + length > end:
            break
        if code == 9 and length >= 1:
            value = _u8(buf, opt + 4)
            binary = 1 if value & 0x80 else 0
            exponent = value & 0x7F
            # finer than 2^-32 or 10^-18 s overflows 64-bit arithmetic; no capture tool writes it
            if exponent > (32 if binary else 18):
                return STOP_BAD_BLOCK
            ifaces[count, 1] = binary
            ifaces[count, 2] = exponent
        elif code == 14 and length >= 8:
            low = read_u32(buf, opt + 4, swapped)
            high = read_u32(buf, opt + 8, swapped)
            ifaces[count, 3] = (low << 32) | high if swapped else (high << 32) | low
        opt += 4 + ((length + 3) & ~3)
    state[1] = count + 1
    return STOP_END


@kernel("UniTuple(i8, 3)(buffer, i8, i8[::1], i8[:, ::1], i8[::1], u4[::1], u4[::1], i8[::1], u2[::1])")
def index_pcapng(
    buf: np.ndarray,
    pos: int,
    state: np.ndarray,
    ifaces: np.ndarray,
    ts_ns: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    data_offset: np.ndarray,
    linktypes: np.ndarray,
) -> tuple[int, int, int]:
    """pcapng blocks from ``pos``. ``state`` = [byte order swapped (-1 before the first section), interfaces];
    ``ifaces`` rows = [link type, binary resolution, resolution exponent, offset seconds]. Both carry over
    between calls. Returns (packets, next position, STOP_*)."""
    size = buf.shape[0]
    capacity = ts_ns.shape[0]
    n = 0
    fetched = pos
    while True:
        if pos == size:
            return n, pos, STOP_END
        if n == capacity:
            return n, pos, STOP_FULL
        ahead = min(pos + PREFETCH_AHEAD, size)
        while fetched < ahead:
            prefetch(buf, fetched)
            fetched += 64
        if pos + 12 > size:
            return n, pos, STOP_TRUNCATED_HEADER
        if read_u32(buf, pos, False) == PCAPNG_SHB:
            magic = read_u32(buf, pos + 8, False)
            if magic == PCAPNG_BYTE_ORDER_MAGIC:
                state[0] = 0
            elif read_u32(buf, pos + 8, True) == PCAPNG_BYTE_ORDER_MAGIC:
                state[0] = 1
            else:
                return n, pos, STOP_BAD_BLOCK
            state[1] = 0  # a new section forgets the interfaces of the previous one
        if state[0] < 0:
            return n, pos, STOP_NO_SECTION
        swapped = state[0] == 1
        block_type = read_u32(buf, pos, swapped)
        total = read_u32(buf, pos + 4, swapped)
        if total < 12 or total % 4 != 0 or total > MAX_RECORD:
            return n, pos, STOP_BAD_BLOCK
        if pos + total > size:
            return n, pos, STOP_TRUNCATED_DATA
        body = pos + 8
        end = pos + total - 4
        if block_type == 1:
            code = _read_interface(buf, body, end, swapped, state, ifaces)
            if code != STOP_END:
                return n, pos, code
        elif block_type == 6 or block_type == 2:
            if block_type == 6:
                if body + 20 > end:
                    return n, pos, STOP_BAD_BLOCK
                iface = read_u32(buf, body, swapped)
            else:  # obsolete Packet Block: 16-bit interface id and drop count
                if body + 20 > end:
                    return n, pos, STOP_BAD_BLOCK
                iface = read_u16(buf, body, swapped)
            if iface >= state[1]:
                return n, pos, STOP_UNKNOWN_INTERFACE
            ticks = (read_u32(buf, body + 4, swapped) << 32) | read_u32(buf, body + 8, swapped)
            included = read_u32(buf, body + 12, swapped)
            original = read_u32(buf, body + 16, swapped)
            if body + 20 + included > end:
                return n, pos, STOP_BAD_LENGTH
            ts_ns[n] = _ticks_to_ns(ticks, ifaces[iface, 1], ifaces[iface, 2]) + ifaces[iface, 3] * 1_000_000_000
            caplen[n] = included
            wirelen[n] = max(original, included)
            data_offset[n] = body + 20
            linktypes[n] = ifaces[iface, 0]
            n += 1
        elif block_type == 3:  # Simple Packet Block: interface 0, no timestamp
            if state[1] == 0:
                return n, pos, STOP_UNKNOWN_INTERFACE
            original = read_u32(buf, body, swapped)
            included = min(original, end - body - 4)
            ts_ns[n] = 0
            caplen[n] = included
            wirelen[n] = original
            data_offset[n] = body + 4
            linktypes[n] = ifaces[0, 0]
            n += 1
        # every other block type (statistics, name resolution, custom, ...) is skipped
        pos += total
