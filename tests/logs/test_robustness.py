"""Any bytes through any parser: never an exception, every line accounted for (event, malformed or skipped), and
lines split across reads the same as whole."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.logs.base import Diagnostics
from collectors.logs.parsers import PARSERS, get_parser
from collectors.logs.reader import LineProcessor, LineSplitter

SEEDS = [
    b'<34>1 2026-11-25T07:43:26Z h app 1 - [a b="c"] msg',
    b"Nov 25 07:43:26 web01 sshd[1]: Failed password for root from 1.2.3.4 port 5 ssh2",
    b'10.0.0.5 - - [25/Nov/2026:07:43:26 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
    b'{"timestamp":"2026-11-25T07:43:26Z","event_type":"dns","dns":{"queries":[]}}',
    b"type=SYSCALL msg=audit(1.2:3): a=b msg='x=\"y z\"'",
]
lines = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(SEEDS).flatmap(lambda seed: st.integers(0, len(seed)).map(lambda cut: seed[:cut])),
    st.sampled_from(SEEDS).flatmap(
        lambda seed: st.tuples(st.integers(0, len(seed) - 1), st.binary(min_size=1, max_size=3)).map(
            lambda edit: seed[: edit[0]] + edit[1] + seed[edit[0] + 1 :]
        )
    ),
)


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(lines, max_size=12), name=st.sampled_from(sorted(PARSERS)))
def test_any_input_is_accounted_for(batch: list[bytes], name: str) -> None:
    diag = Diagnostics()
    processor = LineProcessor(get_parser(name), diag, "fuzz", limit=200)
    clean = [line.replace(b"\n", b" ") for line in batch]
    events = [e for e in (processor.process(i, line) for i, line in enumerate(clean)) if e is not None]
    stats = diag.stats
    assert len(events) + sum(stats.malformed.values()) + sum(stats.skipped.values()) == len(clean)
    assert sum(stats.events.values()) == len(events)
    assert not [reason for reason in stats.malformed if reason.startswith("parser_error")]  # no parser bug hit
    for event in events:
        assert set(event["soc"]["logsource"]) == {"product", "category", "service"}
        assert isinstance(event["@timestamp"], str) and event["@timestamp"].endswith("Z")


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8), limit=st.integers(1, 50))
def test_splitting_is_independent_of_read_sizes(data: bytes, cuts: list[int], limit: int) -> None:
    splitter = LineSplitter(0, limit)
    expected = list(splitter.feed(data)) + list(splitter.flush())
    pieces = LineSplitter(0, limit)
    got = []
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        got += list(pieces.feed(data[start:cut]))
        start = cut
    assert got + list(pieces.flush()) == expected
    assert all(len(line) <= limit + 1 for _, line, _ in expected)  # bounded, however long the line
    assert [end for _, _, end in expected][-1:] in ([], [len(data)])  # every byte accounted for
