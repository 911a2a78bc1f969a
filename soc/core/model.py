"""Shared types that flow between the stages: packets, flows, events and alerts.

Conventions:
- An ``Event`` is a *nested* ECS dict (``{"source": {"ip": "10.0.0.1"}}``), never dotted keys; use
  :func:`get_field` / :func:`set_field` for dotted access.  Every event carries its Sigma log source under
  ``event["soc"]["logsource"]`` (``product``, ``category``, ``service``).
- Times inside arrays are integer nanoseconds since the epoch; times inside events and alerts are ISO 8601 UTC.
- IP addresses in arrays are 16 bytes, IPv4 stored IPv4-mapped (``::ffff:a.b.c.d``) so one key covers both.
"""

from __future__ import annotations

import enum
import hashlib
import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

Event = dict[str, Any]

_MISSING = object()


def get_field(doc: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """Read ``a.b.c`` from a nested dict; a dotted key stored flat (``{"a.b": 1}``) is found too."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return default
        value = node.get(part, _MISSING)
        if value is _MISSING:
            return doc.get(dotted, default) if node is doc else default
        node = value
    return node


def set_field(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Write ``a.b.c`` into a nested dict, creating the intermediate objects."""
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def ns_to_iso(ns: int) -> str:
    """Nanoseconds since the epoch to ISO 8601 UTC with microseconds (what Elasticsearch dates keep)."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso_now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_V4_MAPPED = b"\0" * 10 + b"\xff\xff"


def ip_to_str(raw: np.ndarray | bytes) -> str:
    """16-byte address (IPv4-mapped for IPv4) to its text form (inet_ntop: per flow, so it must be cheap)."""
    packed = bytes(raw)
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


# --- packets and flows: structs of numpy arrays ---------------------------------------------------------------


@dataclass(slots=True)
class PacketBatch:
    """Decoded packets of one chunk of a capture, one array element per packet, over the capture's buffer.

    ``data_offset``/``caplen`` point into ``buffer`` (the memory-mapped file), so payloads are never copied.
    """

    buffer: np.ndarray  # uint8 view of the whole capture
    ts_ns: np.ndarray  # int64
    caplen: np.ndarray  # uint32, bytes captured
    wirelen: np.ndarray  # uint32, bytes on the wire (frame.len)
    data_offset: np.ndarray  # int64, offset of the frame in buffer
    linktype: np.ndarray  # uint16
    status: np.ndarray  # uint8, a DecodeStatus value
    vlan: np.ndarray  # uint16, outer VLAN id or 0
    ethertype: np.ndarray  # uint16, the network-layer type after VLAN tags (0x0800, 0x86dd, 0x0806 ARP, ...)
    l3_offset: np.ndarray  # int64, offset of the network-layer header in buffer (ARP records are read there)
    ip_version: np.ndarray  # uint8, 0 when not IP
    src_ip: np.ndarray  # uint8 (n, 16)
    dst_ip: np.ndarray  # uint8 (n, 16)
    protocol: np.ndarray  # uint8, IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6)
    src_port: np.ndarray  # uint16 (ICMP: type)
    dst_port: np.ndarray  # uint16 (ICMP: code)
    tcp_flags: np.ndarray  # uint8
    tcp_window: np.ndarray  # uint16
    tcp_seq: np.ndarray  # int64, the TCP sequence number, -1 when there is none (not TCP, later fragment, cut)
    ip_flags: np.ndarray  # uint8, IpFlag bits (fragment, ...)
    payload_offset: np.ndarray  # int64, offset of the transport payload in buffer
    payload_len: np.ndarray  # int32
    first_index: int = 0  # index of the first packet of this batch in the capture (frame.number - 1)

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


@dataclass(slots=True)
class FlowBatch:
    """Expired bidirectional flows, one row per flow. ``src`` is the initiator (first packet's sender)."""

    first_ts_ns: np.ndarray  # int64
    last_ts_ns: np.ndarray  # int64
    vlan: np.ndarray  # uint16
    ip_version: np.ndarray  # uint8
    protocol: np.ndarray  # uint8
    src_ip: np.ndarray  # uint8 (n, 16)
    dst_ip: np.ndarray  # uint8 (n, 16)
    src_port: np.ndarray  # uint16
    dst_port: np.ndarray  # uint16
    packets_fwd: np.ndarray  # uint64
    packets_bwd: np.ndarray  # uint64
    bytes_fwd: np.ndarray  # uint64, frame bytes on the wire
    bytes_bwd: np.ndarray  # uint64
    payload_bytes_fwd: np.ndarray  # uint64, transport payload bytes
    payload_bytes_bwd: np.ndarray  # uint64
    tcp_flags_fwd: np.ndarray  # uint8, OR of all flags sent by the initiator
    tcp_flags_bwd: np.ndarray  # uint8
    end_reason: np.ndarray  # uint8, a FlowEnd value
    features: dict[str, np.ndarray] = field(default_factory=dict)  # extra per-flow features, by name

    def __len__(self) -> int:
        return int(self.first_ts_ns.shape[0])


class DecodeStatus(enum.IntEnum):
    OK = 0
    NOT_IP = 1  # decoded fine, but no IP layer (ARP, LLDP, ...)
    TRUNCATED = 2  # captured bytes end inside a header
    MALFORMED = 3  # header fields are impossible (bad IHL, bad length)
    UNSUPPORTED_LINKTYPE = 4


class IpFlag(enum.IntFlag):
    FRAGMENT = 1  # not the whole datagram: offset > 0 or more-fragments set
    FIRST_FRAGMENT = 2


class TcpFlag(enum.IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class FlowEnd(enum.IntEnum):
    IDLE = 0
    ACTIVE = 1
    TCP_CLOSED = 2  # a SYN opened a new connection on the same ports (collectors/flows/reference.py)
    END_OF_CAPTURE = 3
    EVICTED = 4


# --- alerts ----------------------------------------------------------------------------------------------------


class Severity(enum.IntEnum):
    """Sigma's levels; the integer is the ECS ``event.severity`` we store (higher is worse)."""

    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}: use one of {', '.join(s.label for s in cls)}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class AlertStatus(enum.StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class Verdict(enum.StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"
    BENIGN = "benign"


def alert_id(rule_id: str, group_key: str, time_bucket: int) -> str:
    """Deterministic id, so the same detection written twice is one document."""
    digest = hashlib.sha256(f"{rule_id}\x1f{group_key}\x1f{time_bucket}".encode()).hexdigest()
    return digest[:32]


@dataclass(slots=True)
class Rule:
    id: str
    name: str
    ruleset: str
    description: str = ""
    reference: str = ""


@dataclass(slots=True)
class Technique:
    """A MITRE ATT&CK technique with its tactic."""

    id: str
    name: str
    tactic_id: str
    tactic_name: str


@dataclass(slots=True)
class Alert:
    """One detection. ``group_key`` names what it is about (e.g. the scanning address); with the rule and
    ``time_bucket`` it makes the id. ``ecs`` carries the ECS fields of the subject (``source.ip``, ...)."""

    rule: Rule
    severity: Severity
    group_key: str
    time_bucket: int
    first_seen: str
    last_seen: str
    message: str
    risk_score: float = 0.0
    techniques: list[Technique] = field(default_factory=list)
    ecs: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    system: str | None = None  # the information system (inventory name) it concerns
    system_level: int | None = None
    # triage: set by people (soc.triage), never overwritten when the engine writes the detection again
    status: AlertStatus = AlertStatus.NEW
    assignee: str | None = None
    verdict: Verdict | None = None
    notes: list[dict[str, str]] = field(default_factory=list)  # {"at", "by", "text"}
    incident_id: str | None = None
    suppressed_by: str | None = None  # the suppression rule that matched: kept as evidence, out of the queue
    created_at: str = field(default_factory=iso_now)  # when the engine first stored it (response times count from it)

    @property
    def id(self) -> str:
        return alert_id(self.rule.id, self.group_key, self.time_bucket)

    def to_ecs(self) -> dict[str, Any]:
        """The stored document: ECS fields plus our own under ``soc.*``."""
        doc: dict[str, Any] = json.loads(json.dumps(self.ecs))  # deep copy, JSON-clean
        doc.update(
            {
                "@timestamp": self.first_seen,
                "message": self.message,
                "event": {
                    **doc.get("event", {}),
                    "id": self.id,
                    "kind": "alert",
                    "module": "soc",
                    "dataset": "soc.alerts",
                    "severity": int(self.severity),
                    "risk_score": float(self.risk_score),
                    "start": self.first_seen,
                    "end": self.last_seen,
                },
                "rule": {
                    "id": self.rule.id,
                    "name": self.rule.name,
                    "ruleset": self.rule.ruleset,
                    "description": self.rule.description,
                    "reference": self.rule.reference,
                },
                "soc": {
                    "alert": {
                        "group_key": self.group_key,
                        "time_bucket": self.time_bucket,
                        "severity": self.severity.label,
                        "status": self.status.value,
                        "assignee": self.assignee,
                        "verdict": self.verdict.value if self.verdict else None,
                        "notes": self.notes,
                        "incident_id": self.incident_id,
                        "suppressed_by": self.suppressed_by,
                        "created_at": self.created_at,
                        "count": self.count,
                        "evidence": self.evidence,
                    },
                    "system": {"name": self.system, "security_level": self.system_level},
                },
            }
        )
        if self.techniques:
            doc["threat"] = {
                "framework": "MITRE ATT&CK",
                "technique": {"id": [t.id for t in self.techniques], "name": [t.name for t in self.techniques]},
                "tactic": {
                    "id": sorted({t.tactic_id for t in self.techniques}),
                    "name": sorted({t.tactic_name for t in self.techniques}),
                },
            }
        return doc

    @classmethod
    def from_ecs(cls, doc: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_ecs`."""
        doc = json.loads(json.dumps(doc))
        event, rule, soc = doc.pop("event"), doc.pop("rule"), doc.pop("soc")
        threat = doc.pop("threat", None)
        first_seen = doc.pop("@timestamp")
        message = doc.pop("message")
        techniques = []
        if threat:
            tactic_ids, tactic_names = threat["tactic"]["id"], threat["tactic"]["name"]
            for tid, tname in zip(threat["technique"]["id"], threat["technique"]["name"], strict=True):
                techniques.append(Technique(tid, tname, tactic_ids[0], tactic_names[0]))
        extra_event = {k: v for k, v in event.items() if k not in _ALERT_EVENT_KEYS}
        if extra_event:
            doc["event"] = extra_event
        alert_doc, system = soc["alert"], soc.get("system", {})
        return cls(
            rule=Rule(**rule),
            severity=Severity(event["severity"]),
            group_key=alert_doc["group_key"],
            time_bucket=alert_doc["time_bucket"],
            first_seen=first_seen,
            last_seen=event["end"],
            message=message,
            risk_score=event.get("risk_score", 0.0),
            techniques=techniques,
            ecs=doc,
            evidence=alert_doc.get("evidence", {}),
            count=alert_doc.get("count", 1),
            system=system.get("name"),
            system_level=system.get("security_level"),
            **triage_from_doc(alert_doc),
        )


def triage_from_doc(alert_doc: dict[str, Any]) -> dict[str, Any]:
    """The triage fields of an alert from ``soc.alert`` of its document (as keyword arguments of Alert)."""
    verdict = alert_doc.get("verdict")
    return {
        "status": AlertStatus(alert_doc.get("status") or "new"),
        "assignee": alert_doc.get("assignee"),
        "verdict": Verdict(verdict) if verdict else None,
        "notes": list(alert_doc.get("notes") or []),
        "incident_id": alert_doc.get("incident_id"),
        "suppressed_by": alert_doc.get("suppressed_by"),
        "created_at": alert_doc.get("created_at") or iso_now(),
    }


# Set by people, or once when first stored: a detection written again never changes these.
TRIAGE_FIELDS = ("status", "assignee", "verdict", "notes", "incident_id", "suppressed_by", "created_at")

_ALERT_EVENT_KEYS = {"id", "kind", "module", "dataset", "severity", "risk_score", "start", "end"}


# --- event identity --------------------------------------------------------------------------------------------

# What differs when the same event is seen again by another sensor or in another run (when it was read, by whom),
# so it is no part of the event's identity; ``event.id`` is where the identity itself is written.
_EVENT_RUN_FIELDS = ("ingested", "created", "id")
_RUN_OBJECTS = ("observer", "agent")


def event_id(event: Event) -> str:
    """Deterministic id of an event, so a capture replayed twice or a log line read by two sensors is stored
    once: a digest of ``@timestamp``, ``event.dataset``/``event.module`` and ``event.original`` (the raw record)
    when there is one, else of the canonical JSON of the whole document without ``event.ingested``,
    ``event.created``, ``event.id``, ``observer.*`` and ``agent.*``. Two log lines alike in every field and
    timestamp are still two events when they carry their position (``log.offset``, ``soc.packet.frame``)."""
    original = get_field(event, "event.original")
    basis: Any
    if original is not None:
        basis = [get_field(event, "@timestamp"), get_field(event, "event.dataset"), get_field(event, "event.module"),
                 original]
    else:
        basis = {k: v for k, v in event.items()
                 if k not in _RUN_OBJECTS and not k.startswith(tuple(f"{o}." for o in _RUN_OBJECTS))
                 and k not in {f"event.{name}" for name in _EVENT_RUN_FIELDS}}
        if isinstance(basis.get("event"), dict):
            basis["event"] = {k: v for k, v in basis["event"].items() if k not in _EVENT_RUN_FIELDS}
    canonical = json.dumps(basis, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
