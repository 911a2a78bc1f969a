"""Offline ingestion: parse files once (``soc ingest``), the log twin of ``soc replay``.

:func:`ingest_paths` is what the pipeline feeds into detectors and stores; :func:`ingest_to_jsonl` writes the
events to a JSONL file with a checkpoint that covers input positions *and* the output length in one atomic
write, so an ingestion killed at any moment and run again yields every line exactly once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from collectors.logs.base import Diagnostics, Source
from collectors.logs.evtx import EvtxSource
from collectors.logs.parsers import PARSERS
from collectors.logs.tail import CheckpointStore, FileSource
from soc.core.model import Event

EVTX_MAGIC = b"ElfFile\x00"
OUTPUT_KEY = "__output__"


def is_evtx(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(8) == EVTX_MAGIC
    except OSError:
        return False


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the files under directories named (sorted; hidden files skipped)."""
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and not any(x.startswith(".") for x in p.parts)
            )
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return out


def known_format(fmt: str | None) -> str | None:
    if fmt is not None and fmt != "evtx" and fmt not in PARSERS:
        raise ValueError(f"unknown log format {fmt!r}: use one of evtx, {', '.join(sorted(PARSERS))}")
    return fmt


def open_sources(
    paths: Iterable[str | Path],
    fmt: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    diagnostics: Diagnostics | None = None,
    checkpoints: CheckpointStore | None = None,
) -> Iterator[Source]:
    """One source per file: EVTX files (by content) or line files with the named or sniffed format."""
    diag = diagnostics if diagnostics is not None else Diagnostics()
    known_format(fmt)
    for path in expand_paths(paths):
        if fmt == "evtx" or (fmt is None and is_evtx(path)):
            yield EvtxSource([path], diagnostics=diag, checkpoints=checkpoints)
        else:
            yield FileSource(path, fmt, options=options, diagnostics=diag, checkpoints=checkpoints)


def ingest_paths(
    paths: Iterable[str | Path],
    fmt: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    diagnostics: Diagnostics | None = None,
) -> Iterator[Event]:
    """Events of every file under ``paths``, read once. Counters and skipped lines go to ``diagnostics``
    (``diagnostics.stats``: events by dataset and log source, malformed by reason, truncated, ...)."""
    for source in open_sources(paths, fmt, options=options, diagnostics=diagnostics):
        try:
            yield from source
        finally:
            source.close()


def ingest_to_jsonl(
    paths: Iterable[str | Path],
    output: str | Path,
    checkpoint: str | Path,
    fmt: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    diagnostics: Diagnostics | None = None,
    commit_every: int = 5000,
    durable: bool = False,
) -> int:
    """Write the events of ``paths`` to ``output`` (one JSON per line), resumable: returns events written now.

    Every ``commit_every`` events the output is flushed and the checkpoint saves the source positions with the
    output length; a restart cuts the output back to that length and resumes the sources from there. A killed
    process loses nothing the kernel already has; ``durable`` adds fsyncs so a power cut loses nothing either.
    """
    store = CheckpointStore(checkpoint, fsync=durable)
    out_path = Path(output)
    saved = store.load(OUTPUT_KEY)
    keep = int(saved["bytes"]) if saved else 0
    handle = out_path.open("ab")
    handle.truncate(keep)  # lines written after the last checkpoint will be produced again
    handle.seek(keep)
    written = 0

    def commit(source: Source) -> None:
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        store.stage(source.name, source.position())
        store.save(OUTPUT_KEY, {"path": str(out_path), "bytes": handle.tell()})

    try:
        for source in open_sources(paths, fmt, options=options, diagnostics=diagnostics, checkpoints=store):
            pending = 0
            for event in source:
                handle.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
                written += 1
                pending += 1
                if pending >= commit_every:
                    commit(source)
                    pending = 0
            commit(source)
            source.close()
    finally:
        handle.close()
    return written
