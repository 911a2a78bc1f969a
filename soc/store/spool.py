"""A disk spool in front of a store, so no write of the engine is lost while the store is down or slow.

Every engine write (alerts, events, records) goes to the store; when it cannot be reached the write is appended,
as one JSON line naming its operation, to this process's own *segment* in the spool folder, and delivered later
in the same order. Each writing process has its own segment (``segment-PID-TIME-RANDOM.jsonl``) and holds an
flock on it while it lives; a small cursor file beside it records how far it has been delivered. A drain delivers
the process's own segment and every other segment whose lock can be taken without waiting: its writer has died
(the kernel drops a dead process's flock), so a segment left by a killed engine is delivered exactly once by
whoever takes it. Delivery is at least once (a crash between delivering and moving the cursor re-delivers) and
the stores' writes are idempotent by id, so together every document is stored once.

Readers never lock anything and never create files here: the spool is opened on the first write that needs it.
The previous format (``alerts.jsonl`` and ``alerts.cursor``, guarded by ``lock``) is drained as one more orphan
segment, so an upgrade loses nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from soc.core.errors import StoreError, StoreUnavailable
from soc.core.model import Alert, Event
from soc.store.base import AlertStore

__all__ = ["DiskSpool", "SpoolError", "SpooledStore"]

ALERTS, EVENTS, RECORD = "alerts", "events", "record"  # the operation kinds of a spool record
_BATCH_DOCS = 1000  # consecutive alert or event records are delivered together up to this many documents
_SEGMENT_GLOB = "segment-*.jsonl"
_LEGACY_DATA, _LEGACY_CURSOR, _LEGACY_LOCK = "alerts.jsonl", "alerts.cursor", "lock"

SpoolRecord = dict[str, Any]


class SpoolError(StoreError):
    """The spool folder cannot be written (full disk, permissions): the write that needed it is not kept."""


_open_spools: weakref.WeakSet[DiskSpool] = weakref.WeakSet()


def _forget_segments_in_child() -> None:
    """A forked child shares its parent's open segment and so its flock: drop the child's copy, or the segment
    would look alive after the parent died, and the child must never append to the parent's segment."""
    for spool in list(_open_spools):
        spool._drop_segment_in_child()


os.register_at_fork(after_in_child=_forget_segments_in_child)


class _Segment:
    """One segment file with its cursor, its flock held through ``handle``."""

    def __init__(self, data: Path, cursor: Path, handle: IO[bytes], legacy: bool = False,
                 lock_handle: IO[bytes] | None = None) -> None:
        self.data = data
        self.cursor = cursor
        self.handle = handle
        self.legacy = legacy  # one alert's ECS document per line, no operation kind
        self.lock_handle = lock_handle  # the legacy format's lock file, held while draining it

    def position(self) -> int:
        return _read_cursor(self.cursor)

    def move_cursor(self, position: int) -> None:
        temporary = self.cursor.with_name(self.cursor.name + ".tmp")
        with open(temporary, "w") as handle:
            handle.write(str(position))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.cursor)

    def remove(self) -> None:
        """Delivered: data first, so a crash in between leaves only a stray cursor (removed by the next scan)."""
        self.data.unlink(missing_ok=True)
        self.cursor.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        self.handle.close()
        if self.lock_handle is not None:
            self.lock_handle.close()


def _read_cursor(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _cursor_of(data: Path) -> Path:
    return data.with_suffix(".cursor")


def _try_lock(handle: IO[bytes]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(path: Path, handle: IO[bytes]) -> bool:
    """False when ``path`` was removed (or replaced) after ``handle`` was opened: someone delivered it."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


class DiskSpool:
    """The spool folder: this process's segment (created on the first append) and everyone else's.

    ``drain(deliver)`` calls ``deliver(record)`` for each pending record in order; ``deliver`` raises
    :class:`StoreUnavailable` to stop (the cursor stays before that record) and deals with refusals itself."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.dead_letters = self.directory / "refused.jsonl"
        self._own: _Segment | None = None
        self._own_size = 0
        self._own_position = 0
        self._legacy_reported = False
        self._mutex = threading.RLock()  # a serve or run process may write from more than one thread
        _open_spools.add(self)

    # --- writing: this process's own segment ---

    def append(self, record: SpoolRecord) -> None:
        """Append one record to this process's segment, on disk (fsync'd) before returning."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        with self._mutex:
            segment = self._own or self._create_segment()
            try:
                segment.handle.seek(0, os.SEEK_END)
                segment.handle.write(line)
                segment.handle.flush()
                os.fsync(segment.handle.fileno())
            except OSError as exc:
                segment.handle.truncate(self._own_size)  # never leave half a record behind a failed write
                raise SpoolError(f"cannot append to the spool {segment.data}: {exc}") from exc
            self._own_size += len(line)

    def _create_segment(self) -> _Segment:
        """A new segment, locked before it gets the name other processes look for, so none of them can take it
        for an orphan in between."""
        name = f"segment-{os.getpid()}-{time.time_ns():x}-{secrets.token_hex(4)}.jsonl"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = self.directory / f".{name}.new"
            handle = open(temporary, "x+b")  # noqa: SIM115 - held (with its flock) while this process lives
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            temporary.rename(self.directory / name)
        except OSError as exc:
            raise SpoolError(f"cannot create a spool segment in {self.directory}: {exc}") from exc
        data = self.directory / name
        self._own = _Segment(data, _cursor_of(data), handle)
        self._own_size = self._own_position = 0
        return self._own

    def own_pending(self) -> bool:
        """This process's segment holds records not yet delivered (new writes must queue behind them)."""
        return self._own_size > self._own_position

    # --- reading: what waits, and delivering it ---

    def pending(self) -> int:
        """Bytes not yet delivered, over every segment (live writers' included) and the previous format."""
        total = 0
        for data in self._all_data_files():
            try:
                size = data.stat().st_size
            except FileNotFoundError:  # delivered meanwhile
                continue
            total += max(0, size - _read_cursor(_cursor_of(data)))
        return total

    def _all_data_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        legacy = self.directory / _LEGACY_DATA
        return ([legacy] if legacy.exists() else []) + sorted(self.directory.glob(_SEGMENT_GLOB), key=_age)

    def drain(self, deliver: Callable[[SpoolRecord], None], orphans: bool = True) -> int:
        """Deliver what waits: the previous format's file and dead writers' segments (oldest first, when
        ``orphans``), then this process's own. Returns how many records were delivered; raises
        StoreUnavailable from ``deliver`` with every cursor at the first record not delivered."""
        with self._mutex:
            delivered = 0
            if orphans:
                for segment in self._orphans():
                    try:
                        delivered += self._drain_segment(segment, deliver, own=False)
                    finally:
                        if not segment.handle.closed:
                            segment.close()
            if self._own is not None and self.own_pending():
                delivered += self._drain_segment(self._own, deliver, own=True)
            return delivered

    def _orphans(self) -> Iterator[_Segment]:
        """Segments no live process holds, each locked (by us) while it is yielded."""
        if not self.directory.is_dir():
            return
        legacy = self._take_legacy()
        if legacy is not None:
            yield legacy
        own = self._own.data if self._own is not None else None
        for data in sorted(self.directory.glob(_SEGMENT_GLOB), key=_age):
            if data == own:
                continue
            try:
                handle = open(data, "r+b")  # noqa: SIM115 - closed by the caller once drained
            except FileNotFoundError:
                continue
            if _try_lock(handle) and _same_file(data, handle):
                yield _Segment(data, _cursor_of(data), handle)
            else:  # its writer lives (it delivers its own), or another process is draining it now
                handle.close()
        for cursor in self.directory.glob("segment-*.cursor"):  # left by a crash between the two removals
            if not cursor.with_suffix(".jsonl").exists():
                cursor.unlink(missing_ok=True)

    def _take_legacy(self) -> _Segment | None:
        data = self.directory / _LEGACY_DATA
        if not data.exists():
            return None
        lock = open(self.directory / _LEGACY_LOCK, "a+b")  # noqa: SIM115 - the old engines' lock, held while draining
        if not _try_lock(lock):
            lock.close()
            if not self._legacy_reported:
                print(f"soc: {data} is still written by a running soc of the previous version (it holds "
                      f"{self.directory / _LEGACY_LOCK}); it is delivered once that process stops", file=sys.stderr)
                self._legacy_reported = True
            return None
        try:
            handle = open(data, "r+b")  # noqa: SIM115 - closed with the segment
        except FileNotFoundError:
            lock.close()
            return None
        return _Segment(data, self.directory / _LEGACY_CURSOR, handle, legacy=True, lock_handle=lock)

    def _drain_segment(self, segment: _Segment, deliver: Callable[[SpoolRecord], None], own: bool) -> int:
        handle = segment.handle
        size = os.fstat(handle.fileno()).st_size
        position = min(segment.position(), size)
        handle.seek(position)
        delivered = 0
        group: list[SpoolRecord] = []
        group_end = position

        def flush() -> None:
            nonlocal delivered, position
            if group:
                deliver(_merged(group))
                delivered += len(group)
                group.clear()
            if group_end != position:
                position = group_end
                segment.move_cursor(position)
                if own:
                    self._own_position = position

        for line in iter(handle.readline, b""):
            start = group_end
            if not line.endswith(b"\n"):
                # the writer died in the middle of this record (a live one holds its lock and never shows us a
                # torn record): keep its bytes in the refused file, so nothing is lost and nothing re-delivered
                flush()
                self.set_aside(line, f"record cut short at byte {start} of {segment.data} (its writer stopped "
                                     "while writing it)")
                group_end += len(line)
                break
            record = self._parse(line, segment, start)
            if record is not None and group and not _joins(group, record):
                flush()
            group_end += len(line)
            if record is not None:
                group.append(record)
                if record["op"] == RECORD or sum(len(r["docs"]) for r in group) >= _BATCH_DOCS:
                    flush()
        flush()
        if position >= os.fstat(handle.fileno()).st_size:  # all delivered: nothing of this segment is needed
            segment.remove()
            if own:
                self._own = None
                self._own_size = self._own_position = 0
        return delivered

    def _parse(self, line: bytes, segment: _Segment, offset: int) -> SpoolRecord | None:
        try:
            record = json.loads(line)
            if segment.legacy:
                record = {"op": ALERTS, "docs": [record]}
            if not isinstance(record, dict) or record.get("op") not in (ALERTS, EVENTS, RECORD):
                raise ValueError("no known operation kind")
            if record["op"] != RECORD and not isinstance(record.get("docs"), list):
                raise ValueError("no documents")
            return record
        except (ValueError, TypeError) as exc:
            self.set_aside(line, f"unreadable spool record at byte {offset} of {segment.data}: {exc}")
            return None

    # --- what the store refuses for good ---

    def set_aside(self, content: bytes | SpoolRecord, why: str) -> None:
        """Keep ``content`` (raw bytes, or a record with the reason added) in the refused file and say so."""
        if isinstance(content, dict):
            line = json.dumps({**content, "refused": why}, ensure_ascii=False, separators=(",", ":")).encode()
        else:
            line = content
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.dead_letters, "ab") as handle:
                handle.write(line if line.endswith(b"\n") else line + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SpoolError(f"cannot keep a refused document in {self.dead_letters}: {exc}") from exc
        print(f"soc: {why}; kept in {self.dead_letters}", file=sys.stderr)

    def close(self) -> None:
        """Release this process's segment: what it still holds is delivered by the next process that drains."""
        with self._mutex:
            if self._own is not None:
                if not self.own_pending() and self._own_size == 0:
                    self._own.remove()  # created but never written
                else:
                    self._own.close()
                self._own = None
        _open_spools.discard(self)

    def _drop_segment_in_child(self) -> None:
        if self._own is not None:
            self._own.handle.close()
            self._own = None
        self._own_size = self._own_position = 0


def _age(data: Path) -> tuple[int, str]:
    """Segments sort by creation time (in their name), so the oldest writes are delivered first."""
    parts = data.stem.split("-")
    try:
        return int(parts[2], 16), data.name
    except (IndexError, ValueError):
        return 0, data.name


def _joins(group: list[SpoolRecord], record: SpoolRecord) -> bool:
    return record["op"] != RECORD and record["op"] == group[0]["op"]


def _merged(group: list[SpoolRecord]) -> SpoolRecord:
    if len(group) == 1:
        return group[0]
    return {"op": group[0]["op"], "docs": [doc for record in group for doc in record["docs"]]}


_Result = TypeVar("_Result")
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _forward(method: _Method) -> _Method:
    """A method that calls the inner store's method of the same name (reads and people's actions)."""
    name = method.__name__

    def forward(self: SpooledStore, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.store, name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name  # not functools.wraps: it would copy __isabstractmethod__
    forward.__doc__ = method.__doc__
    return cast(_Method, forward)


class SpooledStore(AlertStore):
    """Writes through to ``store``; while it is unavailable, the engine's writes wait in ``spool``.

    Spooled: alerts, events, and records written by a process that writes alerts or events (an engine: its
    playbook runs, coverage, reports). Not spooled: triage and the audit log, and records written before any
    alert or event (people's actions: suppressions, incidents, users) — those must fail loudly, now."""

    def __init__(self, store: AlertStore, spool: DiskSpool) -> None:
        self.store = store
        self.spool = spool
        self.url = store.url
        self.spooled = 0  # alerts that had to wait in the spool during this run
        self.spooled_events = 0
        self.spooled_records = 0
        self.last_error: StoreUnavailable | None = None
        self._engine = False  # this process writes alerts or events, so its records are spooled too
        self._orphans_delivered = False

    # --- writes through the spool ---

    def write(self, alerts: Sequence[Alert]) -> None:
        alerts = list(alerts)
        self._engine = True
        if alerts:
            self._through(ALERTS, alerts, lambda: self._write_alerts(alerts))

    def write_events(self, events: Iterable[Event]) -> int:
        """Returns the store's count of new events, or how many were kept in the spool."""
        batch = list(events)
        self._engine = True
        if not batch:
            return 0
        return self._through(EVENTS, batch, lambda: self._write_events(batch))

    def put_record(self, kind: str, record_id: str, doc: dict[str, Any]) -> None:
        if not self._engine:
            self.store.put_record(kind, record_id, doc)
            return
        self._through(RECORD, [doc], lambda: self._put_record(kind, record_id, doc), kind=kind, id=record_id)

    def _through(self, op: str, items: list[Any], deliver: Callable[[], int], **fields: str) -> int:
        """Deliver now, or queue behind this process's earlier writes when those still wait (order is kept)."""
        if self._ready():
            try:
                return deliver()
            except StoreUnavailable as exc:  # partly delivered at most: the spool takes it all (idempotent)
                self._unavailable(exc)
        self._spool(op, items, fields)
        return len(items)

    def _spool(self, op: str, items: list[Any], fields: dict[str, str]) -> None:
        if op == ALERTS:
            self.spool.append({"op": ALERTS, "docs": [alert.to_ecs() for alert in items]})
            self.spooled += len(items)
        elif op == EVENTS:
            self.spool.append({"op": EVENTS, "docs": items})
            self.spooled_events += len(items)
        else:
            self.spool.append({"op": RECORD, **fields, "doc": items[0]})
            self.spooled_records += 1

    def _ready(self) -> bool:
        """Whether a new write may go straight to the store: nothing of ours waits before it. The first write
        also delivers what dead writers left."""
        if not self._orphans_delivered:  # until they are, each write tries them again with its own
            return self.deliver_spooled()
        return not self.spool.own_pending() or self._drain(orphans=False)

    def deliver_spooled(self) -> bool:
        """Deliver what this process may take (its own segment and dead writers'); True when all of it was
        delivered. Segments of live writers are theirs to deliver."""
        return self._drain(orphans=True)

    def _drain(self, orphans: bool) -> bool:
        try:
            self.spool.drain(self._deliver, orphans=orphans)
        except StoreUnavailable as exc:
            self._unavailable(exc)
            return False
        self._orphans_delivered = self._orphans_delivered or orphans
        if self.last_error is not None:
            print(f"soc: {self.url} is reachable again; the spooled writes were delivered", file=sys.stderr)
        self.last_error = None
        return True

    def _deliver(self, record: SpoolRecord) -> None:
        """One spool record (or several merged) to the store; raises StoreUnavailable only."""
        op = record["op"]
        if op == RECORD:
            self._put_record(str(record.get("kind")), str(record.get("id")), record.get("doc") or {})
        elif op == EVENTS:
            self._write_events(record["docs"])
        else:
            alerts = []
            for doc in record["docs"]:
                try:
                    alerts.append(Alert.from_ecs(doc))
                except (ValueError, KeyError, TypeError) as exc:
                    self.spool.set_aside({"op": ALERTS, "docs": [doc]}, f"unreadable spooled alert: {exc!r}")
            if alerts:
                self._write_alerts(alerts)

    # --- delivery with refusals set aside: a document the store refuses for good never blocks the others ---

    def _write_alerts(self, alerts: list[Alert]) -> int:
        def refused(alert: Alert, exc: StoreError) -> None:
            self.spool.set_aside({"op": ALERTS, "docs": [alert.to_ecs()]},
                                 f"alert {alert.id} refused by the store: {exc}")

        def write(part: list[Alert]) -> int:
            self.store.write(part)
            return len(part)

        return _bisect(alerts, write, refused)

    def _write_events(self, events: list[Event]) -> int:
        """The store's count of new events; after a refusal (which may have stored the rest already, so they are
        no longer new when written again), how many were accepted."""
        try:
            return self.store.write_events(events)
        except StoreUnavailable:
            raise
        except StoreError:
            pass
        refusals: list[Event] = []

        def refused(event: Event, exc: StoreError) -> None:
            refusals.append(event)
            self.spool.set_aside({"op": EVENTS, "docs": [event]}, f"event refused by the store: {exc}")

        _bisect(events, self.store.write_events, refused)
        return len(events) - len(refusals)

    def _put_record(self, kind: str, record_id: str, doc: dict[str, Any]) -> int:
        try:
            self.store.put_record(kind, record_id, doc)
        except StoreUnavailable:
            raise
        except StoreError as exc:
            self.spool.set_aside({"op": RECORD, "kind": kind, "id": record_id, "doc": doc},
                                 f"{kind} record {record_id} refused by the store: {exc}")
            return 0
        return 1

    def _unavailable(self, exc: StoreUnavailable) -> None:
        if self.last_error is None:  # report an outage once, not once per batch
            print(f"soc: {exc}; alerts, events and records are kept in {self.spool.directory} and delivered when "
                  "it is back", file=sys.stderr)
        self.last_error = exc

    def close(self) -> None:
        self.spool.close()
        self.store.close()

    # --- reads and people's actions go straight to the store (one line each; keep this block last) ---

    get = _forward(AlertStore.get)
    events_for_address = _forward(AlertStore.events_for_address)
    update_triage = _forward(AlertStore.update_triage)
    change_triage = _forward(AlertStore.change_triage)
    get_record = _forward(AlertStore.get_record)
    list_records = _forward(AlertStore.list_records)
    append_audit = _forward(AlertStore.append_audit)
    append_audit_entry = _forward(AlertStore.append_audit_entry)
    complete_audit = _forward(AlertStore.complete_audit)
    read_audit = _forward(AlertStore.read_audit)
    search = _forward(AlertStore.search)
    count = _forward(AlertStore.count)
    delete_alerts = _forward(AlertStore.delete_alerts)


def _bisect(items: list[_Result], write: Callable[[list[_Result]], int],
            refused: Callable[[_Result, StoreError], None]) -> int:
    """``write(items)``; on a refusal, write each half again until the refused documents are alone, and set
    those aside. StoreUnavailable passes through. Returns what ``write`` counted."""
    try:
        return write(items)
    except StoreUnavailable:
        raise
    except StoreError as exc:
        if len(items) == 1:
            refused(items[0], exc)
            return 0
    middle = len(items) // 2
    return _bisect(items[:middle], write, refused) + _bisect(items[middle:], write, refused)
