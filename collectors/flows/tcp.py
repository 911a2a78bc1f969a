"""TCP sequence numbers of a PacketBatch, read from the capture buffer (the batch has no column for them yet).

Both flow meters use them to tell a new connection from a retransmitted SYN. -1 where unknown: not TCP, a later
fragment, an IPv6 packet with extension headers before TCP, or a header cut by the capture.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from soc.model import DecodeStatus, IpFlag, PacketBatch

_OK = int(DecodeStatus.OK)
_LATER_FRAGMENT = int(IpFlag.FRAGMENT)  # FRAGMENT without FIRST_FRAGMENT


@njit(cache=True)
def _sequence_numbers(buf: np.ndarray, status: np.ndarray, protocol: np.ndarray, ip_version: np.ndarray,
                      ip_flags: np.ndarray, l3_offset: np.ndarray, data_offset: np.ndarray, caplen: np.ndarray,
                      out: np.ndarray) -> None:
    for i in range(status.shape[0]):
        out[i] = -1
        if status[i] != _OK or protocol[i] != 6 or (ip_flags[i] & 3) == _LATER_FRAGMENT:
            continue
        l3 = l3_offset[i]
        end = min(data_offset[i] + np.int64(caplen[i]), buf.shape[0])
        if ip_version[i] == 4:
            if l3 + 1 > end:
                continue
            start = l3 + (np.int64(buf[l3]) & 0x0F) * 4
        elif l3 + 7 <= end and buf[l3 + 6] == 6:
            start = l3 + 40
        else:
            continue
        if start + 8 > end:
            continue
        out[i] = (np.int64(buf[start + 4]) << 24) | (np.int64(buf[start + 5]) << 16) | (
            np.int64(buf[start + 6]) << 8
        ) | np.int64(buf[start + 7])


def tcp_sequence_numbers(batch: PacketBatch) -> np.ndarray:
    out = np.empty(len(batch), np.int64)
    _sequence_numbers(batch.buffer, batch.status, batch.protocol, batch.ip_version, batch.ip_flags,
                      batch.l3_offset, batch.data_offset, batch.caplen, out)
    return out
