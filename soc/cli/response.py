"""Commands for people at work on alerts: triage (`soc alerts ack|start|assign|note|close|reopen|suppress`),
incidents, playbooks, the audit log and scheduled jobs."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from soc.audit import AuditLog
from soc.cli.common import (
    ActorOption,
    ConfigOption,
    StoreOption,
    fail,
    load_config,
    open_configured_store,
    out,
    say,
)
from soc.core.errors import SocError
from soc.core.model import Verdict
from soc.incidents import PHASES, Incidents
from soc.response import PlaybookEngine, load_playbooks
from soc.triage import Outcome, Triage

incidents_app = typer.Typer(help="Incidents: alerts linked into one case, its phases and reports.",
                            no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident incident history.", no_args_is_help=True)
playbooks_app = typer.Typer(help="Response playbooks: check, run, approve.", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs: list, run one now, or run the scheduler.", invoke_without_command=True)

AlertIds = Annotated[list[str], typer.Argument(help="alert ids (several for a bulk action)")]


def _outcomes(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.ok:
            out.print(f"{outcome.alert_id}: {outcome.message}", highlight=False)
        else:
            say(f"{outcome.alert_id}: {outcome.message}")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


def _triage(config: Path | None, store: str | None) -> Triage:
    _, alert_store = open_configured_store(config, store)
    return Triage(alert_store)


def register(alerts_app: typer.Typer, app: typer.Typer) -> None:
    """Add the triage commands to `soc alerts` and the other groups to `soc`."""

    @alerts_app.command("ack")
    def ack(alert_ids: AlertIds, by: ActorOption = "analyst", config: ConfigOption = None,
            store: StoreOption = None) -> None:
        """Acknowledge alerts: someone is looking."""
        _outcomes(_triage(config, store).acknowledge(alert_ids, by))

    @alerts_app.command("start")
    def start(alert_ids: AlertIds, by: ActorOption = "analyst", config: ConfigOption = None,
              store: StoreOption = None) -> None:
        """Mark alerts in progress."""
        _outcomes(_triage(config, store).start(alert_ids, by))

    @alerts_app.command("assign")
    def assign(alert_ids: AlertIds, to: Annotated[str, typer.Option("--to", help="the assignee")],
               by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
        """Assign alerts to someone."""
        _outcomes(_triage(config, store).assign(alert_ids, to, by))

    @alerts_app.command("note")
    def note(alert_id: Annotated[str, typer.Argument()], text: Annotated[str, typer.Argument()],
             by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
        """Add a note to an alert."""
        try:
            _outcomes([_triage(config, store).note(alert_id, text, by)])
        except SocError as exc:
            fail(exc)

    @alerts_app.command("close")
    def close(alert_ids: AlertIds, verdict: Annotated[Verdict, typer.Option(help="what it was")],
              reason: Annotated[str, typer.Option(help="why (kept as a note)")] = "",
              by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
        """Close alerts with a verdict."""
        _outcomes(_triage(config, store).close(alert_ids, verdict, by, reason))

    @alerts_app.command("reopen")
    def reopen(alert_ids: AlertIds, reason: Annotated[str, typer.Option(help="why")],
               by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
        """Reopen closed alerts."""
        _outcomes(_triage(config, store).reopen(alert_ids, by, reason))

    @alerts_app.command("suppress")
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
        try:
            rule = _triage(config, store).suppress(conditions, reason, by, days)
        except SocError as exc:
            fail(exc)
        out.print(f"suppression {rule.id}: {conditions} until {rule.expires_at or 'removed'}", highlight=False)

    @alerts_app.command("suppressions")
    def suppressions(config: ConfigOption = None, store: StoreOption = None) -> None:
        """List suppression rules."""
        table = Table("id", "fields", "reason", "author", "expires", "active")
        for rule in _triage(config, store).suppressions():
            table.add_row(rule.id, json.dumps(rule.fields), rule.reason, rule.author, rule.expires_at or "never",
                          "yes" if rule.active() else "expired")
        out.print(table)

    app.add_typer(incidents_app, name="incidents")
    app.add_typer(audit_app, name="audit")
    app.add_typer(playbooks_app, name="playbooks")
    app.add_typer(jobs_app, name="jobs")


def _incidents(config: Path | None, store: str | None) -> Incidents:
    settings, alert_store = open_configured_store(config, store)
    return Incidents(alert_store, settings)


@incidents_app.command("open")
def incident_open(title: Annotated[str, typer.Argument()], alert_ids: AlertIds,
                  serious: Annotated[bool, typer.Option(help="a serious incident (24 h notice, 2026 rules)")] = False,
                  by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Open an incident from alerts."""
    try:
        incident = _incidents(config, store).open(title, alert_ids, by, serious)
    except SocError as exc:
        fail(exc)
    out.print(f"{incident.id}: {incident.title} ({len(incident.alert_ids)} alerts)", highlight=False)


@incidents_app.command("link")
def incident_link(incident_id: str, alert_ids: AlertIds, by: ActorOption = "analyst", config: ConfigOption = None,
                  store: StoreOption = None) -> None:
    """Link more alerts to an incident."""
    try:
        incident = _incidents(config, store).link(incident_id, alert_ids, by)
    except SocError as exc:
        fail(exc)
    out.print(f"{incident.id}: {len(incident.alert_ids)} alerts", highlight=False)


@incidents_app.command("phase")
def incident_phase(incident_id: str, phase: Annotated[str, typer.Argument(help=", ".join(PHASES))],
                   note: Annotated[str, typer.Option()] = "", by: ActorOption = "analyst",
                   config: ConfigOption = None, store: StoreOption = None) -> None:
    """Record a response phase (Circular 20/2017 art. 11) as done."""
    try:
        _incidents(config, store).record_phase(incident_id, phase, by, note)
    except SocError as exc:
        fail(exc)
    out.print(f"{incident_id}: {PHASES[phase]} recorded", highlight=False)


@incidents_app.command("report")
def incident_report(incident_id: str,
                    form: Annotated[str, typer.Option(help="initial (Form 03) or closing (Form 04)")] = "initial",
                    by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Draft the report to the national coordinator (printed as JSON) and record that it was made."""
    try:
        document = _incidents(config, store).report(incident_id, form, by)
    except SocError as exc:
        fail(exc)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@incidents_app.command("close")
def incident_close(incident_id: str, summary: Annotated[str, typer.Option(help="what happened, what was done")],
                   by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Close an incident."""
    try:
        _incidents(config, store).close(incident_id, by, summary)
    except SocError as exc:
        fail(exc)
    out.print(f"{incident_id}: closed", highlight=False)


@incidents_app.command("list")
def incident_list(config: ConfigOption = None, store: StoreOption = None) -> None:
    """List incidents."""
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
    try:
        incident = incidents.get(incident_id)
    except SocError as exc:
        fail(exc)
    document = {**incident.to_record(), "deadlines": incidents.deadlines(incident)}
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@audit_app.command("verify")
def audit_verify(config: ConfigOption = None, store: StoreOption = None) -> None:
    """Check the hash chain: any edited, inserted, deleted or reordered record is named."""
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
    from soc.audit.export import export_history

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
    _, alert_store = open_configured_store(config, store)
    for record in AuditLog(alert_store).records(subject):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


def _engine(config: Path | None, store: str | None) -> PlaybookEngine:

    settings, alert_store = open_configured_store(config, store)
    try:
        playbooks = load_playbooks([settings.resolve(p) for p in settings.playbooks])
    except SocError as exc:
        fail(exc)
    return PlaybookEngine(settings, alert_store, playbooks)


def _print_run(run: dict[str, Any]) -> None:
    out.print(f"run {run['id']} of {run['playbook']} on alert {run['alert_id']}: {run['status']}", highlight=False)
    for step in run["steps"]:
        detail = step.get("error") or json.dumps({k: v for k, v in (step.get("output") or {}).items()
                                                  if k != "draft"}, ensure_ascii=False)
        out.print(f"  {step['id']} ({step['type']}): {step['status']} {detail}", highlight=False)


@playbooks_app.command("check")
def playbooks_check(paths: Annotated[list[Path] | None, typer.Argument(help="files or folders")] = None,
                    config: ConfigOption = None) -> None:
    """Validate playbooks; errors name the file, the step and the field."""
    settings = load_config(config)
    try:
        playbooks = load_playbooks(paths or [settings.resolve(p) for p in settings.playbooks])
    except SocError as exc:
        fail(exc)
    for playbook in playbooks:
        out.print(f"{playbook.id}: {len(playbook.steps)} steps ({playbook.source})", highlight=False)


@playbooks_app.command("run")
def playbooks_run(alert_id: str, playbook: Annotated[str | None, typer.Option(help="a playbook id (default: every "
                                                                                    "playbook the alert triggers)")]
                  = None, by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Run playbooks on an alert, up to the first step that needs approval."""
    engine = _engine(config, store)
    try:
        alert = engine.store.get(alert_id)
        if alert is None:
            fail(f"no alert with id {alert_id}")
        runs = [engine.start(playbook, alert_id, by)] if playbook else engine.start_all(alert, by)
    except SocError as exc:
        fail(exc)
    if not runs:
        say(f"no playbook is triggered by alert {alert_id}", "warning")
    for run in runs:
        _print_run(run)


@playbooks_app.command("approve")
def playbooks_approve(run_id: str, step: str, by: ActorOption = "analyst", config: ConfigOption = None,
                      store: StoreOption = None) -> None:
    """Approve the step a run waits for, and go on."""
    try:
        _print_run(_engine(config, store).approve(run_id, step, by))
    except SocError as exc:
        fail(exc)


@playbooks_app.command("retry")
def playbooks_retry(run_id: str, by: ActorOption = "analyst", config: ConfigOption = None,
                    store: StoreOption = None) -> None:
    """Retry a run from the step that failed."""
    try:
        _print_run(_engine(config, store).retry(run_id, by))
    except SocError as exc:
        fail(exc)


@playbooks_app.command("runs")
def playbooks_runs(config: ConfigOption = None, store: StoreOption = None) -> None:
    """List playbook runs."""
    for run in _engine(config, store).runs():
        _print_run(run)


@jobs_app.callback()
def jobs_list(context: typer.Context, config: ConfigOption = None) -> None:
    """List the scheduled jobs and when each runs next."""
    if context.invoked_subcommand is not None:
        return
    from soc.scheduler import next_runs

    table = Table("job", "schedule (cron)", "next run", "what")
    for job, when in next_runs(load_config(config)):
        table.add_row(job.name, job.cron, when.isoformat() if when else "-", job.description)
    out.print(table)


@jobs_app.command("run")
def jobs_run(name: str, config: ConfigOption = None, store: StoreOption = None) -> None:
    """Run one job now."""
    from soc.scheduler import jobs

    settings, alert_store = open_configured_store(config, store)
    known = jobs(settings)
    if name not in known:
        fail(f"no job {name!r}: use one of {', '.join(known)}")
    sys.stdout.write(json.dumps(known[name].run(settings, alert_store), indent=2) + "\n")


@jobs_app.command("start")
def jobs_start(config: ConfigOption = None, store: StoreOption = None) -> None:
    """Run the scheduler in the foreground until Ctrl-C."""
    from soc.scheduler import run_scheduler

    settings, alert_store = open_configured_store(config, store)
    out.print("scheduler running (Ctrl-C stops it)")
    with contextlib.suppress(KeyboardInterrupt):
        run_scheduler(settings, alert_store)
