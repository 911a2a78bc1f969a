"""Bytes to events: split a byte stream into lines with their offsets, then decode, parse and annotate each one.

Both the file tail and the syslog listener go through :class:`LineProcessor`, so bad input is treated the same
everywhere: cut at :data:`~collectors.logs.base.MAX_MESSAGE_BYTES` (``log.flags: ["truncated"]``), invalid UTF-8
replaced, a line the parser refuses counted by reason and written to the dead-letter file.
"""

from __future__ import annotations

from collections.abc import Iterator

from collectors.logs.base import MAX_MESSAGE_BYTES, Diagnostics, Malformed, ParseError, SkipLine, decode_line
from collectors.logs.parsers import LineParser
from soc.model import Event

CHUNK = 1 << 20


class LineSplitter:
    """Incremental newline splitter over bytes with absolute offsets and bounded memory.

    ``feed(data)`` yields ``(offset, line_bytes, end_offset)`` for each complete line (``end_offset`` is where the
    next line starts: the position to checkpoint). Of a line longer than ``limit`` only the first ``limit + 1``
    bytes are kept (enough for the reader to see it is too long) and the rest is dropped as it arrives, so memory
    never holds more than ``limit`` bytes of an unfinished line. ``flush()`` yields a last line without newline.
    """

    def __init__(self, offset: int = 0, limit: int = MAX_MESSAGE_BYTES) -> None:
        self.offset = offset  # absolute offset of the first byte not yet consumed
        self.limit = limit
        self._pending = b""  # start of an unfinished line (at most ``limit + 1`` bytes)
        self._pending_offset = offset
        self._long = False  # the unfinished line is over-long: its further bytes are dropped

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes, int]]:
        base = self.offset
        self.offset += len(data)
        start = 0
        newline = data.find(b"\n")
        if (self._pending or self._long) and newline >= 0:
            line = self._pending if self._long else (self._pending + data[:newline])[: self.limit + 1]
            yield self._pending_offset, line, base + newline + 1
            self._pending, self._long = b"", False
            start = newline + 1
            newline = data.find(b"\n", start)
        elif self._pending or self._long:
            if not self._long:
                self._pending = (self._pending + data)[: self.limit + 1]
                self._long = len(self._pending) > self.limit
            return
        while newline >= 0:
            if newline - start > self.limit:
                yield base + start, data[start : start + self.limit + 1], base + newline + 1
            else:
                yield base + start, data[start:newline], base + newline + 1
            start = newline + 1
            newline = data.find(b"\n", start)
        if start < len(data):
            self._pending_offset = base + start
            self._pending = data[start : start + self.limit + 1]
            self._long = len(self._pending) > self.limit

    def flush(self) -> Iterator[tuple[int, bytes, int]]:
        if self._pending:
            yield self._pending_offset, self._pending, self.offset
        self._pending, self._long = b"", False


class LineProcessor:
    """Decode, parse and annotate one record; failures become counted :class:`Malformed` entries, never raise.

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
            # a line cut to the size limit often loses what made it parse: say so rather than blame the sender
            reason, message = (
                ("oversized", f"cut to {self.limit} bytes: {exc.message}") if truncated else (exc.reason, exc.message)
            )
            self.diagnostics.malformed(Malformed(reason, self.source, offset, message, text[:4096]))
            return None
        except Exception as exc:  # a parser bug on odd input must cost one line, not the collector
            reason = f"parser_error:{type(exc).__name__}"
            self.diagnostics.malformed(Malformed(reason, self.source, offset, str(exc), text[:4096]))
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
