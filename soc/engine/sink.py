"""Where every detector's alerts go: handling (inventory, grouping, risk, suppression), the store, and the
playbooks that start on new alerts. Shared by the packet pipeline and the event pipeline."""

from __future__ import annotations

from soc.alerts.handling import AlertHandler
from soc.core.config import Settings
from soc.core.model import Alert
from soc.response import PlaybookEngine, load_playbooks
from soc.store import AlertStore


class AlertSink:
    def __init__(self, settings: Settings, store: AlertStore) -> None:
        self.store = store
        self.handler = AlertHandler(settings, store)
        self.playbooks = (
            PlaybookEngine(settings, store, load_playbooks([settings.resolve(p) for p in settings.playbooks]))
            if settings.response.auto_run else None
        )
        self.latest: dict[str, Alert] = {}  # the latest version of each alert written in this run
        self.playbook_runs = 0

    def emit(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        alerts = self.handler.handle(alerts)
        self.store.write(alerts)
        for alert in alerts:
            self.latest[alert.id] = alert
            if self.playbooks is not None and alert.suppressed_by is None:
                self.playbook_runs += len(self.playbooks.start_all(alert))

    @property
    def alerts(self) -> list[Alert]:
        return list(self.latest.values())
