"""`soc incidents open|link|phase|report|close|list|show`: alerts linked into one case, its phases and reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import ActorOption, AlertIds, ConfigOption, StoreOption, open_configured_store, out, reported
from soc.incidents import PHASES, Incidents  # the help of `phase` lists the phases: loaded with the group

incidents_app = typer.Typer(help="Incidents: alerts linked into one case, its phases and reports.",
                            no_args_is_help=True)


def _incidents(config: Path | None, store: str | None) -> Incidents:
    settings, alert_store = open_configured_store(config, store)
    return Incidents(alert_store, settings)


@incidents_app.command("open")
def incident_open(title: Annotated[str, typer.Argument()], alert_ids: AlertIds,
                  serious: Annotated[bool, typer.Option(help="a serious incident (24 h notice, 2026 rules)")] = False,
                  by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Open an incident from alerts."""
    with reported():
        incident = _incidents(config, store).open(title, alert_ids, by, serious)
    out.print(f"{incident.id}: {incident.title} ({len(incident.alert_ids)} alerts)", highlight=False)


@incidents_app.command("link")
def incident_link(incident_id: str, alert_ids: AlertIds, by: ActorOption = "analyst", config: ConfigOption = None,
                  store: StoreOption = None) -> None:
    """Link more alerts to an incident."""
    with reported():
        incident = _incidents(config, store).link(incident_id, alert_ids, by)
    out.print(f"{incident.id}: {len(incident.alert_ids)} alerts", highlight=False)


@incidents_app.command("phase")
def incident_phase(incident_id: str, phase: Annotated[str, typer.Argument(help=", ".join(PHASES))],
                   note: Annotated[str, typer.Option()] = "", by: ActorOption = "analyst",
                   config: ConfigOption = None, store: StoreOption = None) -> None:
    """Record a response phase (Circular 20/2017 art. 11) as done."""
    with reported():
        _incidents(config, store).record_phase(incident_id, phase, by, note)
    out.print(f"{incident_id}: {PHASES[phase]} recorded", highlight=False)


@incidents_app.command("report")
def incident_report(incident_id: str,
                    form: Annotated[str, typer.Option(help="initial (Form 03) or closing (Form 04)")] = "initial",
                    by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Draft the report to the national coordinator (printed as JSON) and record that it was made."""
    with reported():
        document = _incidents(config, store).report(incident_id, form, by)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@incidents_app.command("close")
def incident_close(incident_id: str, summary: Annotated[str, typer.Option(help="what happened, what was done")],
                   by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Close an incident."""
    with reported():
        _incidents(config, store).close(incident_id, by, summary)
    out.print(f"{incident_id}: closed", highlight=False)


@incidents_app.command("list")
def incident_list(config: ConfigOption = None, store: StoreOption = None) -> None:
    """List incidents."""
    from rich.table import Table

    incidents = _incidents(config, store)
    table = Table("id", "opened", "status", "system", "alerts", "title")
    for incident in incidents.all():
        table.add_row(incident.id, incident.created_at, incident.status, incident.system or "",
                      str(len(incident.alert_ids)), incident.title)
    out.print(table)


@incidents_app.command("show")
def incident_show(incident_id: str, config: ConfigOption = None, store: StoreOption = None) -> None:
    """One incident with its phases, reports and deadlines (JSON)."""
    incidents = _incidents(config, store)
    with reported():
        incident = incidents.get(incident_id)
    document = {**incident.to_record(), "deadlines": incidents.deadlines(incident)}
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
