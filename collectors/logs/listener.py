"""Syslog receiver: UDP datagrams and TCP streams (octet-counting or newline framing, optionally TLS).

Receivers only read and frame; messages wait in one bounded queue (``queue_size``) and are parsed by the consumer
iterating the source, so a slow consumer costs counted drops (``dropped["queue_full"]``), never memory. UDP has
no flow control, so by default a child process owns the UDP socket and forwards batches: the kernel buffer is
drained even while this process holds the GIL for parsing and detection. TCP needs no such help (the sender
waits). The framing of a TCP connection is decided by its first byte (RFC 6587): a digit means octet counting.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import selectors
import signal
import socket
import ssl
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from collectors.logs.base import MAX_MESSAGE_BYTES, CollectorError, Diagnostics, Malformed, Source
from collectors.logs.parsers import get_parser
from collectors.logs.reader import LineProcessor, LineSplitter
from soc.core.model import Event

Message = tuple[bytes, Any]  # the raw message and its sender (address tuple, or a name)


class BoundedBuffer:
    """Batches of messages waiting for a consumer, bounded in count and in bytes: what does not fit is dropped
    by the producer (and counted by it), so a stalled consumer costs messages, never memory."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self.messages = 0
        self.bytes = 0
        self._batches: deque[list[Message]] = deque()
        self.ready = threading.Condition()

    def put(self, batch: list[Message]) -> int:
        """Queue what fits of ``batch``; returns how many messages were dropped."""
        with self.ready:
            kept = 0
            size = 0
            for raw, _ in batch:
                if self.messages + kept >= self.max_messages or self.bytes + size + len(raw) > self.max_bytes:
                    break
                kept += 1
                size += len(raw)
            if kept:
                self._batches.append(batch if kept == len(batch) else batch[:kept])
                self.messages += kept
                self.bytes += size
                self.ready.notify()
            return len(batch) - kept

    def take(self, most: int, timeout: float = 0.0) -> list[Message]:
        """Up to ``most`` messages, waiting up to ``timeout`` for the first one."""
        with self.ready:
            if not self._batches and timeout > 0:
                self.ready.wait(timeout)
            taken: list[Message] = []
            while self._batches and len(taken) < most:
                batch = self._batches.popleft()
                room = most - len(taken)
                if len(batch) > room:
                    self._batches.appendleft(batch[room:])
                    batch = batch[:room]
                taken.extend(batch)
            self.messages -= len(taken)
            self.bytes -= sum(len(raw) for raw, _ in taken)
            return taken

    def take_batch(self) -> list[Message]:
        """The oldest batch, waiting as long as it takes."""
        with self.ready:
            while not self._batches:
                self.ready.wait()
            batch = self._batches.popleft()
            self.messages -= len(batch)
            self.bytes -= sum(len(raw) for raw, _ in batch)
            return batch

    def wake(self) -> None:
        with self.ready:
            self.ready.notify_all()


def _udp_socket(config: SyslogConfig) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # the kernel buffer absorbs bursts while the receiver is off the CPU (net.core.rmem_max may cap it)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, config.udp_buffer_bytes)
    sock.bind((config.host, config.udp_port or 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket, buffer: bytearray, most: int = 4096) -> list[Message]:
    """Every datagram waiting on a non-blocking socket (up to ``most``): one batch per wake-up, so the lock and the
    hand-over are paid per batch, not per message."""
    view = memoryview(buffer)
    batch: list[Message] = []
    try:
        while len(batch) < most:
            size, peer = sock.recvfrom_into(buffer)
            batch.append((view[:size].tobytes().rstrip(b"\n\x00"), peer))
    except (BlockingIOError, InterruptedError):
        pass
    return batch


def _udp_child(config: SyslogConfig, conn: Connection) -> None:
    """The UDP receiver process: owns the socket and forwards batches of datagrams through ``conn``, so a parent
    busy with parsing and detection (holding the GIL) never leaves the kernel buffer to overflow. Batches wait in
    this process (bounded like the parent's queue; drops are sent as counts) while the parent is slow."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        sock = _udp_socket(config)
    except OSError as exc:
        conn.send(str(exc))
        return
    conn.send(sock.getsockname())
    waiting = BoundedBuffer(config.queue_size, config.queue_bytes)
    lock = threading.Lock()  # one writer on the pipe at a time: batches and drop counts

    def forward() -> None:  # a blocking send must never stop the receive loop
        while True:
            batch = waiting.take_batch()
            try:
                with lock:
                    conn.send(batch)
            except OSError:
                return

    threading.Thread(target=forward, daemon=True).start()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(conn, selectors.EVENT_READ)
    buffer = bytearray(max(config.max_message_bytes + 1, 65536))
    while True:
        for key, _ in selector.select():
            if key.fileobj is conn:
                return  # the parent said stop, or is gone
        dropped = waiting.put(_drain(sock, buffer))
        if dropped:
            with lock:
                conn.send(dropped)


def _address(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


@dataclass(slots=True)
class SyslogConfig:
    """Where and how to listen. Port 0 picks a free port (see ``SyslogSource.udp_address``/``tcp_address``)."""

    host: str = "0.0.0.0"
    udp_port: int | None = 514
    tcp_port: int | None = None
    tls_certfile: str | None = None  # TLS on the TCP port when set (RFC 5425)
    tls_keyfile: str | None = None
    format: str = "syslog"
    queue_size: int = 100_000  # messages waiting to be parsed, at most
    queue_bytes: int = 64 << 20  # and their bytes, at most
    max_message_bytes: int = MAX_MESSAGE_BYTES
    udp_buffer_bytes: int = 8 << 20
    udp_receiver: str = "process"  # "process": a child process owns the UDP socket; "thread": a thread here

    def __post_init__(self) -> None:
        if self.udp_receiver not in ("process", "thread"):
            raise ValueError(f"udp_receiver must be 'process' or 'thread', not {self.udp_receiver!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyslogConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"syslog source: unknown keys {sorted(unknown)}")
        return cls(**data)


class SyslogSource(Source):
    """A running syslog listener; iterate it for events (blocks until a message arrives or :meth:`close`)."""

    def __init__(self, config: SyslogConfig, diagnostics: Diagnostics | None = None) -> None:
        self.config = config
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.name = f"syslog:{config.host}"
        self.received = 0  # messages framed off the wire (before queueing)
        self._queue = BoundedBuffer(config.queue_size, config.queue_bytes)
        self._received_lock = threading.Lock()
        self._parser = get_parser(config.format)
        self._processor = LineProcessor(self._parser, self.diagnostics, self.name, None, config.max_message_bytes)
        self._threads: list[threading.Thread] = []
        self._child: BaseProcess | None = None
        self._child_conn: Connection
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None
        self._tls: ssl.SSLContext | None = None
        if config.tls_certfile:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(config.tls_certfile, config.tls_keyfile)

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> SyslogSource:
        if self.config.udp_port is not None and self.config.udp_receiver == "process":
            self._start_udp_process()
        elif self.config.udp_port is not None:
            udp = _udp_socket(self.config)
            self.udp_address = udp.getsockname()
            self._sockets.append(udp)
            self._spawn(self._udp_loop, udp)
        if self.config.tcp_port is not None:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((self.config.host, self.config.tcp_port))
            tcp.listen(128)
            tcp.settimeout(0.2)
            self.tcp_address = tcp.getsockname()
            self._sockets.append(tcp)
            self._spawn(self._accept_loop, tcp)
        return self

    def close(self) -> None:
        self._closed.set()
        if self._child is not None:
            with contextlib.suppress(OSError):
                self._child_conn.send(None)  # the child stops when its pipe turns readable
            self._child.join(timeout=2)
            if self._child.is_alive():
                self._child.kill()
            self._child = None
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()
        self._queue.wake()

    def __enter__(self) -> SyslogSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"syslog-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    # --- receiving -----------------------------------------------------------------------------------------

    def _enqueue(self, batch: list[Message]) -> None:
        with self._received_lock:
            self.received += len(batch)
        dropped = self._queue.put(batch)
        if dropped:
            self.diagnostics.dropped("queue_full", dropped)

    def _udp_loop(self, sock: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        buffer = bytearray(max(self.config.max_message_bytes + 1, 65536))
        while not self._closed.is_set():
            if selector.select(timeout=0.2) and (batch := _drain(sock, buffer)):
                self._enqueue(batch)
        selector.close()

    def _start_udp_process(self) -> None:
        context = multiprocessing.get_context("fork")  # the child runs only socket code: nothing to re-import
        here, there = context.Pipe()
        self._child = context.Process(target=_udp_child, args=(self.config, there), daemon=True, name="syslog-udp")
        self._child.start()
        there.close()
        self._child_conn = here
        if not here.poll(10):
            raise CollectorError("the UDP receiver process did not start", self.name)
        reply = here.recv()
        if isinstance(reply, str):
            raise CollectorError(f"UDP receiver: {reply}", f"{self.config.host}:{self.config.udp_port}")
        self.udp_address = reply
        self._spawn(self._pipe_loop, here)

    def _pipe_loop(self, conn: Connection) -> None:
        while not self._closed.is_set():
            try:
                item = conn.recv() if conn.poll(0.2) else None
            except (EOFError, OSError):
                return
            if isinstance(item, int):  # messages the receiver process had no room for
                with self._received_lock:
                    self.received += item
                self.diagnostics.dropped("receiver_full", item)
            elif item:
                self._enqueue(item)

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._tcp_loop, conn, peer)

    def _tcp_loop(self, conn: socket.socket, peer: Any) -> None:
        stream: socket.socket = conn
        try:
            conn.settimeout(0.5)
            if self._tls is not None:
                try:
                    stream = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.diagnostics.malformed(Malformed("tls_handshake", _address(peer), 0, str(exc)))
                    return
            framer = TcpFramer(self.config.max_message_bytes)
            while not self._closed.is_set():
                try:
                    data = stream.recv(1 << 16)
                except TimeoutError:
                    continue
                except (OSError, ssl.SSLError):
                    break
                if not data:
                    break
                if batch := [(raw, peer) for raw in framer.feed(data)]:
                    self._enqueue(batch)
                if framer.error is not None:
                    self.diagnostics.malformed(Malformed("bad_frame", _address(peer), framer.consumed, framer.error))
                    break
            if batch := [(raw, peer) for raw in framer.flush()]:
                self._enqueue(batch)
        finally:
            stream.close()

    # --- consuming -----------------------------------------------------------------------------------------

    def poll(self, max_events: int = 10_000, timeout: float = 0.0) -> list[Event]:
        """Parse what is queued now (waiting up to ``timeout`` for the first message); never blocks longer."""
        events: list[Event] = []
        process = self._processor.process
        for raw, peer in self._queue.take(max_events, 0.0 if self._closed.is_set() else timeout):
            event = process(0, raw, _address(peer))
            if event is not None:
                events.append(event)
        return events

    def _events(self, wait: bool) -> Generator[Event | None, None, None]:
        while not (self._closed.is_set() and self._queue.messages == 0):
            events = self.poll(timeout=0.2 if wait else 0.0)
            yield from events
            if not events and not wait:
                yield None

    @property
    def done(self) -> bool:
        return self._closed.is_set() and self._queue.messages == 0

    def position(self) -> dict[str, Any]:
        return {"received": self.received, "queued": self._queue.messages}


class TcpFramer:
    """RFC 6587 framing of one TCP stream: octet counting (``"57 <34>1 ..."``) or newline-terminated (LF, also
    NUL). Decided by the first byte; an oversized octet-counted frame is cut and the rest skipped."""

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self.limit = limit
        self.octet_counting: bool | None = None
        self.error: str | None = None
        self.consumed = 0
        self._buffer = b""
        self._skip = 0  # bytes of an oversized frame still to drop
        self._lines = LineSplitter(0, limit)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.octet_counting is None:
            self.octet_counting = data[:1].isdigit()
        if not self.octet_counting:
            for _, raw, _ in self._lines.feed(data.replace(b"\x00", b"\n")):
                yield raw
            return
        buffer = self._buffer + data
        pos = 0
        while True:
            if self._skip:
                dropped = min(self._skip, len(buffer) - pos)
                self._skip -= dropped
                pos += dropped
                if self._skip:
                    break
            space = buffer.find(b" ", pos, pos + 12)
            if space < 0:
                if len(buffer) - pos > 11:
                    self.error = f"bad octet count {buffer[pos : pos + 12]!r}"
                break
            length_text = buffer[pos:space]
            if not length_text.isdigit():
                self.error = f"bad octet count {length_text!r}"
                break
            length = int(length_text)
            start = space + 1
            if length > self.limit:
                if len(buffer) - start < self.limit + 1:
                    break  # wait for enough to hand out the cut frame
                yield buffer[start : start + self.limit + 1]
                self._skip = length - (self.limit + 1)
                pos = start + self.limit + 1
                continue
            if len(buffer) - start < length:
                break
            yield buffer[start : start + length].rstrip(b"\n")
            pos = start + length
        self.consumed += pos
        self._buffer = buffer[pos:]

    def flush(self) -> Iterator[bytes]:
        if not self.octet_counting:
            for _, raw, _ in self._lines.flush():
                yield raw
