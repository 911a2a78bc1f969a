"""What every log source and parser shares: the error type, the counters, the dead-letter file, the source interface.

Bad input never stops a collector: each malformed record becomes a :class:`Malformed` that is counted by reason,
logged with its file and offset, and (when a dead-letter path is configured) appended to a JSONL file.
"""

from __future__ import annotations

import codecs
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from soc.core.errors import SocError
from soc.core.model import Event

log = logging.getLogger("collectors.logs")

MAX_MESSAGE_BYTES = 64 * 1024  # a longer line is cut here and flagged; syslog receivers commonly stop at 64 KiB


class CollectorError(SocError):
    """A log-collector error that knows where it happened (file or peer, and a byte offset or record number)."""

    def __init__(self, message: str, source: str = "", offset: int | None = None) -> None:
        self.source = source
        super().__init__(message, path=source or None, offset=offset)


class ParseError(CollectorError):
    """A record a parser cannot read; ``reason`` is the short counter key (``bad_header``, ``bad_json``, ...)."""

    def __init__(self, reason: str, message: str, source: str = "", offset: int | None = None) -> None:
        self.reason = reason
        super().__init__(message, source, offset)


class SkipLine(Exception):
    """Raised by a parser for a line that is neither a record nor bad input (a W3C ``#Fields`` directive): the
    reader counts it under ``stats.skipped`` and never dead-letters it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(slots=True)
class Malformed:
    """One skipped record: why, where, and its (possibly cut) text."""

    reason: str
    source: str
    offset: int
    message: str
    raw: str = ""


@dataclass
class Stats:
    """Counters a run exposes: events by dataset and by log source, malformed by reason, truncations and drops."""

    # events by (event.dataset, logsource product, category, service): one count per event, the views derived
    by_source: dict[tuple[str, str | None, str | None, str | None], int] = field(default_factory=dict)
    malformed: Counter[str] = field(default_factory=Counter)  # by reason
    skipped: Counter[str] = field(default_factory=Counter)  # not records (blank lines, directives), by reason
    truncated: int = 0
    utf8_replaced: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # by reason (queue_full, ...)
    rotations: Counter[str] = field(default_factory=Counter)  # file rotations followed: rename, truncate

    def count_event(self, event: Event) -> None:
        ls = event["soc"]["logsource"]
        key = (event["event"].get("dataset") or "unknown", ls.get("product"), ls.get("category"), ls.get("service"))
        self.by_source[key] = self.by_source.get(key, 0) + 1

    @property
    def events(self) -> Counter[str]:
        """Events by ``event.dataset`` (``unknown`` when unset)."""
        out: Counter[str] = Counter()
        for key, n in self.by_source.items():
            out[key[0]] += n
        return out

    @property
    def logsources(self) -> Counter[str]:
        """Events by ``product/category/service`` (``-`` for None)."""
        out: Counter[str] = Counter()
        for key, n in self.by_source.items():
            out["/".join(p or "-" for p in key[1:])] += n
        return out

    def merge(self, other: Stats) -> None:
        for key, n in other.by_source.items():
            self.by_source[key] = self.by_source.get(key, 0) + n
        self.malformed.update(other.malformed)
        self.skipped.update(other.skipped)
        self.dropped.update(other.dropped)
        self.rotations.update(other.rotations)
        self.truncated += other.truncated
        self.utf8_replaced += other.utf8_replaced

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": dict(self.events),
            "logsources": dict(self.logsources),
            "malformed": dict(self.malformed),
            "skipped": dict(self.skipped),
            "truncated": self.truncated,
            "utf8_replaced": self.utf8_replaced,
            "dropped": dict(self.dropped),
            "rotations": dict(self.rotations),
        }


class Diagnostics:
    """Where a source reports what it skipped: counters, the log, and an optional dead-letter JSONL file."""

    def __init__(self, dead_letter: str | Path | None = None, stats: Stats | None = None) -> None:
        self.stats = stats if stats is not None else Stats()
        self.dead_letter_path = Path(dead_letter) if dead_letter is not None else None
        self._file: IO[str] | None = None
        self._lock = threading.Lock()  # the syslog listener reports from its receive threads

    LOG_FIRST = 20  # per reason: a flood of bad lines must not become a flood of log lines (dead letters keep all)

    def malformed(self, item: Malformed) -> None:
        with self._lock:
            count = self.stats.malformed[item.reason] = self.stats.malformed[item.reason] + 1
            if count <= self.LOG_FIRST:
                log.warning("%s: offset %d: skipped (%s): %s", item.source, item.offset, item.reason, item.message)
            if count == self.LOG_FIRST:
                log.warning("further lines skipped for %r are counted, not logged", item.reason)
            if self.dead_letter_path is not None:
                if self._file is None:
                    self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.dead_letter_path.open("a", encoding="utf-8")
                self._file.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
                self._file.flush()

    def dropped(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.stats.dropped[reason] += count

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def decode_line(raw: bytes, stats: Stats | None = None, limit: int = MAX_MESSAGE_BYTES) -> tuple[str, bool]:
    """Bytes of one record to text: cut at ``limit`` bytes, invalid UTF-8 replaced. Returns (text, truncated)."""
    truncated = len(raw) > limit
    if truncated:
        raw = raw[:limit]
        if stats is not None:
            stats.truncated += 1
    try:
        return raw.decode("utf-8"), truncated
    except UnicodeDecodeError:
        pass
    # final=False keeps a character split by our own cut out of the text instead of counting it as bad input
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(raw, final=not truncated)
    if stats is not None and "\ufffd" in text:
        stats.utf8_replaced += 1
    return text, truncated


def logsource(product: str | None = None, category: str | None = None, service: str | None = None) -> dict[str, Any]:
    return {"product": product, "category": category, "service": service}


class Source(ABC):
    """A stream of events that knows where it is.

    - ``for event in source``: events one at a time (a followed file or a listener waits for more until
      ``close()``); ``position()`` then covers exactly the events already handed out.
    - ``poll(max_events, timeout)``: the events available now, as a list, never waiting longer than ``timeout``
      (a pipeline loop serving several sources); ``position()`` covers the whole list. ``done`` is True once
      a finite source (a file read once, an EVTX file) has nothing more to give.
    - ``commit()`` persists ``position()`` so a restart resumes right after the events the caller handled;
      ``close()`` stops the source and releases its files or sockets.
    """

    name: str = ""
    diagnostics: Diagnostics
    _done: bool = False
    _poller: Generator[Event | None, None, None] | None = None

    @property
    def done(self) -> bool:
        return self._done

    @abstractmethod
    def _events(self, wait: bool) -> Generator[Event | None, None, None]:
        """Events in order; with ``wait=False`` a ``None`` means "nothing more right now" instead of waiting."""

    def __iter__(self) -> Iterator[Event]:
        for event in self._events(wait=True):
            if event is not None:
                yield event
        self._done = True

    def poll(self, max_events: int = 10_000, timeout: float = 0.0) -> list[Event]:
        if self._poller is None:
            self._poller = self._events(wait=False)
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while not self.done and len(events) < max_events:
            event = next(self._poller, _END)
            if event is _END:
                self._done = True
            elif event is not None:
                events.append(event)
                continue
            if events or time.monotonic() >= deadline or self.done:
                break
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return events

    def position(self) -> dict[str, Any]:
        return {}

    def commit(self) -> None:  # noqa: B027 - optional hook: a socket has no position to persist
        """Persist :meth:`position`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and sockets."""

    @property
    def stats(self) -> Stats:
        return self.diagnostics.stats


_END: Any = object()
