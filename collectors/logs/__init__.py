"""Log collectors: syslog, file tails, EVTX and JSON-lines sources, parsed into ECS events with their Sigma log
source (``event["soc"]["logsource"]``), with checkpoints so a restart neither loses nor repeats a line.

The source interface (:class:`~collectors.logs.base.Source`), what the pipeline drives:

- ``for event in source``: events one at a time. A file read once or an EVTX file ends; a followed file
  (``follow=True``, across rotations) or a syslog listener waits for more until ``close()``.
- ``source.poll(max_events, timeout)``: the events available now as a list, waiting at most ``timeout`` seconds
  (one pipeline loop can serve every source); ``source.done`` turns True when a finite source is exhausted.
- ``source.position()``: where the events already handed out reach (JSON-able: file, device, inode, offset),
  so after ``poll`` it covers the whole list: commit once the list is handled.
- ``source.commit()``: persist that position in the source's :class:`~collectors.logs.checkpoint.CheckpointStore`
  (atomic replace). Commit after the event's effects are durable (alert stored): a crash then replays at most
  the uncommitted events, and an idempotent sink (deterministic ids) makes that exactly once;
  :func:`~collectors.logs.ingest.ingest_to_jsonl` shows the pattern with the output length in the checkpoint.
- ``source.stats`` / ``source.diagnostics``: counters (events by dataset and log source, malformed by reason,
  truncated, invalid UTF-8, queue drops); malformed records also go to the dead-letter JSONL file with offset.
- ``source.close()``: stop and release files and sockets (safe from another thread).

Building blocks: :mod:`.parsers` (one registered class per format, chosen by name or sniffed), :mod:`.reader`
(bytes to lines to events, bad input handling), :mod:`.tail` (files), :mod:`.listener` (syslog UDP/TCP/TLS),
:mod:`.evtx` (Windows event logs), :mod:`.ingest` (``soc ingest``), :mod:`.config` (the ``logs:`` YAML section).
"""

from collectors.logs.base import CollectorError, Diagnostics, Malformed, ParseError, Source, Stats
from collectors.logs.checkpoint import CheckpointStore
from collectors.logs.config import LogsConfig
from collectors.logs.evtx import EvtxSource, iter_evtx_events
from collectors.logs.ingest import ingest_paths, ingest_to_jsonl
from collectors.logs.listener import SyslogConfig, SyslogSource
from collectors.logs.tail import FileSource

__all__ = [
    "CheckpointStore",
    "CollectorError",
    "Diagnostics",
    "EvtxSource",
    "FileSource",
    "LogsConfig",
    "Malformed",
    "ParseError",
    "Source",
    "Stats",
    "SyslogConfig",
    "SyslogSource",
    "ingest_paths",
    "ingest_to_jsonl",
    "iter_evtx_events",
]
