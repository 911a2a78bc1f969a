"""The syslog listener over real loopback sockets: UDP, TCP with octet counting and newline framing, TLS,
oversized and invalid-UTF-8 messages, and a full queue that drops and counts instead of growing."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from collectors.logs.base import Diagnostics
from collectors.logs.listener import BoundedBuffer, SyslogConfig, SyslogSource, TcpFramer
from soc.core.model import Event

RFC5424 = (
    "<86>1 2026-11-25T07:43:26.123456Z web01 sshd 2211 - - Failed password for root from 198.51.100.{n} port 5555 ssh2"
)
RFC3164 = "<38>Nov 25 07:43:26 web01 sshd[2211]: Accepted password for alice from 10.0.0.{n} port 51234 ssh2"


def collect(source: SyslogSource, count: int, timeout: float = 10.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events.extend(source.poll(timeout=0.05))
    return events


def listener(**kwargs: object) -> SyslogSource:
    config = SyslogConfig(host="127.0.0.1", udp_port=0, tcp_port=0)
    for key, value in kwargs.items():
        setattr(config, key, value)
    return SyslogSource(config).start()


@pytest.mark.parametrize("receiver", ["process", "thread"])
def test_udp_rfc5424_and_rfc3164(receiver: str) -> None:
    with listener(udp_receiver=receiver) as source:
        assert source.udp_address is not None
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for n in range(1, 51):
            sender.sendto((RFC5424 if n % 2 else RFC3164).format(n=n).encode(), source.udp_address)
        events = collect(source, 50)
    assert len(events) == 50
    failed = [e for e in events if e["event"]["outcome"] == "failure"]
    accepted = [e for e in events if e["event"]["outcome"] == "success"]
    assert len(failed) == len(accepted) == 25
    assert failed[0]["source"]["ip"] == "198.51.100.1"
    assert failed[0]["@timestamp"] == "2026-11-25T07:43:26.123456Z"
    assert failed[0]["log"]["syslog"]["facility"]["code"] == 10
    assert accepted[0]["user"]["name"] == "alice"
    assert accepted[0]["soc"]["logsource"] == {"product": "linux", "category": None, "service": "auth"}
    assert failed[0]["log"]["source"]["address"].startswith("127.0.0.1:")
    assert source.received == 50


def test_tcp_octet_counting_and_newline_framing() -> None:
    with listener() as source:
        assert source.tcp_address is not None
        framed = b"".join(f"{len(m.encode())} {m}".encode() for m in (RFC5424.format(n=n) for n in range(1, 21)))
        lines = b"".join((RFC3164.format(n=n) + "\n").encode() for n in range(1, 21))
        for payload in (framed, lines):
            with socket.create_connection(source.tcp_address) as conn:
                for i in range(0, len(payload), 37):  # frames split across segments
                    conn.sendall(payload[i : i + 37])
        events = collect(source, 40)
    assert len(events) == 40
    assert sorted(e["source"]["ip"] for e in events if e["event"]["outcome"] == "failure") == sorted(
        f"198.51.100.{n}" for n in range(1, 21)
    )


def test_tcp_framer_cuts_oversized_frames_and_skips_the_rest() -> None:
    framer = TcpFramer(limit=10)
    body = b"<13>" + b"x" * 30
    data = f"{len(body)} ".encode() + body + b"5 hello"
    out = [m for i in range(0, len(data), 4) for m in framer.feed(data[i : i + 4])]
    assert out == [body[:11], b"hello"]
    broken = TcpFramer()
    assert list(broken.feed(b"12x <13>hello")) == []
    assert broken.error is not None


def test_oversized_and_invalid_utf8_are_flagged_not_fatal(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    config = SyslogConfig(host="127.0.0.1", udp_port=0, tcp_port=None, max_message_bytes=200)
    with SyslogSource(config, Diagnostics(dead_letter=dead)).start() as source:
        assert source.udp_address is not None
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"<13>Nov 25 07:43:26 web01 app: " + b"A" * 1000, source.udp_address)
        sender.sendto(b"<13>Nov 25 07:43:26 web01 app: caf\xc3 au lait \xff", source.udp_address)
        sender.sendto(b"garbage that is not syslog", source.udp_address)
        events = collect(source, 2)
        time.sleep(0.2)
        events += source.poll()
    assert len(events) == 2
    long, bad = sorted(events, key=lambda e: len(e["message"]), reverse=True)
    assert long["log"]["flags"] == ["truncated"]
    assert len(long["message"]) == 200 - len("<13>Nov 25 07:43:26 web01 app: ")
    assert bad["message"] == "caf\ufffd au lait \ufffd"
    assert source.stats.truncated == 1
    assert source.stats.utf8_replaced == 1
    assert source.stats.malformed == {"no_match": 1}
    source.diagnostics.close()
    assert "garbage that is not syslog" in dead.read_text()


@pytest.mark.parametrize("receiver", ["thread", "process"])
def test_full_queue_drops_and_counts(receiver: str) -> None:
    with listener(queue_size=10, udp_receiver=receiver) as source:
        assert source.udp_address is not None
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for n in range(100):
            sender.sendto(RFC3164.format(n=n % 250).encode(), source.udp_address)
        deadline = time.monotonic() + 5
        while source.received < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        events = source.poll()
    assert source.received == 100
    if receiver == "thread":
        assert len(events) == 10
        assert source.stats.dropped == {"queue_full": 90}
    else:  # the receiver process holds 10 more of its own; where the rest is dropped depends on timing
        assert 10 <= len(events) <= 20
        assert sum(source.stats.dropped.values()) + len(events) == 100 - source.position()["queued"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_octet_counting(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with listener(udp_port=None, tls_certfile=str(cert), tls_keyfile=str(key)) as source:
        assert source.tcp_address is not None
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with (
            socket.create_connection(source.tcp_address) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as conn,
        ):
            for n in range(1, 11):
                message = RFC5424.format(n=n).encode()
                conn.sendall(f"{len(message)} ".encode() + message)
            # read before closing: closing with the server's unread session tickets makes the kernel reset
            events = collect(source, 10)
        # a client speaking plain text to the TLS port is refused and counted, the listener keeps going
        with socket.create_connection(source.tcp_address) as plain:
            plain.sendall(b"<13>Nov 25 07:43:26 web01 app: hello\n")
        deadline = time.monotonic() + 5
        while not source.stats.malformed and time.monotonic() < deadline:
            time.sleep(0.02)
    assert [e["source"]["ip"] for e in events] == [f"198.51.100.{n}" for n in range(1, 11)]
    assert source.stats.malformed == {"tls_handshake": 1}


def test_bounded_buffer_limits_messages_and_bytes() -> None:
    buffer = BoundedBuffer(max_messages=5, max_bytes=100)
    assert buffer.put([(b"x" * 30, "a")] * 4) == 1  # the 4th would pass 100 bytes
    assert (buffer.messages, buffer.bytes) == (3, 90)
    assert buffer.put([(b"y" * 10, "b")] * 3) == 2  # 10 bytes fit, then the 5-message cap... and 100 bytes
    assert [raw[:1] for raw, _ in buffer.take(10)] == [b"x", b"x", b"x", b"y"]
    assert (buffer.messages, buffer.bytes) == (0, 0)
    assert buffer.take(10, timeout=0.01) == []
