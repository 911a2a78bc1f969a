"""Bytes to events: split a byte stream into lines with their offsets, then decode, parse and annotate each one.

Both the file tail and the syslog listener go through :class:`LineProcessor`, so bad input is treated the same
everywhere: cut at :data:`~collectors.logs.base.MAX_MESSAGE_BYTES` (``log.flags: ["truncated"]``), invalid UTF-8
replaced, a line the parser refuses counted by reason and written to the dead-letter file.

Files go a block at a time (:meth:`LineSplitter.feed_block`, :meth:`LineProcessor.process_block`): the complete
lines of a read are decoded and split with one call each, and the per-line work is one tight loop, which is where
a file reader spends its time. Records one at a time (the syslog listener) use :meth:`LineProcessor.process`;
both give the same events and the same counts for the same line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from collectors.logs.base import MAX_MESSAGE_BYTES, Diagnostics, Malformed, ParseError, SkipLine, decode_line
from collectors.logs.parsers import LineParser
from soc.core.model import Event

CHUNK = 1 << 20


class HasOffset(Protocol):
    offset: int


class LineSplitter:
    """Incremental newline splitter over bytes with absolute offsets and bounded memory.

    ``feed(data)`` yields ``(offset, line_bytes, end_offset)`` for each complete line (``end_offset`` is where the
    next line starts: the position to checkpoint). Of a line longer than ``limit`` only the first ``limit + 1``
    bytes are kept (enough for the reader to see it is too long) and the rest is dropped as it arrives, so memory
    never holds more than ``limit`` bytes of an unfinished line. ``flush()`` yields a last line without newline.
    ``feed_block(data)`` is ``feed`` for bulk readers: the complete lines of ``data`` as one block of bytes.
    """

    def __init__(self, offset: int = 0, limit: int = MAX_MESSAGE_BYTES) -> None:
        self.offset = offset  # absolute offset of the first byte not yet consumed
        self.limit = limit
        self._pending = b""  # start of an unfinished line (at most ``limit + 1`` bytes)
        self._pending_offset = offset
        self._long = False  # the unfinished line is over-long: its further bytes are dropped

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes, int]]:
        head, start, body = self.feed_block(data)
        if head is not None:
            yield head
        if not body:
            return
        limit = self.limit
        newline = body.find(b"\n")
        begin = 0
        while newline >= 0:
            if newline - begin > limit:
                yield start + begin, body[begin : begin + limit + 1], start + newline + 1
            else:
                yield start + begin, body[begin:newline], start + newline + 1
            begin = newline + 1
            newline = body.find(b"\n", begin)

    def feed_block(self, data: bytes) -> tuple[tuple[int, bytes, int] | None, int, bytes]:
        """Consume ``data``; returns ``(head, start, body)``: ``head`` the line an earlier read began and ``data``
        ends (``(offset, line_bytes, end_offset)`` as :meth:`feed` yields it, or None), then ``body``, the complete
        lines after it with their newlines (``b""`` when none), whose first byte is at absolute offset ``start``.
        Lines in ``body`` are not cut: one longer than ``limit`` is the caller's to cut to ``limit + 1`` bytes."""
        base = self.offset
        self.offset += len(data)
        last = data.rfind(b"\n")
        if last < 0:  # no line ends here: all of it belongs to the unfinished line
            if self._pending or self._long:
                if not self._long:
                    self._pending = (self._pending + data)[: self.limit + 1]
                    self._long = len(self._pending) > self.limit
            elif data:
                self._pending_offset = base
                self._pending = data[: self.limit + 1]
                self._long = len(self._pending) > self.limit
            return None, base + len(data), b""
        head = None
        start = 0
        if self._pending or self._long:
            newline = data.find(b"\n")
            line = self._pending if self._long else (self._pending + data[:newline])[: self.limit + 1]
            head = (self._pending_offset, line, base + newline + 1)
            self._pending, self._long = b"", False
            start = newline + 1
        if last + 1 < len(data):
            self._pending_offset = base + last + 1
            self._pending = data[last + 1 : last + 2 + self.limit]
            self._long = len(self._pending) > self.limit
        return head, base + start, data[start : last + 1]

    def flush(self) -> Iterator[tuple[int, bytes, int]]:
        if self._pending:
            yield self._pending_offset, self._pending, self.offset
        self._pending, self._long = b"", False


class LineProcessor:
    """Decode, parse and annotate records; failures become counted :class:`Malformed` entries, never raise.

    ``file_path`` (files) goes to ``log.file.path``; the syslog listener passes the sender per call instead.
    """

    def __init__(
        self,
        parser: LineParser,
        diagnostics: Diagnostics,
        source: str,
        file_path: str | None = None,
        limit: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.parser = parser
        self.diagnostics = diagnostics
        self.source = source  # names the file or listener in dead letters
        self.file_path = file_path
        self.limit = limit

    def process(self, offset: int, raw: bytes, sender: str | None = None) -> Event | None:
        """One record (a line without its newline, at most ``limit + 1`` bytes) to its event, or None."""
        stats = self.diagnostics.stats
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        truncated = False
        if len(raw) <= self.limit:
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text, truncated = decode_line(raw, stats, self.limit)
        else:
            text, truncated = decode_line(raw, stats, self.limit)
        if not text or text.isspace():
            stats.skipped["blank"] += 1
            return None
        try:
            event = self.parser.parse(text)
        except SkipLine as skip:
            stats.skipped[skip.reason] += 1
            return None
        except ParseError as exc:
            self._malformed(offset, text, exc, truncated)
            return None
        except Exception as exc:  # a parser bug on odd input must cost one line, not the collector
            self._parser_bug(offset, text, exc)
            return None
        log = event.get("log")
        if not isinstance(log, dict):
            log = event["log"] = {}
        if self.file_path is not None:
            log["file"] = {"path": self.file_path}  # a dict per event: later stages may edit one event's copy
        log["offset"] = offset
        if sender is not None:
            log["source"] = {"address": sender}
        if truncated:
            log["flags"] = ["truncated"]
        stats.count_event(event)
        return event

    def _malformed(self, offset: int, text: str, exc: ParseError, truncated: bool) -> None:
        # a line cut to the size limit often loses what made it parse: say so rather than blame the sender
        reason, message = (
            ("oversized", f"cut to {self.limit} bytes: {exc.message}") if truncated else (exc.reason, exc.message)
        )
        self.diagnostics.malformed(Malformed(reason, self.source, offset, message, text[:4096]))

    def _parser_bug(self, offset: int, text: str, exc: Exception) -> None:
        reason = f"parser_error:{type(exc).__name__}"
        self.diagnostics.malformed(Malformed(reason, self.source, offset, str(exc), text[:4096]))

    def block(
        self, head: tuple[int, bytes, int] | None, start: int, body: bytes, position: HasOffset
    ) -> Iterator[Event]:
        """Events of a read as :meth:`LineSplitter.feed_block` returns it: ``head`` (a line or None), then the
        complete lines in ``body`` (each with its newline; the first at absolute offset ``start``). Lazily, one
        event per ``next`` (``head`` is handled now): ``position.offset`` is set past each event's line before it
        is handed out, and past the last line at the end, so it covers exactly what was handed out (and lines
        skipped before it).

        The same as :meth:`process` on each line, faster: a body of valid UTF-8 without over-long lines (nearly
        every one) is decoded and split with one call each and its lines parsed in one loop; any other body goes
        line by line through :meth:`process`.
        """
        first = None
        if head is not None:
            offset, raw, end = head
            first = self.process(offset, raw)
            position.offset = end
        limit = self.limit
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return self._each_line(first, start, body, position)
        lines = text.split("\n")
        lines.pop()  # body ends with a newline (or is empty): the last piece is empty
        if len(text) == len(body):  # all ASCII: characters are bytes
            if len(body) > limit and max(map(len, lines)) > limit:
                return self._each_line(first, start, body, position)
            return self._parse_lines(first, start, lines, None, "\r" in text, position)
        sizes = list(map(len, body.split(b"\n")))
        sizes.pop()
        if max(sizes) > limit:
            return self._each_line(first, start, body, position)
        return self._parse_lines(first, start, lines, sizes, "\r" in text, position)

    def _each_line(self, first: Event | None, start: int, body: bytes, position: HasOffset) -> Iterator[Event]:
        """:meth:`block` for a body with invalid UTF-8 or an over-long line: each line as :meth:`process` takes
        it."""
        if first is not None:
            yield first
        process = self.process
        limit = self.limit
        end = start
        for raw in body.split(b"\n")[:-1]:
            offset = end
            end = offset + len(raw) + 1
            event = process(offset, raw[: limit + 1])
            position.offset = end
            if event is not None:
                yield event

    def _parse_lines(
        self,
        first: Event | None,
        start: int,
        lines: list[str],
        sizes: list[int] | None,
        cr: bool,
        position: HasOffset,
    ) -> Iterator[Event]:
        """The loop of :meth:`block` over decoded lines that all fit: ``sizes`` are their lengths in bytes (None:
        the lengths of the lines), ``cr`` whether any line may end in a carriage return."""
        if first is not None:
            yield first
        stats = self.diagnostics.stats
        counts = stats.by_source
        counted = counts.get
        skipped = stats.skipped
        parse = self.parser.parse
        path = self.file_path
        end = start
        for line, size in zip(lines, map(len, lines) if sizes is None else sizes, strict=True):
            offset = end
            end = offset + size + 1
            if cr and line[-1:] == "\r":
                line = line[:-1]
            if not line or line.isspace():
                skipped["blank"] += 1
                continue
            try:
                event = parse(line)
            except SkipLine as skip:
                skipped[skip.reason] += 1
                continue
            except ParseError as exc:
                self._malformed(offset, line, exc, False)
                continue
            except Exception as exc:  # a parser bug on odd input must cost one line, not the collector
                self._parser_bug(offset, line, exc)
                continue
            log = event.get("log")
            if log is not None and isinstance(log, dict):
                if path is not None:
                    log["file"] = {"path": path}  # a dict per event: later stages may edit one event's copy
                log["offset"] = offset
            else:  # the same, on the new dict process() would make
                event["log"] = {"file": {"path": path}, "offset": offset} if path is not None else {"offset": offset}
            try:  # Stats.count_event, inlined
                ls = event["soc"]["logsource"]
                key = (event["event"]["dataset"] or "unknown", ls["product"], ls["category"], ls["service"])
            except (KeyError, TypeError):
                stats.count_event(event)
            else:
                counts[key] = counted(key, 0) + 1
            position.offset = end
            yield event
        position.offset = end
