"""Decode link, network and transport headers of indexed frames into the columns of a chunk (numba).

Link types: Ethernet (with any number of 802.1Q / 802.1ad / QinQ tags, 802.2 LLC/SNAP framing, PPPoE sessions,
MPLS label stacks), Linux cooked capture v1 and v2, raw IP, BSD loopback. Network: IPv4 (options, fragments
marked, a total length of 0 read as "the rest of the frame" as segmentation offload leaves it), IPv6 (extension
headers walked), ARP kept as its own record (ethertype 0x0806, ``l3_offset`` points at it). Transport: TCP (with its
sequence number), UDP, ICMP, ICMPv6 (type and code in the port columns, as flow tools do). A frame whose headers
are cut or impossible is marked, never fatal.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from soc.core.kernels import kernel, prefetch
from soc.core.model import DecodeStatus, IpFlag

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_12 = 12  # DLT_RAW on most systems
LINKTYPE_RAW_14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_PPPOE_SESSION = 0x8864
ETHERTYPE_MPLS = 0x8847
ETHERTYPE_MPLS_MULTICAST = 0x8848

# the decoder prefetches the headers of the frame this many rows ahead (measured: 4-8 rows take a third off the
# decode time of the 166 MB mix; 16 is too far)
DECODE_AHEAD = 8
_OK = np.uint8(DecodeStatus.OK)
_NOT_IP = np.uint8(DecodeStatus.NOT_IP)
_TRUNCATED = np.uint8(DecodeStatus.TRUNCATED)
_MALFORMED = np.uint8(DecodeStatus.MALFORMED)
_UNSUPPORTED = np.uint8(DecodeStatus.UNSUPPORTED_LINKTYPE)
_FRAGMENT = np.uint8(IpFlag.FRAGMENT)
_FIRST_FRAGMENT = np.uint8(IpFlag.FIRST_FRAGMENT)


@kernel(inline=True)
def _u8(buf: np.ndarray, pos: int) -> int:
    """The byte at ``pos``, indexed unsigned (as ``formats._u8``, whose docstring says why; kernels call only
    kernels of their own module)."""
    return np.int64(buf[np.uint64(pos)])


@kernel(inline=True)
def _be16(buf: np.ndarray, pos: int) -> int:
    return (_u8(buf, pos) << 8) | _u8(buf, pos + 1)


@kernel(inline=True)
def _be32(buf: np.ndarray, pos: int) -> int:
    return (_be16(buf, pos) << 16) | _be16(buf, pos + 2)


@kernel(inline=True)
def _link_layer(buf: np.ndarray, start: int, end: int, linktype: int) -> tuple[int, int, int, int]:
    """Returns (status, ethertype, network-layer offset, outer VLAN id)."""
    vlan = 0
    if linktype == LINKTYPE_ETHERNET:
        if start + 14 > end:
            return _TRUNCATED, 0, start, 0
        ethertype = _be16(buf, start + 12)
        pos = start + 14
        while ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100:
            if pos + 4 > end:
                return _TRUNCATED, ethertype, pos, vlan
            if vlan == 0:
                vlan = _be16(buf, pos) & 0x0FFF
            ethertype = _be16(buf, pos + 2)
            pos += 4
        if ethertype <= 1500 and pos + 8 <= end and _u8(buf, pos) == 0xAA and _u8(buf, pos + 1) == 0xAA and (
            _u8(buf, pos + 2) == 3
        ):
            # 802.3 length instead of a type, then 802.2 LLC with a SNAP header: the type follows the OUI
            ethertype = _be16(buf, pos + 6)
            pos += 8
        elif ethertype == ETHERTYPE_PPPOE_SESSION and pos + 8 <= end:
            # PPPoE session header (6 bytes), then the PPP protocol number: one byte when compressed (odd first byte)
            first = _u8(buf, pos + 6)
            ppp, pos = (first, pos + 7) if first & 1 else (_be16(buf, pos + 6), pos + 8)
            if ppp == 0x21:
                return _OK, ETHERTYPE_IPV4, pos, vlan
            if ppp == 0x57:
                return _OK, ETHERTYPE_IPV6, pos, vlan
        elif ethertype == ETHERTYPE_MPLS or ethertype == ETHERTYPE_MPLS_MULTICAST:
            # a label stack (4 bytes a label, the last with its bottom-of-stack bit), then IP told by its version
            while pos + 4 <= end:
                bottom = _u8(buf, pos + 2) & 1
                pos += 4
                if bottom:
                    if pos < end and _u8(buf, pos) >> 4 == 4:
                        return _OK, ETHERTYPE_IPV4, pos, vlan
                    if pos < end and _u8(buf, pos) >> 4 == 6:
                        return _OK, ETHERTYPE_IPV6, pos, vlan
                    break
        return _OK, ethertype, pos, vlan
    if linktype == LINKTYPE_LINUX_SLL:
        if start + 16 > end:
            return _TRUNCATED, 0, start, 0
        return _OK, _be16(buf, start + 14), start + 16, 0
    if linktype == LINKTYPE_LINUX_SLL2:
        if start + 20 > end:
            return _TRUNCATED, 0, start, 0
        return _OK, _be16(buf, start), start + 20, 0
    if linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if start + 4 > end:
            return _TRUNCATED, 0, start, 0
        # the address family is in the capturing host's byte order; the values are small either way
        family = _u8(buf, start) | _u8(buf, start + 3)
        if family == 2:
            return _OK, ETHERTYPE_IPV4, start + 4, 0
        if family == 24 or family == 28 or family == 30:
            return _OK, ETHERTYPE_IPV6, start + 4, 0
        return _OK, 0, start + 4, 0
    if linktype == LINKTYPE_RAW or linktype == LINKTYPE_RAW_12 or linktype == LINKTYPE_RAW_14 or (
        linktype == LINKTYPE_IPV4 or linktype == LINKTYPE_IPV6
    ):
        if start >= end:
            return _TRUNCATED, 0, start, 0
        version = _u8(buf, start) >> 4
        if version == 4:
            return _OK, ETHERTYPE_IPV4, start, 0
        if version == 6:
            return _OK, ETHERTYPE_IPV6, start, 0
        return _MALFORMED, 0, start, 0
    return _UNSUPPORTED, 0, start, 0


class Frames(NamedTuple):
    """The per-packet columns of one chunk: the first five filled by the record indexers of ``formats``, the rest
    by :func:`decode_frames`."""

    ts_ns: np.ndarray
    caplen: np.ndarray
    wirelen: np.ndarray
    data_offset: np.ndarray
    linktype: np.ndarray
    status: np.ndarray
    vlan: np.ndarray
    ethertype: np.ndarray
    l3_offset: np.ndarray
    ip_version: np.ndarray
    src_ip: np.ndarray
    dst_ip: np.ndarray
    protocol: np.ndarray
    src_port: np.ndarray
    dst_port: np.ndarray
    tcp_flags: np.ndarray
    tcp_window: np.ndarray
    tcp_seq: np.ndarray
    ip_flags: np.ndarray
    payload_offset: np.ndarray
    payload_len: np.ndarray
    status_counts: np.ndarray  # packets per DecodeStatus value, over the whole chunk


def allocate_frames(capacity: int) -> Frames:
    """Columns for ``capacity`` packets: the indexed ones uninitialised (the indexer writes every row it returns),
    the decoded ones zeroed (fresh zero pages from the system cost less than clearing each row in the decoder)."""
    return Frames(
        ts_ns=np.empty(capacity, np.int64),
        caplen=np.empty(capacity, np.uint32),
        wirelen=np.empty(capacity, np.uint32),
        data_offset=np.empty(capacity, np.int64),
        linktype=np.empty(capacity, np.uint16),
        status=np.zeros(capacity, np.uint8),
        vlan=np.zeros(capacity, np.uint16),
        ethertype=np.zeros(capacity, np.uint16),
        l3_offset=np.zeros(capacity, np.int64),
        ip_version=np.zeros(capacity, np.uint8),
        src_ip=np.zeros((capacity, 16), np.uint8),
        dst_ip=np.zeros((capacity, 16), np.uint8),
        protocol=np.zeros(capacity, np.uint8),
        src_port=np.zeros(capacity, np.uint16),
        dst_port=np.zeros(capacity, np.uint16),
        tcp_flags=np.zeros(capacity, np.uint8),
        tcp_window=np.zeros(capacity, np.uint16),
        tcp_seq=np.empty(capacity, np.int64),
        ip_flags=np.zeros(capacity, np.uint8),
        payload_offset=np.zeros(capacity, np.int64),
        payload_len=np.zeros(capacity, np.int32),
        status_counts=np.zeros(8, np.int64),
    )


@kernel(inline=True)
def _transport(buf: np.ndarray, pos: int, l4_end: int, captured_end: int,
               protocol: int) -> tuple[int, int, int, int, int, int, int, int]:
    """The transport header at ``pos``: (status, source port, destination port, TCP flags, TCP window, TCP
    sequence number or -1, payload offset, payload length). Scalars, not array writes: a kernel inlined with array
    arguments pays a reference count per array and call.

    ``l4_end`` is where the datagram ends according to the IP header, ``captured_end`` where the capture ends."""
    if protocol == 6:
        if pos + 20 > captured_end:
            return _TRUNCATED, 0, 0, 0, 0, -1, 0, 0
        header = (_u8(buf, pos + 12) >> 4) * 4
        if header < 20:
            return _MALFORMED, _be16(buf, pos), _be16(buf, pos + 2), _u8(buf, pos + 13), _be16(buf, pos + 14), (
                _be32(buf, pos + 4)), 0, 0
        return _OK, _be16(buf, pos), _be16(buf, pos + 2), _u8(buf, pos + 13), _be16(buf, pos + 14), (
            _be32(buf, pos + 4)), pos + header, max(0, l4_end - pos - header)
    if protocol == 17:
        if pos + 8 > captured_end:
            return _TRUNCATED, 0, 0, 0, 0, -1, 0, 0
        return _OK, _be16(buf, pos), _be16(buf, pos + 2), 0, 0, -1, pos + 8, max(0, l4_end - pos - 8)
    if protocol == 1 or protocol == 58:
        if pos + 4 > captured_end:
            return _TRUNCATED, 0, 0, 0, 0, -1, 0, 0
        # type and code in the port columns
        return _OK, _u8(buf, pos), _u8(buf, pos + 1), 0, 0, -1, pos + 4, max(0, l4_end - pos - 4)
    return _OK, 0, 0, 0, 0, -1, pos, max(0, l4_end - pos)


@kernel(
    "none(buffer, ro(i8[::1]), ro(u4[::1]), ro(u2[::1]),"  # frame offset, captured length, link type
    " u1[::1], u2[::1], u2[::1], i8[::1], u1[::1], u1[:, ::1], u1[:, ::1], u1[::1],"  # status .. protocol
    " u2[::1], u2[::1], u1[::1], u2[::1], i8[::1], u1[::1], i8[::1], i4[::1],"  # ports .. payload length
    " i8[::1], i8)"  # status counts, rows
)
def decode_frames(
    buf: np.ndarray,
    data_offset: np.ndarray,
    caplen: np.ndarray,
    linktypes: np.ndarray,
    status: np.ndarray,
    vlan: np.ndarray,
    ethertype: np.ndarray,
    l3_offset: np.ndarray,
    ip_version: np.ndarray,
    src_ip: np.ndarray,
    dst_ip: np.ndarray,
    protocol: np.ndarray,
    src_port: np.ndarray,
    dst_port: np.ndarray,
    tcp_flags: np.ndarray,
    tcp_window: np.ndarray,
    tcp_seq: np.ndarray,
    ip_flags: np.ndarray,
    payload_offset: np.ndarray,
    payload_len: np.ndarray,
    status_counts: np.ndarray,
    n: int,
) -> None:
    """Decode rows ``0 .. n-1`` into columns that start zeroed (``tcp_seq`` is set to -1 first); ``status_counts``
    adds the rows per status."""
    for i in range(n):
        if i + DECODE_AHEAD < n:
            prefetch(buf, data_offset[i + DECODE_AHEAD] + 32)
        tcp_seq[i] = -1
        start = data_offset[i]
        end = start + np.int64(caplen[i])
        linktype = np.int64(linktypes[i])
        etype = 0
        if linktype == LINKTYPE_ETHERNET and start + 14 <= end:
            etype = _be16(buf, start + 12)
        if etype == ETHERTYPE_IPV4 or etype == ETHERTYPE_IPV6:
            # the common frame, decided here: _link_layer takes the buffer and branches, so a call costs a
            # reference count on the buffer (the hot-loop rule of soc.core.kernels)
            code, pos, tag = _OK, start + 14, 0
        else:
            code, etype, pos, tag = _link_layer(buf, start, end, linktype)
        vlan[i] = tag
        ethertype[i] = etype
        l3_offset[i] = pos
        if code != _OK:
            status[i] = code
            continue
        if etype == ETHERTYPE_IPV4:
            if pos + 20 > end:
                status[i] = _TRUNCATED
                continue
            if _u8(buf, pos) >> 4 != 4:
                status[i] = _MALFORMED
                continue
            header = (_u8(buf, pos) & 0x0F) * 4
            total = _be16(buf, pos + 2)
            if total == 0:  # TCP segmentation offload on the capturing host: the length was never filled in
                total = end - pos
            if header < 20 or total < header:
                status[i] = _MALFORMED
                continue
            ip_version[i] = 4
            src_ip[i, 10] = 0xFF
            src_ip[i, 11] = 0xFF
            dst_ip[i, 10] = 0xFF
            dst_ip[i, 11] = 0xFF
            for b in range(4):
                src_ip[i, 12 + b] = _u8(buf, pos + 12 + b)
                dst_ip[i, 12 + b] = _u8(buf, pos + 16 + b)
            proto = _u8(buf, pos + 9)
            protocol[i] = proto
            fragment = _be16(buf, pos + 6)
            more_fragments = fragment & 0x2000
            frag_offset = fragment & 0x1FFF
            if more_fragments or frag_offset:
                ip_flags[i] = _FRAGMENT | (_FIRST_FRAGMENT if frag_offset == 0 else np.uint8(0))
            if pos + header > end:
                status[i] = _TRUNCATED
                continue
            if frag_offset:  # later fragments carry no transport header
                payload_offset[i] = pos + header
                payload_len[i] = max(0, total - header)
                status[i] = _OK
                continue
            l4, l4_end = pos + header, pos + total
        elif etype == ETHERTYPE_IPV6:
            if pos + 40 > end:
                status[i] = _TRUNCATED
                continue
            if _u8(buf, pos) >> 4 != 6:
                status[i] = _MALFORMED
                continue
            ip_version[i] = 6
            for b in range(16):
                src_ip[i, b] = _u8(buf, pos + 8 + b)
                dst_ip[i, b] = _u8(buf, pos + 24 + b)
            l4_end = pos + 40 + _be16(buf, pos + 4)
            next_header = _u8(buf, pos + 6)
            cursor = pos + 40
            later_fragment = False
            truncated = False
            # walk the extension headers to the transport header
            while next_header == 0 or next_header == 43 or next_header == 44 or next_header == 60 or (
                next_header == 51 or next_header == 135
            ):
                if cursor + 8 > end:
                    truncated = True
                    break
                if next_header == 44:
                    frag = _be16(buf, cursor + 2)
                    more = frag & 1
                    offset = frag >> 3
                    if more or offset:
                        ip_flags[i] = _FRAGMENT | (_FIRST_FRAGMENT if offset == 0 else np.uint8(0))
                    next_header = _u8(buf, cursor)
                    cursor += 8
                    if offset:
                        later_fragment = True
                        break
                elif next_header == 51:
                    length = (_u8(buf, cursor + 1) + 2) * 4
                    next_header = _u8(buf, cursor)
                    cursor += length
                else:
                    length = (_u8(buf, cursor + 1) + 1) * 8
                    next_header = _u8(buf, cursor)
                    cursor += length
            protocol[i] = next_header
            if truncated:
                status[i] = _TRUNCATED
                continue
            if later_fragment or next_header == 59:
                payload_offset[i] = cursor
                payload_len[i] = max(0, l4_end - cursor)
                status[i] = _OK
                continue
            l4, proto = cursor, next_header
        else:
            status[i] = _NOT_IP
            continue
        code, sport, dport, flags, window, seq, payload_at, payload = _transport(buf, l4, l4_end, end, proto)
        status[i] = code
        src_port[i] = sport
        dst_port[i] = dport
        tcp_flags[i] = flags
        tcp_window[i] = window
        tcp_seq[i] = seq
        payload_offset[i] = payload_at
        payload_len[i] = payload
    for i in range(n):
        status_counts[status[i]] += 1
