"""The ``logs:`` part of ``soc.yaml``: which log sources to run, validated at start, and the sources built from it.

logs:
  checkpoint: /var/lib/soc/logs.checkpoint.json
  dead_letter: /var/lib/soc/logs.dead.jsonl
  sources:
    - {type: syslog, udp_port: 514, tcp_port: 6514, tls_certfile: /etc/soc/tls.pem, tls_keyfile: /etc/soc/tls.key}
    - {type: file, path: /var/log/auth.log, format: syslog}
    - {type: file, path: /var/log/nginx/access.log, format: nginx-access}
    - {type: file, path: /var/log/suricata/eve.json}            # format sniffed
    - {type: evtx, paths: [/data/Security.evtx]}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collectors.logs.base import CollectorError, Diagnostics, Source
from collectors.logs.checkpoint import CheckpointStore
from collectors.logs.evtx import EvtxSource
from collectors.logs.listener import SyslogConfig, SyslogSource
from collectors.logs.parsers import PARSERS
from collectors.logs.tail import FileSource


class LogConfigError(CollectorError):
    """A bad ``logs:`` entry; ``source`` names the config path (``logs.sources[2].format``)."""


@dataclass(slots=True)
class FileSourceConfig:
    path: str
    format: str | None = None
    follow: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EvtxSourceConfig:
    paths: list[str]


@dataclass(slots=True)
class LogsConfig:
    sources: list[FileSourceConfig | EvtxSourceConfig | SyslogConfig]
    checkpoint: str | None = None
    dead_letter: str | None = None

    @classmethod
    def from_list(
        cls,
        items: list[Any],
        checkpoint: str | None = None,
        dead_letter: str | None = None,
        where: str = "collectors.logs",
    ) -> LogsConfig:
        """The source list as ``soc.yaml`` holds it (``collectors: {logs: [...]}``), with where to keep state."""
        if not isinstance(items, list):
            raise LogConfigError("must be a list of sources", where)
        return cls([_source_from_dict(item, f"{where}[{i}]") for i, item in enumerate(items)], checkpoint, dead_letter)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "logs") -> LogsConfig:
        if not isinstance(data, dict):
            raise LogConfigError("must be a mapping", where)
        unknown = set(data) - {"sources", "checkpoint", "dead_letter"}
        if unknown:
            raise LogConfigError(f"unknown keys {sorted(unknown)}", where)
        items = data.get("sources") or []
        if not isinstance(items, list):
            raise LogConfigError("must be a list", f"{where}.sources")
        sources = [_source_from_dict(item, f"{where}.sources[{i}]") for i, item in enumerate(items)]
        return cls(sources, data.get("checkpoint"), data.get("dead_letter"))

    def open(self, diagnostics: Diagnostics | None = None) -> list[Source]:
        """Build the sources (syslog listeners not started yet: call ``start()``)."""
        diag = diagnostics if diagnostics is not None else Diagnostics(self.dead_letter)
        store = CheckpointStore(self.checkpoint) if self.checkpoint else None
        built: list[Source] = []
        for item in self.sources:
            if isinstance(item, FileSourceConfig):
                built.append(
                    FileSource(
                        item.path, item.format, options=item.options, diagnostics=diag, checkpoints=store,
                        follow=item.follow,
                    )
                )  # fmt: skip
            elif isinstance(item, EvtxSourceConfig):
                built.append(EvtxSource(list(item.paths), diagnostics=diag, checkpoints=store))
            else:
                built.append(SyslogSource(item, diagnostics=diag))
        return built


def _source_from_dict(item: Any, where: str) -> FileSourceConfig | EvtxSourceConfig | SyslogConfig:
    if not isinstance(item, dict) or "type" not in item:
        raise LogConfigError("each source is a mapping with a 'type' (file, evtx, syslog)", where)
    body = {k: v for k, v in item.items() if k != "type"}
    kind = item["type"]
    target: type[FileSourceConfig] | type[EvtxSourceConfig] | type[SyslogConfig]
    if kind == "file":
        target = FileSourceConfig
    elif kind == "evtx":
        target = EvtxSourceConfig
    elif kind == "syslog":
        target = SyslogConfig
    else:
        raise LogConfigError(f"unknown source type {kind!r}: use file, evtx or syslog", f"{where}.type")
    names = {f.name for f in fields(target)}
    unknown = set(body) - names
    if unknown:
        raise LogConfigError(f"unknown keys {sorted(unknown)} for a {kind} source", where)
    fmt = body.get("format")
    if fmt is not None and fmt not in PARSERS:
        raise LogConfigError(f"unknown format {fmt!r}: use one of {', '.join(sorted(PARSERS))}", f"{where}.format")
    if kind == "file" and not isinstance(body.get("path"), str):
        raise LogConfigError("a file source needs a 'path'", where)
    if kind == "evtx":
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths:
            raise LogConfigError("an evtx source needs a list of 'paths'", where)
        body["paths"] = [str(Path(p)) for p in paths]
    try:
        return target(**body)
    except (TypeError, ValueError) as exc:
        raise LogConfigError(str(exc), where) from None
