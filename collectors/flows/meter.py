# numba kernels mix numpy scalars and ints, which numba unifies and mypy cannot (as in collectors/packets)
# mypy: disable-error-code="return-value,assignment,arg-type"
"""The fast flow meter: the reference meter's semantics (``reference.py``) as numba kernels over preallocated arrays.

State lives in a pool of ``max_flows`` rows (int64 and float64 matrices, one row per live flow, untouched rows cost
no memory until used) found through an open-addressing hash table (linear probing, backward-shift deletion, load
at most one half). A flow's life follows nfstream's shape: ``_on_init`` when its first packet arrives, an update
for every packet (written out in ``meter_batch``), ``_on_expire`` when it ends (copied out, its row freed). Expired
flows leave as a FlowBatch with the features of ``features.py``.
"""

from __future__ import annotations

import numpy as np

from collectors.flows.features import DIRECTIONS, FEATURE_NAMES, FIRST_PACKETS, TCP_FLAGS
from collectors.flows.reference import DEFAULT_MAX_FLOWS
from soc.core.kernels import kernel
from soc.core.model import DecodeStatus, FlowBatch, FlowEnd, PacketBatch

_NS = 1_000_000_000
_OK = int(DecodeStatus.OK)
# end reasons as np.int64, not int: numba would compile one specialisation of _on_expire per literal value
_IDLE = np.int64(FlowEnd.IDLE)
_ACTIVE = np.int64(FlowEnd.ACTIVE)
_TCP_CLOSED = np.int64(FlowEnd.TCP_CLOSED)
_EVICTED = np.int64(FlowEnd.EVICTED)
_END_OF_CAPTURE = np.int64(FlowEnd.END_OF_CAPTURE)
# multipliers of the key hash (64-bit odd constants, as signed int64 so numba stays in integer arithmetic)
_M1 = np.int64(0x9E3779B97F4A7C15 - (1 << 64))
_M2 = np.int64(0x5851F42D4C957F2D)
_M3 = np.int64(0x94D049BB133111EB - (1 << 64))
_NO_MIN = np.int64(np.iinfo(np.int64).max)
_NO_MAX = np.int64(np.iinfo(np.int64).min)
_ABOVE_PORTS = np.int64(~0xFFFFFFFF)  # the VLAN and protocol bits of the key's last word

# Columns of the int64 state matrix. Per-direction blocks are indexed base + d, d = 0 fwd, 1 bwd, 2 both. What
# every packet reads or writes comes first (the key a probe compares, then the counters), so that a packet touches
# as few cache lines of its flow as it can, all of them adjacent; rows are padded to whole cache lines.
I_KEY = 0  # 5: the flow key (address words of endpoint a, of endpoint b, then VLAN, protocol, ports)
I_FIRST = 5
I_LAST = 6
I_PROTO = 7
I_INIT_A = 8  # 1 when the initiator is endpoint a (the smaller one of the key)
I_PACKETS = 9  # 3 (fwd, bwd, both)
I_BYTES = 12  # 2
I_PAYLOAD = 14  # 2
I_FLAGS = 16  # 2
I_DATA = 18  # 2
I_LAST_DIR = 20  # 2, time of the last packet per direction
I_SIZE_MIN = 22  # 3
I_SIZE_MAX = 25  # 3
I_IAT_MIN = 28  # 3
I_IAT_MAX = 31  # 3
I_FLAG_COUNT = 34  # 16: direction * 8 + bit
# read or written by the first packets of a flow, by SYNs, or when a flow starts or ends
I_WINDOW = 50  # 2
I_ISN = 52  # 2, each side's initial sequence number (reference.py's definition), -1 if unknown
I_VLAN = 54
I_VERSION = 55
I_SEQ = 56
I_POS = 57  # index in the active list
I_REASON = 58
I_HASH = 59
I_FIRST_SIZE = 60  # FIRST_PACKETS
I_FIRST_DIR = I_FIRST_SIZE + FIRST_PACKETS  # FIRST_PACKETS
N_INT = I_FIRST_DIR + FIRST_PACKETS  # columns copied out when a flow expires
_INT_ROW = (N_INT + 7) // 8 * 8  # the state row, in whole 64-byte lines
# Columns of the float64 state matrix (Welford running mean and sum of squared deviations).
F_SIZE_MEAN = 0  # 3
F_SIZE_M2 = 3  # 3
F_IAT_MEAN = 6  # 3
F_IAT_M2 = 9  # 3
N_FLOAT = 12
_FLOAT_ROW = 16
# Counters shared with the kernels.
C_FREE = 0  # rows on the free stack (rows that held a flow and were freed)
C_ACTIVE = 1  # live flows
C_SEQ = 2  # next flow sequence number
C_EVICTED = 3
C_NOT_IN_FLOWS = 4
C_FRESH = 5  # rows below this one have held a flow; those above are untouched
C_NEXT = 6  # the packet meter_batch stopped at (the batch's length once it is done)
N_COUNTERS = 7
_MIN_TABLE = 1 << 12


@kernel(inline=True)
def _hash(k0: np.int64, k1: np.int64, k2: np.int64, k3: np.int64, k4: np.int64) -> np.int64:
    h = k0 * _M1 + k1
    h = h * _M2 + k2
    h = h * _M1 + k3
    h = h * _M2 + k4
    h ^= (h >> 29) & np.int64(0x7FFFFFFFF)
    h *= _M3
    return h ^ ((h >> 32) & np.int64(0xFFFFFFFF))


@kernel(inline=True)
def _find(istate: np.ndarray, table: np.ndarray, mask: int, h: np.int64, k0: np.int64,
          k1: np.int64, k2: np.int64, k3: np.int64, k4: np.int64) -> tuple[int, int]:
    """(row, table position) of the key, or (-1, the empty position where it would go)."""
    pos = h & mask
    while True:
        row = table[pos, 0] - 1
        if row < 0:
            return -1, pos
        if table[pos, 1] == h and istate[row, I_KEY] == k0 and istate[row, I_KEY + 1] == k1 and (
            istate[row, I_KEY + 2] == k2 and istate[row, I_KEY + 3] == k3 and istate[row, I_KEY + 4] == k4
        ):
            return row, pos
        pos = (pos + 1) & mask


@kernel()
def _table_remove(table: np.ndarray, mask: int, row: int, h: np.int64) -> None:
    """Remove ``row`` from the table; later entries of its probe run shift back so lookups stay correct."""
    i = h & mask
    while table[i, 0] != row + 1:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if table[j, 0] == 0:
            break
        home = table[j, 1] & mask
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            table[i, 0] = table[j, 0]
            table[i, 1] = table[j, 1]
            i = j
    table[i, 0] = 0


@kernel(inline=True)
def _std(m2: float, count: int) -> float:
    """Sample standard deviation from Welford's M2; 0 for fewer than two values."""
    return np.sqrt(m2 / np.float64(count - 1)) if count > 1 else 0.0


@kernel()
def _on_expire(row: int, reason: int, istate: np.ndarray, fstate: np.ndarray,
               table: np.ndarray, mask: int, free: np.ndarray, active: np.ndarray,
               counters: np.ndarray, out_i: np.ndarray, out_f: np.ndarray, m: int) -> int:
    """Copy the flow out to row ``m`` (std finished from M2, the key turned to src then dst) and free its row;
    returns the next output index."""
    for c in range(N_INT):
        out_i[m, c] = istate[row, c]
    if istate[row, I_INIT_A] == 0:  # the initiator is endpoint b: swap the endpoints' words and ports
        out_i[m, I_KEY] = istate[row, I_KEY + 2]
        out_i[m, I_KEY + 1] = istate[row, I_KEY + 3]
        out_i[m, I_KEY + 2] = istate[row, I_KEY]
        out_i[m, I_KEY + 3] = istate[row, I_KEY + 1]
        word = istate[row, I_KEY + 4]
        out_i[m, I_KEY + 4] = (word & _ABOVE_PORTS) | ((word & 0xFFFF) << 16) | ((word >> 16) & 0xFFFF)
    for c in range(N_FLOAT):
        out_f[m, c] = fstate[row, c]
    for d in range(3):
        packets = istate[row, I_PACKETS + d]
        out_f[m, F_SIZE_M2 + d] = _std(fstate[row, F_SIZE_M2 + d], packets)
        out_f[m, F_IAT_M2 + d] = _std(fstate[row, F_IAT_M2 + d], packets - 1)
        if packets < 2:  # min and max of no value are 0
            out_i[m, I_IAT_MIN + d] = 0
            out_i[m, I_IAT_MAX + d] = 0
            if packets == 0:
                out_i[m, I_SIZE_MIN + d] = 0
                out_i[m, I_SIZE_MAX + d] = 0
    out_i[m, I_REASON] = reason
    _table_remove(table, mask, row, istate[row, I_HASH])
    last = counters[C_ACTIVE] - 1
    moved = active[last]
    position = istate[row, I_POS]
    active[position] = moved
    istate[moved, I_POS] = position
    counters[C_ACTIVE] = last
    free[counters[C_FREE]] = row
    counters[C_FREE] += 1
    return m + 1


@kernel()
def _expire_idle(now: int, idle_ns: int, istate: np.ndarray, fstate: np.ndarray,
                 table: np.ndarray, mask: int, free: np.ndarray, active: np.ndarray,
                 counters: np.ndarray, out_i: np.ndarray, out_f: np.ndarray, m: int) -> int:
    k = 0
    while k < counters[C_ACTIVE]:
        row = active[k]
        if now - istate[row, I_LAST] > idle_ns:
            # the last active flow moves into position k: look at k again
            m = _on_expire(row, _IDLE, istate, fstate, table, mask, free, active, counters,
                           out_i, out_f, m)
        else:
            k += 1
    return m


@kernel()
def _make_room(now: int, idle_ns: int, istate: np.ndarray, fstate: np.ndarray,
               table: np.ndarray, mask: int, free: np.ndarray, active: np.ndarray,
               counters: np.ndarray, out_i: np.ndarray, out_f: np.ndarray, m: int) -> int:
    """The table is full: expire the idle flows, or else evict the eighth least recently seen."""
    before = m
    m = _expire_idle(now, idle_ns, istate, fstate, table, mask, free, active, counters,
                     out_i, out_f, m)
    if m > before:
        return m
    n = counters[C_ACTIVE]
    rows = active[:n].copy()
    by_seq = np.argsort(istate[rows, I_SEQ])
    rows = rows[by_seq]
    order = np.argsort(istate[rows, I_LAST], kind="mergesort")  # stable: ties stay in creation order
    victims = max(1, istate.shape[0] // 8)
    for k in range(victims):
        m = _on_expire(rows[order[k]], _EVICTED, istate, fstate, table, mask, free, active, counters,
                       out_i, out_f, m)
    counters[C_EVICTED] += victims
    return m


@kernel(inline=True)
def _on_init(row: int, ts: int, vlan: int, version: int, proto: int, init_a: int, h: np.int64,
             istate: np.ndarray, fstate: np.ndarray, counters: np.ndarray) -> None:
    istate[row, :] = 0
    fstate[row, :] = 0.0
    istate[row, I_FIRST] = ts
    istate[row, I_LAST] = ts
    istate[row, I_VLAN] = vlan
    istate[row, I_VERSION] = version
    istate[row, I_PROTO] = proto
    istate[row, I_INIT_A] = init_a
    istate[row, I_SEQ] = counters[C_SEQ]
    istate[row, I_HASH] = h
    istate[row, I_WINDOW] = -1
    istate[row, I_WINDOW + 1] = -1
    istate[row, I_ISN] = -1
    istate[row, I_ISN + 1] = -1
    for c in range(3):  # no value yet: any value is a new minimum and maximum
        istate[row, I_SIZE_MIN + c] = _NO_MIN
        istate[row, I_SIZE_MAX + c] = _NO_MAX
        istate[row, I_IAT_MIN + c] = _NO_MIN
        istate[row, I_IAT_MAX + c] = _NO_MAX
    counters[C_SEQ] += 1


@kernel(inline=True)
def _add(istate: np.ndarray, fstate: np.ndarray, row: int, d: int, count: int, size_col: int, mean_col: int,
         value: int) -> None:
    """One value into the running min/max/mean/M2 of series ``d``; ``count`` includes it.

    Straight-line on purpose (the hot-loop rule of ``soc.core.kernels``): min and max start from sentinels, not from a
    branch on the first value."""
    istate[row, size_col + d] = min(istate[row, size_col + d], value)
    istate[row, size_col + 3 + d] = max(istate[row, size_col + 3 + d], value)
    x = np.float64(value)
    mean = fstate[row, mean_col + d]
    delta = x - mean
    mean += delta / np.float64(count)
    fstate[row, mean_col + d] = mean
    fstate[row, mean_col + 3 + d] += delta * (x - mean)


@kernel(
    "i8(ro(u1[::1]), ro(i8[::1]), ro(u2[::1]), ro(u1[::1]), ro(u1[::1]), ro(i8[:, ::1]), ro(i8[:, ::1]),"  # packets
    " ro(u2[::1]), ro(u2[::1]), ro(u4[::1]), ro(i4[::1]), ro(u1[::1]), ro(u2[::1]), ro(i8[::1]),"
    " i8[:, ::1], f8[:, ::1], i8[:, ::1], i8[::1], i8[::1], i8[::1], i8, i8,"  # state, timeouts
    " i8[:, ::1], f8[:, ::1], i8, i8, i8)"  # output, where to start, live flows the table has room for
)
def meter_batch(
    status: np.ndarray, ts_ns: np.ndarray, vlan: np.ndarray, ip_version: np.ndarray, protocol: np.ndarray,
    src_words: np.ndarray, dst_words: np.ndarray, src_port: np.ndarray, dst_port: np.ndarray, wirelen: np.ndarray,
    payload_len: np.ndarray, tcp_flags: np.ndarray, tcp_window: np.ndarray, tcp_seq: np.ndarray,
    istate: np.ndarray, fstate: np.ndarray, table: np.ndarray,
    free: np.ndarray, active: np.ndarray, counters: np.ndarray, idle_ns: int, active_ns: int,
    out_i: np.ndarray, out_f: np.ndarray, start: int, m: int, room: int,
) -> int:
    """Meter packets ``start:`` of a batch; expired flows are written to ``out_*`` from row ``m``; returns the next
    free output row. Stops early (``counters[C_NEXT]``) when ``room`` flows are live: the table must grow first."""
    mask = table.shape[0] - 1
    n = ts_ns.shape[0]
    for i in range(start, n):
        if counters[C_ACTIVE] >= room:
            counters[C_NEXT] = i
            return m
        if status[i] != _OK:
            counters[C_NOT_IN_FLOWS] += 1
            continue
        ts = ts_ns[i]
        proto = np.int64(protocol[i])
        sport = np.int64(src_port[i])
        dport = np.int64(dst_port[i])
        if proto != 6 and proto != 17:  # ICMP and others: one flow per address pair and protocol
            sport = 0
            dport = 0
        # the addresses as two native int64 words each; the key puts the smaller endpoint first (any fixed
        # order will do: it is never seen outside, the initiator decides src and dst)
        s_hi = src_words[i, 0]
        s_lo = src_words[i, 1]
        d_hi = dst_words[i, 0]
        d_lo = dst_words[i, 1]
        if s_hi != d_hi:
            forward_key = s_hi < d_hi
        elif s_lo != d_lo:
            forward_key = s_lo < d_lo
        else:
            forward_key = sport <= dport
        tag = np.int64(vlan[i])
        if forward_key:
            k0, k1, k2, k3 = s_hi, s_lo, d_hi, d_lo
            k4 = (tag << 40) | (proto << 32) | (sport << 16) | dport
        else:
            k0, k1, k2, k3 = d_hi, d_lo, s_hi, s_lo
            k4 = (tag << 40) | (proto << 32) | (dport << 16) | sport
        h = _hash(k0, k1, k2, k3, k4)
        flags = np.int64(tcp_flags[i])
        row, pos = _find(istate, table, mask, h, k0, k1, k2, k3, k4)
        if row >= 0:
            reason = np.int64(-1)
            if ts - istate[row, I_LAST] > idle_ns:
                reason = _IDLE
            elif ts - istate[row, I_FIRST] > active_ns:
                reason = _ACTIVE
            elif proto == 6 and (flags & 0x12) == 0x02:
                # a SYN with another number than its sender's initial one opens a new connection; the same
                # number is a retransmission, and a side that has not sent yet (-1) joins the flow
                isn = istate[row, I_ISN + (0 if (forward_key == (istate[row, I_INIT_A] == 1)) else 1)]
                seq = tcp_seq[i]
                if isn >= 0 and seq >= 0 and seq != isn:
                    reason = _TCP_CLOSED
            if reason >= 0:
                m = _on_expire(row, reason, istate, fstate, table, mask, free, active, counters,
                               out_i, out_f, m)
                row = -1
                pos = -1
        if row < 0:
            if counters[C_FREE] == 0 and counters[C_FRESH] == istate.shape[0]:
                m = _make_room(ts, idle_ns, istate, fstate, table, mask, free, active, counters,
                               out_i, out_f, m)
                pos = -1
            if pos < 0:  # the table changed since the lookup
                row, pos = _find(istate, table, mask, h, k0, k1, k2, k3, k4)
            if counters[C_FREE] > 0:
                counters[C_FREE] -= 1
                row = free[counters[C_FREE]]
            else:
                row = counters[C_FRESH]
                counters[C_FRESH] = row + 1
            table[pos, 0] = row + 1
            table[pos, 1] = h
            position = counters[C_ACTIVE]
            active[position] = row
            counters[C_ACTIVE] = position + 1
            _on_init(row, ts, tag, np.int64(ip_version[i]), proto, 1 if forward_key else 0, h, istate, fstate,
                     counters)
            istate[row, I_KEY] = k0
            istate[row, I_KEY + 1] = k1
            istate[row, I_KEY + 2] = k2
            istate[row, I_KEY + 3] = k3
            istate[row, I_KEY + 4] = k4
            istate[row, I_POS] = position
        # the update step, written out here: an inlined kernel taking the state arrays and branching would count
        # references on them (the hot-loop rule of soc.core.kernels)
        d = 0 if (forward_key == (istate[row, I_INIT_A] == 1)) else 1
        length = np.int64(wirelen[i])
        payload = np.int64(payload_len[i])
        total = istate[row, I_PACKETS + 2]
        if total > 0:
            _add(istate, fstate, row, 2, total, I_IAT_MIN, F_IAT_MEAN, ts - istate[row, I_LAST])
        istate[row, I_LAST] = ts
        packets = istate[row, I_PACKETS + d]
        if packets > 0:
            _add(istate, fstate, row, d, packets, I_IAT_MIN, F_IAT_MEAN, ts - istate[row, I_LAST_DIR + d])
        elif proto == 6:  # the side's first packet
            istate[row, I_WINDOW + d] = np.int64(tcp_window[i])
            seq = tcp_seq[i]
            # a segment picked up mid-connection: its SYN would have carried one less
            istate[row, I_ISN + d] = seq if seq < 0 or (flags & 0x02) else (seq - 1) & 0xFFFFFFFF
        istate[row, I_PACKETS + d] = packets + 1
        istate[row, I_PACKETS + 2] = total + 1
        istate[row, I_BYTES + d] += length
        istate[row, I_PAYLOAD + d] += payload
        istate[row, I_FLAGS + d] |= flags
        if payload > 0:
            istate[row, I_DATA + d] += 1
        istate[row, I_LAST_DIR + d] = ts
        _add(istate, fstate, row, d, packets + 1, I_SIZE_MIN, F_SIZE_MEAN, length)
        _add(istate, fstate, row, 2, total + 1, I_SIZE_MIN, F_SIZE_MEAN, length)
        if flags:
            base = I_FLAG_COUNT + d * 8
            for bit in range(8):
                istate[row, base + bit] += (flags >> bit) & 1
        if total < FIRST_PACKETS:
            istate[row, I_FIRST_SIZE + total] = length
            istate[row, I_FIRST_DIR + total] = 1 if d == 0 else -1
    counters[C_NEXT] = n
    if n:
        m = _expire_idle(ts_ns[n - 1], idle_ns, istate, fstate, table, mask, free, active, counters,
                         out_i, out_f, m)
    return m


@kernel(
    "i8(i8[:, ::1], f8[:, ::1], i8[:, ::1], i8[::1], i8[::1], i8[::1],"  # state
    " i8[:, ::1], f8[:, ::1])"  # output
)
def expire_all(istate: np.ndarray, fstate: np.ndarray, table: np.ndarray,
               free: np.ndarray, active: np.ndarray, counters: np.ndarray, out_i: np.ndarray,
               out_f: np.ndarray) -> int:
    mask = table.shape[0] - 1
    m = 0
    while counters[C_ACTIVE] > 0:
        m = _on_expire(active[counters[C_ACTIVE] - 1], _END_OF_CAPTURE, istate, fstate, table, mask,
                       free, active, counters, out_i, out_f, m)
    return m


@kernel(inline=True)
def _gather(source: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The rows ``order`` of ``source``, each copied in one stretch (gathering them into one array per field
    measured 2-5x slower: every store or every load went to another cache line)."""
    out = np.empty((order.shape[0], source.shape[1]), source.dtype)
    for j in range(order.shape[0]):
        r = order[j]
        for c in range(source.shape[1]):
            out[j, c] = source[r, c]
    return out


@kernel("Tuple((i8[:, ::1], f8[:, ::1]))(ro(i8[:, ::1]), ro(f8[:, ::1]), i8)")
def _in_start_order(out_i: np.ndarray, out_f: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the first ``m`` expired flows, ordered by first packet time, then by creation."""
    by_seq = np.argsort(out_i[:m, I_SEQ])
    first = out_i[:m, I_FIRST][by_seq]
    order = by_seq
    for j in range(1, m):
        if first[j] < first[j - 1]:  # flows created out of time order (rare: the capture's clock stepped back)
            order = by_seq[np.argsort(first, kind="mergesort")]  # stable: ties keep creation order
            break
    return _gather(out_i, order), _gather(out_f, order)


@kernel("none(ro(i8[:, ::1]), i8[:, ::1])")
def rehash(old: np.ndarray, new: np.ndarray) -> None:
    """Move every entry of the table ``old`` into the empty, larger table ``new``."""
    mask = new.shape[0] - 1
    for k in range(old.shape[0]):
        if old[k, 0] != 0:
            pos = old[k, 1] & mask
            while new[pos, 0] != 0:
                pos = (pos + 1) & mask
            new[pos, 0] = old[k, 0]
            new[pos, 1] = old[k, 1]


def _power_of_two(n: int) -> int:
    return 1 << max(4, (n - 1).bit_length())


def _words(addresses: np.ndarray) -> np.ndarray:
    """16-byte addresses (n, 16) as two int64 words each (n, 2), without copying."""
    return np.ascontiguousarray(addresses).view(np.int64)


class FlowMeter:
    """Feed PacketBatch chunks in order with :meth:`update`; expired flows come back as FlowBatch.

    Same flows, fields and order as :class:`ReferenceFlowMeter` with the same arguments.
    """

    def __init__(self, idle_timeout: float = 120.0, active_timeout: float = 1800.0,
                 max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self.idle_ns = int(idle_timeout * _NS)
        self.active_ns = int(active_timeout * _NS)
        self.max_flows = max_flows
        # the hash table grows with the live flows (load at most one half), up to what max_flows needs: a probe
        # into a small table stays in cache, one into a table sized for max_flows (or a batch) would miss
        self._table_limit = _power_of_two(2 * max_flows)
        # np.zeros maps fresh pages lazily: rows never used by a flow cost no memory
        self._istate = np.zeros((max_flows, _INT_ROW), np.int64)
        self._fstate = np.zeros((max_flows, _FLOAT_ROW), np.float64)
        # (row + 1, hash) per slot side by side, so a probe reads one cache line; 0 marks an empty slot
        self._table = np.zeros((min(self._table_limit, _MIN_TABLE), 2), np.int64)
        self._free = np.empty(max_flows, np.int64)  # rows freed by expired flows; untouched rows come after
        self._active = np.zeros(max_flows, np.int64)
        self._counters = np.zeros(N_COUNTERS, np.int64)
        # expired flows, one row each (copied out in one stretch, then gathered in start order by _in_start_order)
        self._out_i = np.zeros((0, N_INT), np.int64)
        self._out_f = np.zeros((0, N_FLOAT), np.float64)

    def __len__(self) -> int:
        return int(self._counters[C_ACTIVE])

    @property
    def packets_not_in_flows(self) -> int:
        return int(self._counters[C_NOT_IN_FLOWS])

    @property
    def evicted(self) -> int:
        return int(self._counters[C_EVICTED])

    def _output(self, flows: int) -> None:
        if self._out_i.shape[0] < flows:
            flows = max(flows, self._out_i.shape[0] * 3 // 2)
            self._out_i = np.empty((flows, N_INT), np.int64)
            self._out_f = np.empty((flows, N_FLOAT), np.float64)

    def _room(self) -> int:
        """Live flows the table holds at a load of at most one half (any number once it has its full size)."""
        size = self._table.shape[0]
        return size // 2 if size < self._table_limit else self.max_flows + 1

    def _grow_table(self) -> None:
        table = np.zeros((self._table.shape[0] * 2, 2), np.int64)
        rehash(self._table, table)
        self._table = table

    def update(self, batch: PacketBatch) -> FlowBatch:
        # every packet starts at most one flow, and every expiry frees a row for at most one new flow: packets +
        # live flows bound the output
        n = len(batch)
        self._output(n + len(self))
        packets = (batch.status, batch.ts_ns, batch.vlan, batch.ip_version, batch.protocol, _words(batch.src_ip),
                   _words(batch.dst_ip), batch.src_port, batch.dst_port, batch.wirelen, batch.payload_len,
                   batch.tcp_flags, batch.tcp_window, batch.tcp_seq)
        m = start = 0
        while True:
            m = meter_batch(*packets, self._istate, self._fstate, self._table, self._free, self._active,
                            self._counters, self.idle_ns, self.active_ns, self._out_i, self._out_f,
                            start, m, self._room())
            start = int(self._counters[C_NEXT])
            if start == n:
                return self._batch(m)
            self._grow_table()

    def flush(self) -> FlowBatch:
        """End of input: every remaining flow expires."""
        self._output(len(self))
        m = expire_all(self._istate, self._fstate, self._table, self._free, self._active, self._counters,
                       self._out_i, self._out_f)
        return self._batch(m)

    def _batch(self, m: int) -> FlowBatch:
        rows_i, rows_f = _in_start_order(self._out_i, self._out_f, m)
        ints, floats = rows_i.T, rows_f.T  # a field of every flow: a strided view, not a copy
        # the key's first four words are the source's and the destination's address bytes (turned on expiry)
        src_ip, dst_ip = rows_i[:, I_KEY:I_KEY + 2].view(np.uint8), rows_i[:, I_KEY + 2:I_KEY + 4].view(np.uint8)
        ports = ints[I_KEY + 4]  # source port, then destination port, in the low 32 bits
        # counters are never negative: their int64 rows are handed out as uint64 without a copy
        return FlowBatch(
            first_ts_ns=ints[I_FIRST],
            last_ts_ns=ints[I_LAST],
            vlan=ints[I_VLAN].astype(np.uint16),
            ip_version=ints[I_VERSION].astype(np.uint8),
            protocol=ints[I_PROTO].astype(np.uint8),
            src_ip=src_ip,
            dst_ip=dst_ip,
            src_port=((ports >> 16) & 0xFFFF).astype(np.uint16),
            dst_port=(ports & 0xFFFF).astype(np.uint16),
            packets_fwd=ints[I_PACKETS].view(np.uint64),
            packets_bwd=ints[I_PACKETS + 1].view(np.uint64),
            bytes_fwd=ints[I_BYTES].view(np.uint64),
            bytes_bwd=ints[I_BYTES + 1].view(np.uint64),
            payload_bytes_fwd=ints[I_PAYLOAD].view(np.uint64),
            payload_bytes_bwd=ints[I_PAYLOAD + 1].view(np.uint64),
            tcp_flags_fwd=ints[I_FLAGS].astype(np.uint8),
            tcp_flags_bwd=ints[I_FLAGS + 1].astype(np.uint8),
            end_reason=ints[I_REASON].astype(np.uint8),
            features=_features(ints, floats),
        )


def _feature_columns() -> dict[str, tuple[bool, int]]:
    """Name (as in ``features.py``) -> (in the float matrix, field) of every feature that is a field (column) of
    the output matrices; built once, not per batch."""
    columns: dict[str, tuple[bool, int]] = {"id": (False, I_SEQ)}
    for d, name in enumerate(DIRECTIONS):
        columns[f"{name}_size_min"] = (False, I_SIZE_MIN + d)
        columns[f"{name}_size_max"] = (False, I_SIZE_MAX + d)
        columns[f"{name}_size_mean"] = (True, F_SIZE_MEAN + d)
        columns[f"{name}_size_std"] = (True, F_SIZE_M2 + d)  # turned into the std on expiry
        columns[f"{name}_iat_min"] = (False, I_IAT_MIN + d)
        columns[f"{name}_iat_max"] = (False, I_IAT_MAX + d)
        columns[f"{name}_iat_mean"] = (True, F_IAT_MEAN + d)
        columns[f"{name}_iat_std"] = (True, F_IAT_M2 + d)
    for d, name in enumerate(DIRECTIONS[:2]):
        for bit, flag in enumerate(TCP_FLAGS):
            columns[f"{name}_{flag}_count"] = (False, I_FLAG_COUNT + d * 8 + bit)
        columns[f"{name}_init_window"] = (False, I_WINDOW + d)
        columns[f"{name}_data_packets"] = (False, I_DATA + d)
    for k in range(FIRST_PACKETS):
        columns[f"first_size_{k + 1}"] = (False, I_FIRST_SIZE + k)
        columns[f"first_dir_{k + 1}"] = (False, I_FIRST_DIR + k)
    return columns


_FEATURE_COLUMNS = _feature_columns()


def _features(ints: np.ndarray, floats: np.ndarray) -> dict[str, np.ndarray]:
    """Views into the output matrices, named as in ``features.py`` (whose types are int64 and float64)."""
    values = {name: (floats if is_float else ints)[row] for name, (is_float, row) in _FEATURE_COLUMNS.items()}
    values["duration_ns"] = ints[I_LAST] - ints[I_FIRST]
    return {name: values[name] for name in FEATURE_NAMES}


__all__ = ["FlowMeter"]
