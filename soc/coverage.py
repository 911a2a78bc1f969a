"""Monitoring coverage: which sources are flowing for each information system, and when each was last seen.

Posture check C5 asks whether the engine receives a system's network traffic, web-server logs and firewall
logs. Alerts alone cannot say so (a quiet system raises none), so every event and flow the pipeline handles is
counted here against the systems its addresses or host names belong to, and one record per system and source
(kind ``coverage``) keeps the count and the last time seen. Written once per batch, not per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from soc.core.config import Settings
from soc.core.errors import StoreUnavailable
from soc.core.model import Event, FlowBatch, get_field, ip_to_str, ns_to_iso
from soc.store.base import AlertStore

KIND = "coverage"
NETWORK = "network"  # packets and what is derived from them (flows, DNS/HTTP/TLS metadata)
_ADDRESSES = ("source.ip", "destination.ip", "host.ip", "client.ip", "server.ip")
_NAMES = ("host.name", "host.hostname", "url.domain", "destination.domain", "winlog.computer_name")
_CACHE_LIMIT = 65536


def source_of(event: Event) -> str:
    """The monitored source an event comes from: ``network`` for what our packet path made, else its Sigma log
    source (``webserver``, ``firewall``, ``dns``, ``proxy``, ``linux/auth``, ``windows/security``, ...)."""
    if str(get_field(event, "event.dataset") or "").startswith("soc."):
        return NETWORK
    logsource = get_field(event, "soc.logsource") or {}
    if logsource.get("category"):
        return str(logsource["category"])
    return "/".join(str(p) for p in (logsource.get("product"), logsource.get("service")) if p) or "other"


@dataclass(slots=True)
class _Seen:
    count: int = 0
    last_seen: str = ""


class CoverageTracker:
    def __init__(self, settings: Settings, store: AlertStore) -> None:
        self.settings = settings
        self.store = store
        self._pending: dict[tuple[str, str], _Seen] = {}
        self._systems: dict[str, str | None] = {}  # address or name -> system, bounded cache

    def _system(self, key: str, by_name: bool) -> str | None:
        if key not in self._systems:
            if len(self._systems) >= _CACHE_LIMIT:
                self._systems.clear()
            found = self.settings.system_for_host(key) if by_name else self.settings.system_for_ip(key)
            self._systems[key] = found.name if found else None
        return self._systems[key]

    def _count(self, system: str, source: str, when: str, n: int = 1) -> None:
        seen = self._pending.setdefault((system, source), _Seen())
        seen.count += n
        seen.last_seen = max(seen.last_seen, when)

    def observe(self, events: Iterable[Event]) -> None:
        if not self.settings.inventory:
            return
        for event in events:
            systems = {self._system(str(v), False) for v in (get_field(event, f) for f in _ADDRESSES) if v}
            systems |= {self._system(str(v), True) for v in (get_field(event, f) for f in _NAMES) if v}
            systems.discard(None)
            when = str(get_field(event, "@timestamp") or "")
            for system in systems:
                self._count(str(system), source_of(event), when)

    def observe_flows(self, flows: FlowBatch) -> None:
        if not self.settings.inventory or not len(flows):
            return
        for column in (flows.src_ip, flows.dst_ip):  # per distinct address, not per flow
            addresses, inverse, counts = np.unique(column, axis=0, return_inverse=True, return_counts=True)
            last = np.zeros(len(addresses), np.int64)
            np.maximum.at(last, inverse.ravel(), flows.last_ts_ns)
            for address, latest, n in zip(addresses, last.tolist(), counts.tolist(), strict=True):
                system = self._system(ip_to_str(address), False)
                if system is not None:
                    self._count(system, NETWORK, ns_to_iso(latest), n)

    def flush(self) -> None:
        """Merge what was seen since the last flush into the stored records."""
        pending, self._pending = self._pending, {}
        for (system, source), seen in pending.items():
            record_id = f"{system}|{source}"
            try:
                known = self.store.get_record(KIND, record_id)
            except StoreUnavailable:  # the store is down: keep counting, merge when it is back
                self._count(system, source, seen.last_seen, seen.count)
                continue
            stored: dict[str, Any] = known or {"system": system, "source": source, "events": 0, "last_seen": ""}
            stored["events"] += seen.count
            stored["last_seen"] = max(stored["last_seen"], seen.last_seen)
            self.store.put_record(KIND, record_id, stored)


def coverage_of(store: AlertStore, system: str) -> dict[str, dict[str, Any]]:
    """Source -> {"events", "last_seen"} for one system."""
    return {r["source"]: {"events": r["events"], "last_seen": r["last_seen"] or None}
            for r in store.list_records(KIND) if r["system"] == system}
