"""`soc alerts list|show` (read alerts back) and, through soc.cli.triage, an analyst's actions on them."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from soc.cli import triage
from soc.cli.common import ConfigOption, StoreOption, fail, opened_store, out
from soc.core.model import AlertStatus, Severity  # typer reads the --status choices as it builds the group

if TYPE_CHECKING:
    from soc.core.model import Alert

alerts_app = typer.Typer(help="Read alerts from the store.", no_args_is_help=True)


@alerts_app.command("list")
def alerts_list(
    severity: Annotated[str | None, typer.Option(help="minimum severity: informational|low|medium|high|critical")]
    = None,
    status: Annotated[AlertStatus | None, typer.Option(help="only alerts in this triage status")] = None,
    rule: Annotated[str | None, typer.Option(help="only this rule id")] = None,
    system: Annotated[str | None, typer.Option(help="only this information system")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one ECS JSON document per line")] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """List stored alerts, newest first."""
    from rich.table import Table

    from soc.store import AlertQuery

    try:
        min_severity = Severity.parse(severity) if severity else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--severity") from None
    with opened_store(config, store) as (_, alert_store):
        found = alert_store.search(AlertQuery(min_severity, status, rule, system, limit=limit))
    if as_json:
        for alert in found:
            sys.stdout.write(json.dumps(alert.to_ecs(), sort_keys=True) + "\n")
        return
    table = Table(title=f"{len(found)} alert(s)")
    for column in ("id", "first seen", "severity", "status", "rule", "system", "message"):
        table.add_column(column, overflow="fold")
    for alert in found:
        table.add_row(alert.id, alert.first_seen, alert.severity.label, alert.status.value, alert.rule.name,
                      alert.system or "", alert.message)
    out.print(table)


@alerts_app.command("show")
def alerts_show(
    alert_id: Annotated[str, typer.Argument(help="the alert id (from `soc alerts list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="the stored ECS document")] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Show one alert with its evidence."""
    with opened_store(config, store) as (_, alert_store):
        alert = alert_store.get(alert_id)
    if alert is None:
        fail(f"no alert with id {alert_id} in {alert_store.url}")
    if as_json:
        sys.stdout.write(json.dumps(alert.to_ecs(), indent=2, sort_keys=True) + "\n")
        return
    _print_alert(alert)


def _print_alert(alert: Alert) -> None:
    from rich.table import Table

    table = Table(show_header=False, title=f"Alert {alert.id}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("rule", f"{alert.rule.name} ({alert.rule.id}, {alert.rule.ruleset})"),
        ("severity", alert.severity.label),
        ("status", alert.status.value + (f", assigned to {alert.assignee}" if alert.assignee else "")),
        ("first seen", alert.first_seen),
        ("last seen", alert.last_seen),
        ("system", f"{alert.system} (level {alert.system_level})" if alert.system else "not in the inventory"),
        ("ATT&CK", ", ".join(f"{t.id} {t.name} ({t.tactic_name})" for t in alert.techniques)),
        ("message", alert.message),
    ]
    rows += [(f"evidence.{key}", json.dumps(value)) for key, value in alert.evidence.items()]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table, highlight=False)


triage.register(alerts_app)
