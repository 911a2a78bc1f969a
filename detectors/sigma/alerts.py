"""Sigma matches to :class:`soc.core.model.Alert`: rule, severity from the level, ATT&CK from tags, the event's fields.

ATT&CK technique names are not shipped offline (pySigma would download them), so a technique's name is its id;
tactic ids come from the fixed table of the fourteen Enterprise tactics below (SigmaHQ already uses ATT&CK v18
tactic names such as ``stealth``; those keep their name and an empty id).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from soc.core.model import Event, Severity, Technique, get_field, iso_now, set_field

TACTICS: dict[str, tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}

RISK_SCORES = {
    Severity.INFORMATIONAL: 5.0,
    Severity.LOW: 21.0,
    Severity.MEDIUM: 47.0,
    Severity.HIGH: 73.0,
    Severity.CRITICAL: 99.0,
}

# ECS blocks copied whole into an alert: they say who and what the detection is about
SUBJECT_BLOCKS = ("host", "user", "source", "destination", "process", "file", "url", "http", "dns", "network",
                  "registry", "service")
WINLOG_KEYS = ("channel", "event_id", "provider_name", "computer_name", "record_id")


def tactic(tags: list[str]) -> tuple[str, str]:
    """The rule's tactic: the first known ``attack.<tactic>`` tag, else the first other tactic-like tag (ATT&CK v18
    names such as ``stealth`` or ``defense-impairment``, whose ids we do not ship: id left empty)."""
    names = [t.lower().removeprefix("attack.").replace("-", "_") for t in tags if t.lower().startswith("attack.")]
    for name in names:
        if name in TACTICS:
            return TACTICS[name]
    for name in names:
        if re.fullmatch(r"[a-z_]+", name):
            return "", name.replace("_", " ").title()
    return "", ""


def techniques(tags: list[str]) -> list[Technique]:
    """``attack.t1059.001`` tags, each with the rule's tactic (see :func:`tactic`)."""
    tactic_id, tactic_name = tactic(tags)
    out = []
    for tag in tags:
        lower = tag.lower()
        if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", lower):
            technique_id = lower.removeprefix("attack.").upper()
            out.append(Technique(technique_id, technique_id, tactic_id, tactic_name))
    return out


def event_time(event: Event) -> float:
    """Seconds since the epoch of ``@timestamp`` (now when missing or unreadable)."""
    text = event.get("@timestamp")
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return datetime.now(tz=UTC).timestamp()


def event_ref(event: Event) -> dict[str, Any]:
    """How an analyst finds the event again: its id (or record id / file offset), time and file."""
    ref: dict[str, Any] = {"timestamp": event.get("@timestamp") or iso_now()}
    for key, dotted in (("id", "event.id"), ("record_id", "winlog.record_id"), ("file", "log.file.path"),
                        ("offset", "log.offset")):
        value = get_field(event, dotted)
        if value is not None:
            ref[key] = value
    return ref


def subject_fields(event: Event, extra_fields: list[str]) -> dict[str, Any]:
    """The ECS of an alert: who/what blocks, Windows identifiers, and the fields the rule looked at."""
    ecs: dict[str, Any] = {}
    for block in SUBJECT_BLOCKS:
        if isinstance(event.get(block), dict):
            ecs[block] = event[block]
    winlog = event.get("winlog")
    if isinstance(winlog, dict):
        ecs["winlog"] = {k: winlog[k] for k in WINLOG_KEYS if k in winlog}
    for dotted in ("event.code", "event.action", "event.outcome", "event.dataset"):
        value = get_field(event, dotted)
        if value is not None:
            set_field(ecs, dotted, value)
    for dotted in extra_fields:
        value = get_field(event, dotted)
        if value is not None:
            set_field(ecs, dotted, value)
    return ecs


def group_subject(event: Event) -> str:
    """What a single-event alert is about, for grouping: the host, else the source address, else the user."""
    for dotted in ("host.name", "winlog.computer_name", "source.ip", "user.name"):
        value = get_field(event, dotted)
        if value:
            return str(value)
    return "-"
