"""A disk spool in front of a store, so no alert is lost while the store is down or slow.

Alerts that cannot be written go, in order, to an append-only JSON-lines file; a small cursor file records how
far it has been delivered. Delivery is at least once and the stores' writes are idempotent (deterministic ids),
so together every alert is stored exactly once, also when the engine is killed between delivering a batch and
moving the cursor. A later write first delivers what waits in the spool, so order is kept.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from soc.core.errors import StoreError, StoreUnavailable
from soc.core.model import Alert, Event
from soc.store.base import AlertQuery, AlertStore


class DiskSpool:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.data = self.directory / "alerts.jsonl"
        self.cursor = self.directory / "alerts.cursor"
        self.dead_letters = self.directory / "alerts.refused.jsonl"
        self._lock = open(self.directory / "lock", "w")  # noqa: SIM115 - held while the spool is open
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # one engine per spool: two would deliver each other's alerts

    def append(self, alerts: Sequence[Alert]) -> None:
        with open(self.data, "a+b") as handle:
            if handle.tell() and (handle.seek(-1, os.SEEK_END), handle.read(1))[1] != b"\n":
                handle.write(b"\n")  # a crash cut the last record short; it is reported when drained
            for alert in alerts:
                handle.write(json.dumps(alert.to_ecs(), sort_keys=True).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        """Bytes not yet delivered."""
        size = self.data.stat().st_size if self.data.exists() else 0
        return size - self._position()

    def _position(self) -> int:
        try:
            return int(self.cursor.read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def _move_cursor(self, position: int) -> None:
        temporary = self.cursor.with_suffix(".tmp")
        temporary.write_text(str(position))
        with open(temporary) as handle:
            os.fsync(handle.fileno())
        temporary.replace(self.cursor)

    def drain(self, deliver: Callable[[list[Alert]], None], batch_size: int = 500) -> int:
        """Deliver pending alerts in order, batch by batch; stops (raising) at the first batch that fails.
        Returns how many alerts were delivered."""
        delivered = 0
        position = self._position()
        if not self.data.exists():
            return 0
        with open(self.data, "rb") as handle:
            handle.seek(position)
            while True:
                lines = [line for line in (handle.readline() for _ in range(batch_size)) if line]
                if not lines:
                    break
                if not lines[-1].endswith(b"\n"):  # a record still being written (or cut by a crash)
                    handle.seek(-len(lines.pop()), os.SEEK_CUR)
                    if not lines:
                        break
                alerts = self._parse(lines, position)
                try:
                    if alerts:
                        deliver(alerts)
                except StoreUnavailable:
                    raise
                except StoreError:
                    self.set_aside_refused(alerts, deliver)
                position = handle.tell()
                self._move_cursor(position)
                delivered += len(alerts)
            complete = position == os.fstat(handle.fileno()).st_size
        if complete:  # everything delivered: start a fresh file so the spool does not grow without end
            self.data.unlink()
            self._move_cursor(0)
        return delivered

    def _parse(self, lines: list[bytes], position: int) -> list[Alert]:
        alerts = []
        for line in lines:
            try:
                alerts.append(Alert.from_ecs(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                self._dead_letter(line, f"unreadable spool record at byte {position}: {exc}")
            position += len(line)
        return alerts

    def _dead_letter(self, line: bytes, why: str) -> None:
        with open(self.dead_letters, "ab") as handle:
            handle.write(line if line.endswith(b"\n") else line + b"\n")
        print(f"soc: {why}; kept in {self.dead_letters}", file=sys.stderr)

    def set_aside_refused(self, alerts: Sequence[Alert], deliver: Callable[[list[Alert]], None]) -> None:
        """Deliver one by one; what the store still refuses goes to the dead-letter file, so a refusal that
        retrying cannot fix never blocks the alerts behind it."""
        for alert in alerts:
            try:
                deliver([alert])
            except StoreUnavailable:
                raise
            except StoreError as exc:
                line = json.dumps(alert.to_ecs(), sort_keys=True).encode() + b"\n"
                self._dead_letter(line, f"alert {alert.id} refused by the store: {exc}")

    def close(self) -> None:
        self._lock.close()


class SpooledStore(AlertStore):
    """Writes through to ``store``; while it is unavailable, alerts wait in ``spool``."""

    def __init__(self, store: AlertStore, spool: DiskSpool) -> None:
        self.store = store
        self.spool = spool
        self.url = store.url
        self.spooled = 0  # alerts that had to wait in the spool during this run
        self.last_error: StoreUnavailable | None = None

    def write(self, alerts: Sequence[Alert]) -> None:
        if self.spool.pending() and not self.deliver_spooled():
            self.spool.append(alerts)
            self.spooled += len(alerts)
            return
        try:
            self.store.write(alerts)
        except StoreUnavailable as exc:
            self._unavailable(exc)
            self.spool.append(alerts)
            self.spooled += len(alerts)
        except StoreError:
            try:
                self.spool.set_aside_refused(alerts, self.store.write)
            except StoreUnavailable as exc:  # went down meanwhile: the spool takes them all (idempotent)
                self._unavailable(exc)
                self.spool.append(alerts)
                self.spooled += len(alerts)

    def deliver_spooled(self) -> bool:
        """Try to deliver what waits in the spool; True when the spool is empty afterwards."""
        try:
            self.spool.drain(self.store.write)
        except StoreUnavailable as exc:
            self._unavailable(exc)
            return False
        self.last_error = None
        return True

    def _unavailable(self, exc: StoreUnavailable) -> None:
        if self.last_error is None:  # report an outage once, not once per batch
            print(f"soc: {exc}; alerts are kept in {self.spool.directory} and delivered when it is back",
                  file=sys.stderr)
        self.last_error = exc

    def write_events(self, events: Iterable[Event]) -> int:
        return self.store.write_events(events)

    def get(self, alert_id: str) -> Alert | None:
        return self.store.get(alert_id)

    def events_for_address(self, address: str, limit: int = 20) -> list[Event]:
        return self.store.events_for_address(address, limit)

    def update_triage(self, alert_id: str, changes: dict[str, Any]) -> bool:
        return self.store.update_triage(alert_id, changes)

    def put_record(self, kind: str, record_id: str, doc: dict[str, Any]) -> None:
        self.store.put_record(kind, record_id, doc)

    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        return self.store.get_record(kind, record_id)

    def list_records(self, kind: str, limit: int = 10000) -> list[dict[str, Any]]:
        return self.store.list_records(kind, limit)

    def append_audit(self, entry: dict[str, Any]) -> None:
        self.store.append_audit(entry)

    def read_audit(self) -> list[dict[str, Any]]:
        return self.store.read_audit()

    def search(self, query: AlertQuery) -> list[Alert]:
        return self.store.search(query)

    def count(self) -> int:
        return self.store.count()

    def delete_alerts(self, alert_ids: Sequence[str]) -> int:
        return self.store.delete_alerts(alert_ids)

    def close(self) -> None:
        self.spool.close()
        self.store.close()
