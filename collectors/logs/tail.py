"""Log files read once or followed like ``tail -F``, with a checkpoint (device, inode, offset) so a restart
resumes at the first line not yet handled.

Rotation: a *rename* (``app.log`` -> ``app.log.1``, new ``app.log``) is noticed because the path's inode changes:
the old file is read to its end first, then the new one from 0. A *copy-truncate* is noticed because the file is
shorter than our offset: reading starts again at 0. When the collector was down during a rename, the checkpointed
inode is looked for among the rotated siblings (``app.log.1``, ``app.log-20261125``) and finished first.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any, cast

from collectors.logs.base import _END, MAX_MESSAGE_BYTES, Diagnostics, Malformed, ParseError, Source, log
from collectors.logs.checkpoint import CheckpointStore
from collectors.logs.parsers import LineParser, get_parser, sniff_format
from collectors.logs.reader import CHUNK, LineProcessor, LineSplitter
from soc.core.model import Event


@dataclass(slots=True)
class FilePosition:
    path: str
    dev: int
    inode: int
    offset: int  # first byte not yet handled

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilePosition:
        return cls(str(data["path"]), int(data["dev"]), int(data["inode"]), int(data["offset"]))


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def rotated_siblings(path: Path) -> list[Path]:
    """Where logrotate and friends put the previous file: ``name.1``, ``name-20261125``, ``name.old``."""
    if not path.parent.is_dir():
        return []
    prefix = path.name
    return sorted(
        p
        for p in path.parent.iterdir()
        if p.name != prefix and p.name.startswith(prefix) and p.name[len(prefix)] in ".-_" and p.suffix != ".gz"
    )


def choose_parser(path: Path, fmt: str | None, options: dict[str, Any]) -> LineParser:
    """The parser named ``fmt``, or the one the first lines of the file look like (Zeek logs get their log name
    from the file name, ``dns.log`` -> ``dns``)."""
    opts = dict(options)
    opts.setdefault("log", path.name.split(".", 1)[0])
    if fmt is None:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            head = handle.read(64 * 1024)
        if not head.strip():
            raise ParseError("empty_file", "nothing to tell the format by yet")
        lines = head.decode("utf-8", "replace").splitlines()[:50]
        fmt = sniff_format(lines)
        if fmt is None:
            raise ParseError("unknown_format", "cannot tell the log format from the first lines; pass --format")
    return get_parser(fmt, **opts)


class FileSource(Source):
    """One log file. ``follow=False`` reads it to the end once (the last line even without newline);
    ``follow=True`` keeps reading as it grows, across rotations, until :meth:`close`.

    The position advances past a line once its event has been handed out (or the line was skipped or counted
    malformed), so ``commit()`` after handling an event never loses or repeats a line on restart.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        *,
        options: dict[str, Any] | None = None,
        diagnostics: Diagnostics | None = None,
        checkpoints: CheckpointStore | None = None,
        follow: bool = False,
        poll_interval: float = 0.25,
        limit: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.options = options or {}
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.checkpoints = checkpoints
        self.follow = follow
        self.poll_interval = poll_interval
        self.limit = limit
        self.name = f"file:{self.path.resolve()}"
        self._closed = False
        self._iterating = False
        self._handle: IO[bytes] | None = None
        self._identity: tuple[int, int] = (0, 0)
        self._splitter = LineSplitter(0, limit)
        self._processor: LineProcessor | None = None
        self._position = FilePosition(str(self.path), 0, 0, 0)
        self._blocker: Generator[Iterator[Event] | None, None, None] | None = None  # what poll() reads
        self._block: Iterator[Event] | None = None  # the block poll() is handing out

    # --- position ------------------------------------------------------------------------------------------

    def position(self) -> dict[str, Any]:
        return asdict(self._position)

    def commit(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.save(self.name, self.position())

    def close(self) -> None:
        """Stop following; safe from another thread (the reading loop closes the file when it sees the flag)."""
        self._closed = True
        for generator in (self._poller, self._blocker):
            if generator is not None:
                with contextlib.suppress(ValueError):  # "generator already executing": that thread will see the flag
                    generator.close()
        if not self._iterating:
            self._close_handle()

    def _close_handle(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    # --- reading -------------------------------------------------------------------------------------------

    def _open(self, path: Path, offset: int) -> None:
        if self._handle is not None:
            self._handle.close()
        gz = path.suffix == ".gz"
        # kept open across polls, closed by _open/close
        handle = cast(IO[bytes], gzip.open(path, "rb") if gz else path.open("rb"))  # noqa: SIM115
        stat = os.stat(path) if gz else os.fstat(handle.fileno())
        if not gz and offset > stat.st_size:
            offset = 0  # truncated while we were away (copy-truncate): the old offset means nothing now
        handle.seek(offset)
        self._handle, self._identity = handle, _identity(stat)
        self._splitter = LineSplitter(offset, self.limit)
        self._position = FilePosition(str(path), stat.st_dev, stat.st_ino, offset)
        if self._processor is None:
            parser = choose_parser(path, self.fmt, self.options)
            self._processor = LineProcessor(parser, self.diagnostics, str(path), str(path), self.limit)
        else:
            self._processor.source = self._processor.file_path = str(path)

    def _start(self) -> bool:
        """Open the file at the checkpoint. True when that is a rotated sibling (renamed while we were down) whose
        rest must be read before the file now at ``path``."""
        saved = self.checkpoints.load(self.name) if self.checkpoints is not None else None
        if saved is None:
            self._open(self.path, 0)
            return False
        position = FilePosition.from_dict(saved)
        try:
            current = _identity(self.path.stat())
        except FileNotFoundError:
            current = (-1, -1)
        if current == (position.dev, position.inode):
            self._open(self.path, position.offset)
            return False
        for sibling in rotated_siblings(self.path):
            if _identity(sibling.stat()) == (position.dev, position.inode):
                self._open(sibling, position.offset)
                return True
        self._open(self.path, 0)
        return False

    def _drain(self, final: bool) -> Iterator[Iterator[Event]]:
        """Everything readable now, a read at a time (each read's events lazily, see :meth:`LineProcessor.block`);
        ``final`` also takes a last line without newline."""
        assert self._handle is not None and self._processor is not None
        block = self._processor.block
        read, feed = self._handle.read, self._splitter.feed_block
        while chunk := read(CHUNK):
            head, start, body = feed(chunk)
            if head is not None or body:  # else the middle of a line: nothing ends here
                yield block(head, start, body, self._position)
        if final:
            for line in self._splitter.flush():
                yield block(line, line[2], b"", self._position)

    def _rotated(self) -> bool:
        """True when the path now names another file (rename rotation) or ours was truncated (copy-truncate)."""
        assert self._handle is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False  # between the rename and the creation of the new file: keep reading the old one
        if _identity(stat) != self._identity:
            return True
        if stat.st_size < self._splitter.offset:
            log.info("%s: truncated to %d bytes (copy-truncate rotation): reading from 0", self.path, stat.st_size)
            self.diagnostics.stats.rotations["truncate"] += 1
            self._open(self.path, 0)
        return False

    # --- handing out: events are parsed as they are taken, so the position follows each one ----------------------

    def __iter__(self) -> Iterator[Event]:
        blocks = cast(Iterator[Iterator[Event]], self._blocks(wait=True))  # no None: waiting, the reader sleeps
        return chain.from_iterable(blocks)

    def _events(self, wait: bool) -> Generator[Event | None, None, None]:
        for block in self._blocks(wait):
            if block is None:
                yield None
            else:
                yield from block

    def poll(self, max_events: int = 10_000, timeout: float = 0.0) -> list[Event]:
        if self._blocker is None:
            self._blocker = self._blocks(wait=False)
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while not self.done and len(events) < max_events:
            if self._block is not None:  # the read being handed out
                want = max_events - len(events)
                got = list(islice(self._block, want))
                events += got
                if len(got) < want:
                    self._block = None  # all of it handed out
                continue
            block = next(self._blocker, _END)
            if block is _END:
                self._done = True
            elif block is not None:
                self._block = block
                continue
            if events or time.monotonic() >= deadline or self.done:
                break
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return events

    def _blocks(self, wait: bool) -> Generator[Iterator[Event] | None, None, None]:
        self._iterating = True
        try:
            yield from self._read(wait)
            self._done = True
        finally:
            self._iterating = False
            self._close_handle()

    def _idle(self, wait: bool) -> Iterator[None]:
        """Nothing to read now: sleep when the caller iterates, say so when it polls."""
        if wait:
            time.sleep(self.poll_interval)
        else:
            yield None

    def _read(self, wait: bool) -> Iterator[Iterator[Event] | None]:
        while True:
            try:
                finish_rotated = self._start()
                break
            except (FileNotFoundError, ParseError) as exc:
                waiting = isinstance(exc, FileNotFoundError) or exc.reason == "empty_file"
                if self.follow and waiting and not self._closed:  # a followed file may appear or fill later
                    yield from self._idle(wait)
                    continue
                if isinstance(exc, ParseError) and exc.reason == "empty_file":
                    self.diagnostics.stats.skipped["empty_file"] += 1
                elif isinstance(exc, ParseError):
                    self.diagnostics.malformed(Malformed(exc.reason, str(self.path), 0, exc.message))
                else:
                    self.diagnostics.malformed(Malformed("unreadable_file", str(self.path), 0, str(exc)))
                return
            except (OSError, ValueError) as exc:
                self.diagnostics.malformed(Malformed("unreadable_file", str(self.path), 0, str(exc)))
                return
        if finish_rotated:
            yield from self._drain(final=True)
            self._open(self.path, 0)
        if not self.follow:
            yield from self._drain(final=True)
            return
        while not self._closed:
            got = False
            for block in self._drain(final=False):
                got = True
                yield block
            if self._closed:
                return
            if self._rotated():
                yield from self._drain(final=True)  # what was written to the old file before the rename
                self.diagnostics.stats.rotations["rename"] += 1
                self._open(self.path, 0)
                continue
            if not got:
                yield from self._idle(wait)
