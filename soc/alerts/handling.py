"""What happens to an alert between its detector and the store: the information system it concerns, grouping
with its repeats, a risk score, and suppression."""

from __future__ import annotations

import contextlib
import fnmatch
from collections import OrderedDict
from datetime import datetime

from soc.alerts.suppression import KIND as SUPPRESSION_KIND
from soc.alerts.suppression import Suppression, first_match
from soc.core.config import GroupingRule, InformationSystem, Settings
from soc.core.errors import StoreUnavailable
from soc.core.model import Alert, get_field
from soc.store.base import AlertStore

_EVIDENCE_LIST_LIMIT = 50  # merged evidence lists keep this many items (the count says how many there were)
_SUBJECT_ADDRESSES = ("destination.ip", "source.ip", "host.ip")
_SUBJECT_HOSTS = ("destination.domain", "url.domain", "host.name", "host.hostname", "winlog.computer_name")


def risk_score(alert: Alert, unknown_system_level: int) -> float:
    """0-100: the rule's severity × the security level of the system hit × the anomaly score (1 when none)."""
    level = alert.system_level or unknown_system_level
    anomaly = float(alert.evidence.get("anomaly_score", 1.0))
    return round(100.0 * int(alert.severity) / 5 * level / 5 * max(0.0, min(anomaly, 1.0)), 1)


def resolve_system(alert: Alert, settings: Settings) -> InformationSystem | None:
    """The system the alert concerns: the one hit (destination) first, then the others, by address or name."""
    for field_name in _SUBJECT_ADDRESSES:
        address = get_field(alert.ecs, field_name)
        for value in address if isinstance(address, list) else [address]:
            system = settings.system_for_ip(str(value)) if value else None
            if system is not None:
                return system
        if field_name == "destination.ip":
            for host in alert.evidence.get("hosts", []):
                system = settings.system_for_ip(str(host))
                if system is not None:
                    return system
    for field_name in _SUBJECT_HOSTS:
        name = get_field(alert.ecs, field_name)
        system = settings.system_for_host(str(name)) if name else None
        if system is not None:
            return system
    return None


class AlertHandler:
    """Turns detector output into the alerts to write. Alerts under a grouping rule are merged with their group
    (count, first and last seen, evidence); it keeps a bounded set of recent groups in memory and reads a group
    back from the store when it is not there, so counts survive a restart. Other alerts replace their earlier
    version (a replay of the same capture gives the same alert)."""

    def __init__(self, settings: Settings, store: AlertStore, now: datetime | None = None) -> None:
        self.settings = settings
        self.store = store
        self.now = now
        self._groups: OrderedDict[str, Alert] = OrderedDict()
        self._suppressions: list[Suppression] = []
        self.suppressed = 0
        self.reload_suppressions()

    def reload_suppressions(self) -> None:
        """Read the suppression rules; while the store is down, keep the ones already known."""
        with contextlib.suppress(StoreUnavailable):
            self._suppressions = [Suppression.from_record(r) for r in self.store.list_records(SUPPRESSION_KIND)]

    def handle(self, alerts: list[Alert], group: bool = True) -> list[Alert]:
        """The alerts to write (each group once, with its merged count), in the order first seen. With
        ``group=False`` the caller has merged them already (scheduled queries count distinct events)."""
        out: dict[str, Alert] = {}
        for alert in alerts:
            system = resolve_system(alert, self.settings)
            if system is not None:
                alert.system, alert.system_level = system.name, system.security_level
            rule = self._rule_for(alert) if group else None
            merged = alert
            if rule is not None:
                self._regroup(alert, rule)
                merged = self._merge(alert)
            merged.risk_score = risk_score(merged, self.settings.alerts.unknown_system_level)
            out[merged.id] = merged
        for alert in out.values():
            if alert.suppressed_by is None:
                suppression = first_match(alert, self._suppressions, self.now)
                if suppression is not None:
                    alert.suppressed_by = suppression.id
                    self.suppressed += 1
        return list(out.values())

    def _rule_for(self, alert: Alert) -> GroupingRule | None:
        return next((g for g in self.settings.alerts.grouping if fnmatch.fnmatchcase(alert.rule.id, g.rule)
                     and g.ruleset in (None, alert.rule.ruleset)), None)

    @staticmethod
    def _regroup(alert: Alert, rule: GroupingRule) -> None:
        if rule.group_by is None:
            return
        values = [get_field(alert.ecs, name) for name in rule.group_by]
        alert.group_key = "|".join("" if v is None else str(v) for v in values)
        seconds = datetime.fromisoformat(alert.first_seen.replace("Z", "+00:00")).timestamp()
        alert.time_bucket = int(seconds // rule.window_seconds)

    def _merge(self, alert: Alert) -> Alert:
        known = self._groups.pop(alert.id, None)
        if known is None:
            try:  # written before this process started, or pushed out of memory
                known = self.store.get(alert.id)
            except StoreUnavailable:  # counted from what this process saw; the spool keeps the alerts
                known = None
        if known is not None and known is not alert:
            known.count += alert.count
            known.first_seen = min(known.first_seen, alert.first_seen)
            known.last_seen = max(known.last_seen, alert.last_seen)
            known.severity = max(known.severity, alert.severity)
            for key, value in alert.evidence.items():
                before = known.evidence.get(key)
                if isinstance(value, list) and isinstance(before, list):
                    known.evidence[key] = (before + [v for v in value if v not in before])[:_EVIDENCE_LIST_LIMIT]
                elif before is None:
                    known.evidence[key] = value
            alert = known
        self._groups[alert.id] = alert
        while len(self._groups) > self.settings.alerts.max_open_groups:
            self._groups.popitem(last=False)
        return alert
