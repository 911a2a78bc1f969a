"""`soc audit verify|export|log`: the tamper-evident history, checked, exported for auditors, or read."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import ActorOption, ConfigOption, StoreOption, open_configured_store, out, say

audit_app = typer.Typer(help="The tamper-evident incident history.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(config: ConfigOption = None, store: StoreOption = None) -> None:
    """Check the hash chain: any edited, inserted, deleted or reordered record is named."""
    from soc.audit import AuditLog

    _, alert_store = open_configured_store(config, store)
    report = AuditLog(alert_store).verify()
    for problem in report.problems:
        say(problem)
    if not report.ok:
        raise typer.Exit(1)
    out.print(f"audit log verified: {report.records} records, chain intact", highlight=False)


@audit_app.command("export")
def audit_export(
    start: Annotated[str | None, typer.Option("--from", help="first day (YYYY-MM-DD) of incidents to export")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (YYYY-MM-DD)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or html")] = "json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default stdout)")] = None,
    by: ActorOption = "auditor", config: ConfigOption = None, store: StoreOption = None,
) -> None:
    """Incident timelines (detected, acknowledged, contained, reported, closed) with deadlines met or missed."""
    from soc.audit import AuditLog
    from soc.audit.export import export_history
    from soc.incidents import Incidents

    if fmt not in ("json", "csv", "html"):
        raise typer.BadParameter("use json, csv or html", param_hint="--format")
    settings, alert_store = open_configured_store(config, store)
    text = export_history(Incidents(alert_store, settings), AuditLog(alert_store), start, end, fmt, by)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}", highlight=False)


@audit_app.command("log")
def audit_log(subject: Annotated[str | None, typer.Option(help="e.g. alert:ID or incident:ID")] = None,
              config: ConfigOption = None, store: StoreOption = None) -> None:
    """Print audit records (JSON lines)."""
    from soc.audit import AuditLog

    _, alert_store = open_configured_store(config, store)
    for record in AuditLog(alert_store).records(subject):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
