"""Suppression rules: alerts matching one are still stored (evidence is never deleted) but marked with the rule
that matched and kept out of the analysts' queue, until the rule expires."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from soc.core.model import Alert, get_field, iso_now

KIND = "suppression"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(slots=True)
class Suppression:
    """``fields`` maps ECS fields of the alert (``source.ip``, ``rule.id``, ``user.name``) to the value that must
    match: exactly, or, for a CIDR value on an address field, by containment."""

    fields: dict[str, str]
    reason: str
    author: str
    expires_at: str | None = None
    created_at: str = field(default_factory=iso_now)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def active(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return True
        return (now or datetime.now(tz=UTC)) < _parse_time(self.expires_at)

    def matches(self, doc: dict[str, Any]) -> bool:
        for name, expected in self.fields.items():
            value = get_field(doc, name)
            values = value if isinstance(value, list) else [value]
            if not any(_equal(v, expected) for v in values):
                return False
        return True

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Suppression:
        return cls(**record)


def _equal(value: Any, expected: str) -> bool:
    if value is None:
        return False
    if "/" in expected:
        try:
            return ipaddress.ip_address(str(value)) in ipaddress.ip_network(expected, strict=False)
        except ValueError:
            pass
    return str(value).lower() == expected.lower()


def first_match(alert: Alert, suppressions: list[Suppression], now: datetime | None = None) -> Suppression | None:
    doc = alert.to_ecs()
    return next((s for s in suppressions if s.active(now) and s.matches(doc)), None)
