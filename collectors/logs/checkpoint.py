"""Checkpoint file: the positions of all sources of one collector, replaced atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class CheckpointStore:
    """Positions of all sources in one JSON file, replaced atomically (write, fsync, rename) on every save, so a
    crash leaves either the old or the new checkpoint, never a torn one."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._data: dict[str, Any] = {}
        if self.path.exists():
            try:
                self._data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{self.path}: unreadable checkpoint ({exc}); move it away to start over") from None

    def load(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        return value if isinstance(value, dict) else None

    def stage(self, key: str, value: dict[str, Any]) -> None:
        """Set a position without writing: the next :meth:`save` writes it together with its own."""
        self._data[key] = value

    def save(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(self._data, handle, sort_keys=True)
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, self.path)
