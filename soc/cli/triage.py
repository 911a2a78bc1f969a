"""`soc alerts ack|start|assign|note|close|reopen|suppress|suppressions`: an analyst's work on alerts.

Added to the `soc alerts` group by :func:`register`; every action goes through :class:`soc.triage.Triage`, which
records it in the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from soc.cli.common import ActorOption, AlertIds, ConfigOption, StoreOption, open_configured_store, out, reported, say
from soc.core.model import Verdict  # typer reads the choices of --verdict when it builds the group

if TYPE_CHECKING:
    from soc.triage import Outcome, Triage


def _outcomes(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.ok:
            out.print(f"{outcome.alert_id}: {outcome.message}", highlight=False)
        else:
            say(f"{outcome.alert_id}: {outcome.message}")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


def _triage(config: Path | None, store: str | None) -> Triage:
    from soc.triage import Triage

    _, alert_store = open_configured_store(config, store)
    return Triage(alert_store)


def ack(alert_ids: AlertIds, by: ActorOption = "analyst", config: ConfigOption = None,
        store: StoreOption = None) -> None:
    """Acknowledge alerts: someone is looking."""
    _outcomes(_triage(config, store).acknowledge(alert_ids, by))


def start(alert_ids: AlertIds, by: ActorOption = "analyst", config: ConfigOption = None,
          store: StoreOption = None) -> None:
    """Mark alerts in progress."""
    _outcomes(_triage(config, store).start(alert_ids, by))


def assign(alert_ids: AlertIds, to: Annotated[str, typer.Option("--to", help="the assignee")],
           by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Assign alerts to someone."""
    _outcomes(_triage(config, store).assign(alert_ids, to, by))


def note(alert_id: Annotated[str, typer.Argument()], text: Annotated[str, typer.Argument()],
         by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Add a note to an alert."""
    with reported():
        _outcomes([_triage(config, store).note(alert_id, text, by)])


def close(alert_ids: AlertIds, verdict: Annotated[Verdict, typer.Option(help="what it was")],
          reason: Annotated[str, typer.Option(help="why (kept as a note)")] = "",
          by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Close alerts with a verdict."""
    _outcomes(_triage(config, store).close(alert_ids, verdict, by, reason))


def reopen(alert_ids: AlertIds, reason: Annotated[str, typer.Option(help="why")],
           by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Reopen closed alerts."""
    _outcomes(_triage(config, store).reopen(alert_ids, by, reason))


def suppress(
    fields: Annotated[list[str], typer.Argument(help="FIELD=VALUE conditions, e.g. source.ip=10.0.0.5 "
                                                     "rule.id=soc-net-portscan (a CIDR matches addresses)")],
    reason: Annotated[str, typer.Option(help="why these alerts are not work")],
    days: Annotated[float | None, typer.Option(min=0, help="expires after this many days (default never)")]
    = None,
    by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None,
) -> None:
    """Stop repeats of matching alerts without deleting them (kept as evidence, out of the queue)."""
    conditions = {}
    for pair in fields:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise typer.BadParameter(f"{pair!r} is not FIELD=VALUE", param_hint="FIELDS")
        conditions[name] = value
    with reported():
        rule = _triage(config, store).suppress(conditions, reason, by, days)
    out.print(f"suppression {rule.id}: {conditions} until {rule.expires_at or 'removed'}", highlight=False)


def suppressions(config: ConfigOption = None, store: StoreOption = None) -> None:
    """List suppression rules."""
    from rich.table import Table

    table = Table("id", "fields", "reason", "author", "expires", "active")
    for rule in _triage(config, store).suppressions():
        table.add_row(rule.id, json.dumps(rule.fields), rule.reason, rule.author, rule.expires_at or "never",
                      "yes" if rule.active() else "expired")
    out.print(table)


def register(alerts_app: typer.Typer) -> None:
    """Add the triage commands to `soc alerts`."""
    for command in (ack, start, assign, note, close, reopen, suppress, suppressions):
        alerts_app.command(command.__name__)(command)
