"""Where every observer's alerts go: handling (inventory, grouping, risk, suppression), the store, and the
playbooks that start on new alerts."""

from __future__ import annotations

from soc.alerts.handling import AlertHandler
from soc.core.config import Settings
from soc.core.errors import StoreUnavailable
from soc.core.model import Alert
from soc.response import PlaybookEngine, PlaybookError, load_playbooks
from soc.store import AlertStore


class AlertSink:
    """Alerts are written as they come (the spool keeps them while the store is down). Playbooks need the stored
    alert and their own records, so while the store is down their start waits here and is tried again with the
    next alerts and at the end of the run; a run never starts twice for one alert (its id is deterministic)."""

    def __init__(self, settings: Settings, store: AlertStore) -> None:
        self.store = store
        self.handler = AlertHandler(settings, store)
        self.playbooks = (
            PlaybookEngine(settings, store, load_playbooks([settings.resolve(p) for p in settings.playbooks]))
            if settings.response.auto_run else None
        )
        self.latest: dict[str, Alert] = {}  # the latest version of each alert written in this run
        self.playbook_runs = 0
        self._waiting: dict[str, Alert] = {}  # alerts whose playbooks could not start yet

    def emit(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        alerts = self.handler.handle(alerts)
        self.store.write(alerts)
        for alert in alerts:
            self.latest[alert.id] = alert
            if self.playbooks is not None and alert.suppressed_by is None:
                self._waiting[alert.id] = alert
        self.start_playbooks()

    def start_playbooks(self) -> None:
        if self.playbooks is None:
            return
        for alert_id, alert in list(self._waiting.items()):
            try:
                self.playbook_runs += len(self.playbooks.start_all(alert))
            except StoreUnavailable:
                return  # the store is down: the rest wait too
            except PlaybookError:
                try:
                    stored = self.store.get(alert_id) is not None
                except StoreUnavailable:
                    return
                if not stored:
                    return  # still in the spool, not yet in the store
                raise
            del self._waiting[alert_id]

    @property
    def waiting_playbooks(self) -> int:
        return len(self._waiting)

    @property
    def alerts(self) -> list[Alert]:
        return list(self.latest.values())
