"""When a SYN on a port pair that already has a flow opens a new connection: our meters against tshark's TCP
stream numbers, on a crafted capture with one port pair per case (the rule: ``collectors/flows/reference.py``).

Each case is a packet sequence on one port pair, with the number of connections it holds; tshark is the oracle
for where each connection starts, and the count makes sure the case exercises what its name says."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from collectors.flows import FlowMeter, ReferenceFlowMeter
from collectors.packets import CaptureReader
from lab.traffic import Capture
from soc.core.model import FlowBatch, FlowEnd

from .oracle import Conversation, canonical, flow_conversations, tshark_rows, tshark_streams
from .test_flows_reference import assert_same_flows, run

CLIENT, SERVER, SERVER_PORT = "10.0.0.1", "10.0.0.2", 80
C, S = True, False  # who sends: the client (the flow's initiator) or the server


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    packets: tuple[tuple[bool, str, int], ...]  # (client sends?, flags, sequence number)
    connections: int


CASES = (
    Case("retransmitted SYN", ((C, "S", 100), (C, "S", 100)), 1),
    Case("SYN with a new number, no answer (a flood reusing a port)", ((C, "S", 100), (C, "S", 200)), 2),
    Case("SYN with a new number on an established connection",
         ((C, "S", 100), (S, "SA", 500), (C, "A", 101), (C, "PA", 101), (C, "S", 300)), 2),
    Case("SYN with a new number after FIN", ((C, "S", 100), (S, "SA", 500), (C, "FA", 101), (C, "S", 700)), 2),
    Case("opening SYN again after FIN", ((C, "S", 100), (S, "SA", 500), (C, "FA", 101), (C, "S", 100)), 1),
    Case("opening SYN again after RST", ((C, "S", 100), (S, "RA", 0), (C, "S", 100)), 1),
    Case("the server's SYN with another number than its SYN/ACK", ((C, "S", 100), (S, "SA", 500), (S, "S", 900)), 2),
    Case("the server's SYN with its SYN/ACK's number", ((C, "S", 100), (S, "SA", 500), (S, "S", 500)), 1),
    Case("simultaneous open: the server's first packet is a SYN", ((C, "S", 100), (S, "S", 500)), 1),
    Case("the server's first SYN, then another", ((C, "S", 100), (S, "S", 500), (S, "S", 600)), 2),
    Case("a SYN/ACK with a new number is not a new connection", ((S, "SA", 500), (S, "SA", 900)), 1),
    Case("picked up mid-connection, then its SYN (one below)", ((C, "A", 100), (C, "S", 99)), 1),
    Case("picked up mid-connection, then a SYN with the segment's number", ((C, "A", 100), (C, "S", 100)), 2),
    Case("picked up at number 0, then its SYN (one below, wrapped)", ((C, "A", 0), (C, "S", 0xFFFFFFFF)), 1),
    Case("three numbers in a row, then data", ((C, "S", 100), (C, "S", 200), (C, "S", 300), (C, "A", 301)), 3),
    Case("a new connection replaces the old one's number", ((C, "S", 100), (C, "S", 200), (C, "S", 100)), 3),
)


def client_port(case: Case) -> int:
    return 40000 + CASES.index(case)


@dataclass(slots=True)
class Metered:
    tshark: dict[Conversation, Counter[tuple[int, int]]]
    fast: list[FlowBatch]
    reference: list[FlowBatch]


@cache
def metered(folder: Path) -> Metered:
    capture = Capture(gateway="10.0.0.254", local=[ipaddress.IPv4Network("10.0.0.0/24")])
    ts = 1_700_000_000 * 1_000_000_000
    for case in CASES:
        port = client_port(case)
        for client_sends, flags, seq in case.packets:
            ts += 1_000_000
            ends = (CLIENT, port, SERVER, SERVER_PORT) if client_sends else (SERVER, SERVER_PORT, CLIENT, port)
            capture.segment(ts, *ends, flags, seq, payload=b"data" if "P" in flags else b"")
    path = folder / "syn_cases.pcap"
    capture.write(path)
    tshark: dict[Conversation, Counter[tuple[int, int]]] = {}
    for stream in tshark_streams(tshark_rows(path)):
        tshark.setdefault(stream.key, Counter())[(stream.frames, stream.bytes)] += 1
    batches = list(CaptureReader(path, chunk_packets=7))  # small chunks: flows continue across them
    return Metered(tshark, run(FlowMeter(), batches), run(ReferenceFlowMeter(), batches))


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Metered:
    return metered(tmp_path_factory.mktemp("syn_cases"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_new_connections_start_where_tshark_starts_a_stream(case: Case, cases: Metered) -> None:
    key = canonical("tcp", CLIENT, client_port(case), SERVER, SERVER_PORT)
    theirs = cases.tshark[key]
    assert sum(theirs.values()) == case.connections, "tshark does not see this case as described"
    for flows in (cases.fast, cases.reference):
        ours = Counter((frames, size) for k, frames, size, _ in flow_conversations(flows) if k == key)
        assert ours == theirs
        port = client_port(case)
        reasons = Counter(int(batch.end_reason[i]) for batch in flows for i in range(len(batch))
                          if port in (int(batch.src_port[i]), int(batch.dst_port[i])))
        assert reasons == Counter({FlowEnd.TCP_CLOSED: case.connections - 1, FlowEnd.END_OF_CAPTURE: 1})


def test_fast_meter_equals_reference_on_the_cases(cases: Metered) -> None:
    for ours, theirs in zip(cases.fast, cases.reference, strict=True):
        assert_same_flows(ours, theirs)
