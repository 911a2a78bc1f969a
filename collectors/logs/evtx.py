"""Windows event log files (EVTX) to Winlogbeat-style ECS events, through the Rust ``evtx`` parser.

Layout (what the Sigma Windows pipelines expect): ``event.code`` (str), ``winlog.channel``, ``winlog.event_id``
(int), ``winlog.provider_name``, ``winlog.computer_name``, ``winlog.record_id``, ``winlog.event_data.<Name>``
(strings, names as in the XML; unnamed ``<Data>`` become ``param1..N`` as Winlogbeat does; ``UserData`` fields are
merged in too), ``host.name``, ``log.file.path`` and ``soc.logsource`` with the Sigma service of the channel.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import evtx

from collectors.logs.base import Diagnostics, Malformed, Source, logsource
from collectors.logs.checkpoint import CheckpointStore
from soc.core.model import Event


@functools.cache
def channel_services() -> dict[str, str]:
    """pySigma's own service -> channel table, inverted, so we name services exactly as the rules do (imported on
    first use: pySigma takes a good part of a second to import)."""
    from sigma.pipelines.common import windows_logsource_mapping

    out: dict[str, str] = {}
    for service, channels in windows_logsource_mapping.items():
        for channel in [channels] if isinstance(channels, str) else channels:
            out[channel.lower()] = service
    return out


_LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}


def channel_service(channel: str | None) -> str | None:
    """Sigma service of a channel; a channel Sigma does not list gets a slug (``Microsoft-Windows-X/Operational``
    becomes ``x``) so rules written for it later still find it."""
    if not channel:
        return None
    known = channel_services().get(channel.lower())
    if known:
        return known
    slug = channel.removeprefix("Microsoft-Windows-").removesuffix("/Operational")
    return slug.lower().replace("/", "-").replace(" ", "-")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _attr(node: Any, name: str) -> Any:
    return node.get("#attributes", {}).get(name) if isinstance(node, dict) else None


def _scalar(node: Any) -> Any:
    """``<EventID Qualifiers="16384">7036</EventID>`` arrives as ``{"#attributes": ..., "#text": 7036}``."""
    return node.get("#text") if isinstance(node, dict) else node


def _data_fields(section: Any, out: dict[str, str]) -> None:
    """EventData / UserData children into ``out`` as strings."""
    if not isinstance(section, dict):
        return
    if "Data" in section and isinstance(section["Data"], dict) and "#text" in section["Data"]:
        unnamed = section["Data"]["#text"]
        for i, value in enumerate(unnamed if isinstance(unnamed, list) else [unnamed], start=1):
            if value is not None:
                out[f"param{i}"] = _text(value)
        section = {k: v for k, v in section.items() if k != "Data"}
    for name, value in section.items():
        if name == "#attributes" or value is None:
            continue
        out[name] = _text(value)


def _iso(system_time: str) -> str:
    """``2020-10-05T20:43:58.3517449Z`` to microsecond precision with ``Z`` (what the other stages write)."""
    text = system_time.strip().removesuffix(" UTC")
    if text.endswith("Z"):
        text = text[:-1]
    head, _, frac = text.partition(".")
    return f"{head}.{(frac + '000000')[:6]}Z"


def record_to_event(record: dict[str, Any], path: str, original: str | None = None) -> Event:
    """One parsed EVTX record (``{"Event": {"System": ..., "EventData": ...}}``) to an ECS event."""
    root = record["Event"]
    system = root["System"]
    event_id = int(_scalar(system["EventID"]))
    provider = _attr(system.get("Provider"), "Name") or ""
    channel = system.get("Channel")
    computer = system.get("Computer") or ""
    service = channel_service(channel)
    event_data: dict[str, str] = {}
    for key, section in root.items():
        if key in ("System", "#attributes"):
            continue
        if key == "EventData":
            _data_fields(section, event_data)
        elif isinstance(section, dict):
            # UserData and friends wrap their fields in one element named after the event (<LogFileCleared>)
            for inner in section.values():
                if isinstance(inner, dict):
                    _data_fields(inner, event_data)
    winlog: dict[str, Any] = {
        "channel": channel,
        "event_id": event_id,
        "provider_name": provider,
        "computer_name": computer,
        "record_id": int(_scalar(system.get("EventRecordID", 0)) or 0),
        "event_data": event_data,
    }
    if guid := _attr(system.get("Provider"), "Guid"):
        winlog["provider_guid"] = guid
    if (qualifiers := _attr(system.get("EventID"), "Qualifiers")) is not None:
        winlog["event_qualifiers"] = qualifiers
    for key, name in (("Version", "version"), ("Task", "task"), ("Opcode", "opcode"), ("Keywords", "keywords")):
        if system.get(key) is not None:
            winlog[name] = _scalar(system[key])
    if (pid := _attr(system.get("Execution"), "ProcessID")) is not None:
        winlog["process"] = {"pid": pid, "thread": {"id": _attr(system.get("Execution"), "ThreadID")}}
    if user_id := _attr(system.get("Security"), "UserID"):
        winlog["user"] = {"identifier": user_id}
    if activity := _attr(system.get("Correlation"), "ActivityID"):
        winlog["activity_id"] = activity
    event: dict[str, Any] = {
        "code": str(event_id),
        "provider": provider,
        "kind": "event",
        "module": "windows",
        "dataset": f"windows.{service or 'etw'}",
    }
    if original is not None:
        event["original"] = original
    doc: Event = {
        "@timestamp": _iso(_attr(system.get("TimeCreated"), "SystemTime") or ""),
        "event": event,
        "winlog": winlog,
        "host": {"name": computer},
        "log": {"file": {"path": path}, "level": _LEVELS.get(int(_scalar(system.get("Level")) or 0), "information")},
        "soc": {"logsource": logsource("windows", None, service)},
    }
    return doc


def iter_evtx_events(
    path: str | Path,
    *,
    diagnostics: Diagnostics | None = None,
    include_original: bool = False,
    skip: int = 0,
) -> Iterator[Event]:
    """Events of one EVTX file in file order. A damaged chunk or record is counted (``evtx_chunk``,
    ``evtx_record``) and skipped with the file and record ordinal (1-based); ``skip`` passes over the first
    records to resume a partial read. ``soc.offset`` on each event is its ordinal."""
    diag = diagnostics if diagnostics is not None else Diagnostics()
    name = str(path)
    try:
        records = evtx.PyEvtxParser(name, skip_errors=True).records_json()
    except (OSError, RuntimeError) as exc:
        diag.malformed(Malformed("evtx_file", name, 0, f"not a readable EVTX file: {exc}"))
        return
    ordinal = 0
    while True:
        # skip_errors turns a damaged chunk into a warning and goes on with the next chunk: catch it to count it
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                record = next(records)
            except StopIteration:
                record = None
            except RuntimeError as exc:
                diag.malformed(Malformed("evtx_chunk", name, ordinal, str(exc)))
                return
        for warning in caught:
            diag.malformed(Malformed("evtx_chunk", name, ordinal, str(warning.message)))
        if record is None:
            return
        ordinal += 1
        if ordinal <= skip:
            continue
        data = record["data"]
        try:
            doc = record_to_event(json.loads(data), name, data if include_original else None)
        except (ValueError, KeyError, TypeError) as exc:
            diag.malformed(Malformed("evtx_record", name, ordinal, f"{type(exc).__name__}: {exc}", data[:2000]))
            continue
        doc["soc"]["offset"] = ordinal
        diag.stats.count_event(doc)
        yield doc


class EvtxSource(Source):
    """EVTX files read once, in order; the position is, per file, the ordinal of the last record handed out."""

    def __init__(
        self,
        paths: list[str | Path],
        diagnostics: Diagnostics | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.checkpoints = checkpoints
        self.name = f"evtx:{','.join(str(Path(p).resolve()) for p in self.paths)}"
        self._position: dict[str, int] = {}

    def commit(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.save(self.name, self.position())

    def _events(self, wait: bool) -> Generator[Event | None, None, None]:
        saved = self.checkpoints.load(self.name) if self.checkpoints is not None else None
        if saved is not None:
            self.restore(saved)
        for path in self.paths:
            resume = self._position.get(path, 0)
            for doc in iter_evtx_events(path, diagnostics=self.diagnostics, skip=resume):
                self._position[path] = doc["soc"]["offset"]
                yield doc

    def position(self) -> dict[str, Any]:
        return {"records": dict(self._position)}

    def restore(self, position: dict[str, Any]) -> None:
        self._position = {str(k): int(v) for k, v in position.get("records", {}).items()}
