"""tshark as the oracle for flows: its TCP and UDP conversations, and why a conversation may legitimately differ.

tshark's conversation tables (``-z conv,tcp -z conv,udp``) count one entry per TCP/UDP stream; the same streams
come out of ``-T fields`` with ``tcp.stream``/``udp.stream``, which also gives exact bytes (``frame.len``) and the
layers of every frame, so each difference from our flows can be put in a category:

- ``tunnel``: a frame with more than one IP header; tshark follows the inner conversation, we meter the outer one.
- ``fragment``: an IP fragment; tshark reassembles and counts the fragments in the transport stream, we count
  later fragments in a port-less flow of the address pair.
- ``icmp``: a header quoted inside an ICMP error; tshark adds the ICMP packet to the quoted stream, we give it
  to the ICMP flow of the address pair.
- ``merged``: tshark follows one conversation across several port pairs (RPC, SIP and other helpers open
  conversations with a wildcard port), we keep one flow per port pair.
- ``untracked``: tshark dissects the frame but puts it in no TCP/UDP stream (a UDP length it rejects, a frame
  cut inside the header it needs), while our reader, reading the same header bytes, meters it.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from soc.core.model import DecodeStatus, FlowBatch, PacketBatch, ip_to_str

Conversation = tuple[str, str, int, str, int]  # transport, then the two endpoints in canonical order
CATEGORIES = ("tunnel", "fragment", "icmp")
FIELDS = ("frame.number", "tcp.stream", "udp.stream", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport",
          "tcp.dstport", "udp.srcport", "udp.dstport", "frame.len", "icmp.type", "icmpv6.type", "ip.flags.mf",
          "ip.frag_offset", "ipv6.fraghdr.offset", "frame.protocols")


def _address(text: str) -> str:
    """IPv4-mapped IPv6 addresses as IPv4: our arrays hold IPv4 that way, so the two are one endpoint for us."""
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped) if mapped else str(address)


def canonical(transport: str, a: str, pa: int, b: str, pb: int) -> Conversation:
    a, b = _address(a), _address(b)
    ka = (ipaddress.ip_address(a).packed.rjust(16, b"\0"), pa)
    kb = (ipaddress.ip_address(b).packed.rjust(16, b"\0"), pb)
    return (transport, a, pa, b, pb) if ka <= kb else (transport, b, pb, a, pa)


# Dissectors that open a port-wildcard conversation for the replies they expect: tshark then numbers a request and
# its reply (one UDP 5-tuple) as two streams. That is bookkeeping for their own dissection, not a transport
# conversation, so the oracle turns them off (SNMP: a get-request and its get-response become streams n and n+1).
WILDCARD_DISSECTORS = ("snmp",)


def tshark_rows(path: Path, timeout: float = 600) -> list[list[str]]:
    command = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for name in WILDCARD_DISSECTORS:
        command += ["--disable-protocol", name]
    for name in FIELDS:
        command += ["-e", name]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout).stdout
    return [line.split("|") for line in output.splitlines()]


def frame_categories(row: list[str]) -> set[str]:
    """Why this frame may be attributed differently by tshark and by a flow meter."""
    found = set()
    layers = row[17].split(":")
    if sum(1 for layer in layers if layer in ("ip", "ipv6")) > 1:
        found.add("tunnel")
    if "1" in row[14].split(",") or any(v not in ("", "0") for v in row[15].split(",")) or row[16]:
        found.add("fragment")
    if row[12] or row[13]:
        found.add("icmp")
    if not (row[1] or row[2]):
        found.add("untracked")
    return found


@dataclass(slots=True)
class Stream:
    key: Conversation
    frames: int = 0
    bytes: int = 0
    rows: list[int] = field(default_factory=list)  # indexes of its frames, ICMP ones included
    keys: set[Conversation] = field(default_factory=set)  # endpoints of its frames (several: a merged stream)


def tshark_streams(rows: Iterable[list[str]]) -> list[Stream]:
    """One entry per TCP/UDP stream; frames carrying ICMP (quoted headers) are not counted, as in the attack test."""
    streams: dict[tuple[str, str], Stream] = {}
    for index, row in enumerate(rows):
        tcp, udp, s4, d4, s6, d6, tsp, tdp, usp, udp_port, length, icmp, icmp6 = row[1:14]
        if not (tcp or udp):
            continue
        transport, stream_id = ("tcp", tcp.split(",")[0]) if tcp else ("udp", udp.split(",")[0])
        src, dst = (s4 or s6).split(",")[0], (d4 or d6).split(",")[0]
        if tcp:
            sport, dport = int(tsp.split(",")[0]), int(tdp.split(",")[0])
        else:
            sport, dport = int(usp.split(",")[0]), int(udp_port.split(",")[0])
        key = canonical(transport, src, sport, dst, dport)
        stream = streams.get((transport, stream_id))
        if stream is None:
            stream = streams[(transport, stream_id)] = Stream(key)
        stream.rows.append(index)
        if not (icmp or icmp6):
            stream.keys.add(key)
        if not (icmp or icmp6):
            stream.frames += 1
            stream.bytes += int(length)
    return [s for s in streams.values() if s.frames]


def flow_conversations(flows: Iterable[FlowBatch]) -> list[tuple[Conversation, int, int, int]]:
    """Our TCP and UDP flows as (conversation, frames, bytes, VLAN)."""
    found = []
    for batch in flows:
        for i in range(len(batch)):
            transport = {6: "tcp", 17: "udp"}.get(int(batch.protocol[i]))
            if transport is None:
                continue
            key = canonical(transport, ip_to_str(batch.src_ip[i]), int(batch.src_port[i]),
                            ip_to_str(batch.dst_ip[i]), int(batch.dst_port[i]))
            frames = int(batch.packets_fwd[i] + batch.packets_bwd[i])
            found.append((key, frames, int(batch.bytes_fwd[i] + batch.bytes_bwd[i]), int(batch.vlan[i])))
    return found


def packet_conversations(batches: Iterable[PacketBatch]) -> list[Conversation | None]:
    """The conversation each frame of the capture falls in for us (None: not a TCP/UDP packet)."""
    keys: list[Conversation | None] = []
    for batch in batches:
        for i in range(len(batch)):
            transport = {6: "tcp", 17: "udp"}.get(int(batch.protocol[i]))
            if batch.status[i] != DecodeStatus.OK or transport is None:
                keys.append(None)
                continue
            keys.append(canonical(transport, ip_to_str(batch.src_ip[i]), int(batch.src_port[i]),
                                  ip_to_str(batch.dst_ip[i]), int(batch.dst_port[i])))
    return keys


@dataclass(slots=True)
class Comparison:
    tshark: int  # conversations tshark found
    identical: int  # of those, how many we have with the same frames and bytes
    by_category: Counter[str]  # conversations that differ (on either side), by category
    tshark_by_category: Counter[str]  # tshark's conversations that differ, by category
    unexplained: list[tuple[Conversation, list[tuple[int, int]], list[tuple[int, int]]]]  # key, theirs, ours

    @property
    def identical_share(self) -> float:
        return self.identical / self.tshark


def compare(rows: list[list[str]], flows: list[tuple[Conversation, int, int, int]],
            frame_keys: list[Conversation | None]) -> Comparison:
    """Match conversations by (endpoints, frames, bytes); put every one that differs in a category.

    Beyond the frame categories (``tunnel``, ``fragment``, ``icmp``): ``vlan`` (the same packets seen on several
    VLANs: one flow per VLAN for us, one conversation for tshark), ``split`` (same packets, cut differently: our
    idle/active timeout ends a flow where tshark keeps one stream, or tshark starts a stream without a SYN; a SYN
    with a new sequence number starts a new one for both, by the rule of ``collectors/flows/reference.py``),
    ``undecoded`` (frames our reader does not decode to IP, e.g. 802.3 LLC/SNAP framing).
    """
    streams = tshark_streams(rows)
    theirs: dict[Conversation, Counter[tuple[int, int]]] = defaultdict(Counter)
    their_rows: dict[Conversation, list[int]] = defaultdict(list)
    merged: set[Conversation] = set()
    for s in streams:
        theirs[s.key][(s.frames, s.bytes)] += 1
        their_rows[s.key] += s.rows
        if len(s.keys) > 1:
            merged |= s.keys
    ours: dict[Conversation, Counter[tuple[int, int]]] = defaultdict(Counter)
    vlans: dict[Conversation, set[int]] = defaultdict(set)
    for key, frames, size, vlan in flows:
        ours[key][(frames, size)] += 1
        vlans[key].add(vlan)
    our_rows: dict[Conversation, list[int]] = defaultdict(list)
    for index, key in enumerate(frame_keys):
        if key is not None:
            our_rows[key].append(index)
    identical = 0
    by_category: Counter[str] = Counter()
    tshark_by_category: Counter[str] = Counter()
    unexplained = []
    for key in theirs.keys() | ours.keys():
        common = theirs[key] & ours[key]
        identical += sum(common.values())
        differing = sum((theirs[key] - common).values()) + sum((ours[key] - common).values())
        if not differing:
            continue
        found = {"merged"} if key in merged else set()
        for index in their_rows[key] + our_rows[key]:
            found |= frame_categories(rows[index])
        totals = [(sum(f * n for (f, _), n in side[key].items()), sum(b * n for (_, b), n in side[key].items()))
                  for side in (theirs, ours)]
        if not found and totals[0] == totals[1]:
            found.add("vlan" if len(vlans[key]) > 1 else "split")
        if not found and any(frame_keys[index] is None for index in their_rows[key]):
            found.add("undecoded")
        if found:
            by_category["+".join(sorted(found))] += differing
            tshark_by_category["+".join(sorted(found))] += sum((theirs[key] - common).values())
        else:
            unexplained.append((key, sorted(theirs[key].elements()), sorted(ours[key].elements())))
    return Comparison(len(streams), identical, by_category, tshark_by_category, unexplained)


def main() -> None:
    """Compare the fast meter with tshark on one capture and print the result (how bench/RESULTS.md was made).

    python -m tests.flows.oracle CAPTURE [TSHARK_FIELDS_FILE]   # the file: tshark -T fields -E separator='|' with
    the -e fields of FIELDS, in that order, and --disable-protocol for each of WILDCARD_DISSECTORS (running tshark
    on the whole mix takes about a quarter of an hour).
    """
    import os
    import sys

    from collectors.flows import FlowMeter
    from collectors.packets import CaptureReader

    capture = Path(sys.argv[1])
    if len(sys.argv) > 2:
        rows = [line.split("|") for line in Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()]
    else:
        rows = tshark_rows(capture, timeout=3600)
    batches = list(CaptureReader(capture))
    timeout = float(os.environ.get("SOC_ORACLE_TIMEOUT", "1e9"))  # none by default: tshark has none
    meter = FlowMeter(idle_timeout=timeout, active_timeout=timeout)
    flows = [meter.update(batch) for batch in batches] + [meter.flush()]
    result = compare(rows, flow_conversations(flows), packet_conversations(batches))
    print(f"tshark conversations {result.tshark}, identical {result.identical} ({result.identical_share:.2%})")
    print(f"differing conversations (both sides) by category: {dict(result.by_category.most_common())}")
    print(f"tshark's differing conversations by category: {dict(result.tshark_by_category.most_common())}")
    print(f"unexplained: {len(result.unexplained)}")
    for key, theirs, ours in result.unexplained[:50]:
        print(f"  {key}: tshark {theirs}, ours {ours}")


if __name__ == "__main__":
    main()
