"""Posture reads only through the store interface: the same answers from SQLite and from Elasticsearch."""

from __future__ import annotations

from datetime import UTC, datetime

from soc.core.config import Settings
from soc.core.model import Severity, Verdict
from soc.posture import SCORE_KIND, PostureEvaluator
from soc.store import AlertStore
from soc.triage import Triage

from ..conftest import make_alert


def test_posture_is_the_same_on_both_stores(store: AlertStore) -> None:
    settings = Settings.model_validate({"inventory": [
        {"name": "cong", "owner": "so", "security_level": 3, "addresses": ["10.0.0.0/16"], "approved_by": "UBND",
         "approved_on": "2026-01-02", "last_assessment": "2026-06-01", "retention_days": 120}]})
    alerts = [make_alert(n, severity) for n, severity in ((1, Severity.HIGH), (2, Severity.HIGH), (3, Severity.LOW))]
    for alert in alerts:
        alert.system, alert.system_level = "cong", 3
    store.write(alerts)
    Triage(store).acknowledge([alerts[2].id], "an")
    Triage(store).close([alerts[2].id], Verdict.BENIGN, "an")
    evaluator = PostureEvaluator(settings, store)
    [posture] = evaluator.record_scores(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    assert posture.open_alerts == {"high": 2}
    assert {c.id: c.status for c in posture.checks} == {
        "C1": "pass", "C2": "pass", "C4": "pass", "C5": "fail", "C6": "fail", "C7": "pass", "C8": "pass",
        "C9": "pass"}
    assert posture.score == 75
    assert posture.coverage["network"]["alerts"] == 0  # the test rule's ruleset is no monitored source
    assert posture.alerts_by_day == [("2026-11-02", 1), ("2026-11-03", 1), ("2026-11-04", 1)]
    assert store.get_record(SCORE_KIND, "cong-2026-11-02") == {
        "system": "cong", "date": "2026-11-02", "score": 75, "profile": "vn-decree85-2016", "failed": ["C5", "C6"]}
