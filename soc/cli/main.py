"""The `soc` command line: replay captures, read alerts back, check the configuration."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from soc.cli import lab as lab_cli
from soc.cli import logs as logs_cli
from soc.cli import response as response_cli
from soc.cli import sigma as sigma_cli
from soc.cli import web as web_cli
from soc.cli.common import (
    ConfigOption,
    StoreOption,
    err,
    exit_if_spooled,
    fail,
    load_config,
    open_configured_store,
    out,
    print_alerts,
    say,
)
from soc.core.errors import SocError
from soc.core.model import Alert, AlertStatus, Severity
from soc.store import AlertQuery

if TYPE_CHECKING:
    from soc.pipeline import ReplayReport

app = typer.Typer(
    name="soc",
    help="Security-monitoring engine: captures and logs in, alerts out (SQLite by default, or Elasticsearch).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
alerts_app = typer.Typer(help="Read alerts from the store.", no_args_is_help=True)
config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
app.add_typer(config_app, name="config")

@app.command()
def replay(
    pcaps: Annotated[list[Path], typer.Argument(help="pcap or pcapng files, replayed in order")],
    config: ConfigOption = None,
    store: StoreOption = None,
    events: Annotated[bool, typer.Option(help="also store every flow as an ECS event")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Replay capture files through the flow meter and detectors; write alerts to the store."""
    from soc.pipeline import Replay  # the detectors' imports cost time: only for commands that need them

    settings, alert_store = open_configured_store(config, store)
    with alert_store, _progress(quiet) as progress:
        tasks: dict[Path, TaskID] = {}

        def advance(path: Path, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = progress.add_task(path.name, total=total)
            progress.update(tasks[path], completed=done)

        try:
            outcome = Replay(settings, alert_store, store_events=events, progress=advance).run(pcaps)
        except SocError as exc:
            fail(exc)
        pending = alert_store.spool.pending() > 0
    _print_replay_summary(outcome, alert_store.url)
    for error in outcome.errors:
        say(error)
    exit_if_spooled(settings, alert_store, pending)
    if outcome.errors:
        raise typer.Exit(1)


@app.command()
def run(
    interface: Annotated[list[str] | None, typer.Option("--interface", "-i", help="interface to capture (repeat)")]
    = None,
    config: ConfigOption = None,
    store: StoreOption = None,
    state_dir: Annotated[Path, typer.Option(help="capture ring and checkpoint; a restart resumes from here")]
    = Path(".soc-state"),
    duration: Annotated[float | None, typer.Option(min=1, help="stop after this many seconds (default: never)")]
    = None,
    capture_filter: Annotated[str | None, typer.Option("--filter", help="BPF capture filter")] = None,
    events: Annotated[bool, typer.Option(help="also store every flow as an ECS event")] = False,
) -> None:
    """Capture live interfaces (dumpcap ring) and the configured log sources through the detectors until Ctrl-C
    or --duration."""
    from soc.live import LiveStatus, run_live

    settings, alert_store = open_configured_store(config, store)
    interfaces = interface or settings.collectors.packets.interfaces
    status_line = err.status("starting capture", spinner="dots") if err.is_terminal else None

    def show(status: LiveStatus) -> None:
        if status_line is not None:
            status_line.update(f"{status.packets} packets, {status.flows} flows, {status.alerts} alerts; "
                               f"drops: kernel {status.drops.kernel}, own {status.drops.own}")

    with alert_store:
        if status_line is not None:
            status_line.start()
        try:
            outcome, drops = run_live(settings, alert_store, interfaces, state_dir, duration, events,
                                      capture_filter, show)
        except SocError as exc:
            fail(exc)
        finally:
            if status_line is not None:
                status_line.stop()
        pending = alert_store.spool.pending() > 0
    _print_replay_summary(outcome, alert_store.url)
    if interfaces:
        out.print(f"Interfaces {', '.join(interfaces)}: {drops.received} packets received; dropped by the kernel "
                  f"{drops.kernel}, ring files lost before reading {drops.own}", highlight=False)
    exit_if_spooled(settings, alert_store, pending)


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=err, disable=quiet or not err.is_terminal, transient=True,
    )


def _print_replay_summary(report: ReplayReport, store_url: str) -> None:
    packets = sum(f.packets for f in report.files)
    out.print(f"Read {len(report.files)} file(s): {packets} packets, {report.flows} flows, "
              f"{len(report.alerts)} alerts → {store_url}", highlight=False)
    print_alerts(report.alerts)


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
    try:
        min_severity = Severity.parse(severity) if severity else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--severity") from None
    _, alert_store = open_configured_store(config, store)
    with alert_store:
        try:
            found = alert_store.search(AlertQuery(min_severity, status, rule, system, limit=limit))
        except SocError as exc:
            fail(exc)
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
    _, alert_store = open_configured_store(config, store)
    with alert_store:
        try:
            alert = alert_store.get(alert_id)
        except SocError as exc:
            fail(exc)
    if alert is None:
        fail(f"no alert with id {alert_id} in {alert_store.url}")
    if as_json:
        sys.stdout.write(json.dumps(alert.to_ecs(), indent=2, sort_keys=True) + "\n")
        return
    _print_alert(alert)


def _print_alert(alert: Alert) -> None:
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


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="the configuration file")] = Path("soc.yaml"),
) -> None:
    """Validate a configuration file; errors name the key and the line."""
    settings = load_config(file)
    levels = sorted({s.security_level for s in settings.inventory})
    out.print(f"{file}: valid. {len(settings.inventory)} information system(s) (levels {levels or '-'}), "
              f"store {settings.store.url}", highlight=False)


response_cli.register(alerts_app, app)
app.command("ingest")(logs_cli.ingest)
lab_cli.register(app)
web_cli.register(app)
sigma_cli.register(app)


def main() -> None:
    # the first replay on a machine compiles the packet kernels (about a minute): say so, and say if it failed
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("soc: %(message)s"))
    kernels_log = logging.getLogger("soc.core.kernels")
    kernels_log.addHandler(handler)
    kernels_log.setLevel(logging.INFO)
    kernels_log.propagate = False
    app()


if __name__ == "__main__":
    main()
