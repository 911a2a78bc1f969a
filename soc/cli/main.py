"""The `soc` command line: replay captures, run live, check the configuration; every other area of commands is
named in ``LAZY`` and imported only when one of its commands runs (soc/cli/lazy.py says why)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
from soc.cli.lazy import Lazy, lazy_group
from soc.core.errors import SocError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from soc.engine.engine import EngineReport

# The areas, in the order `soc --help` lists them; the help line is the command's own (tests/test_cli_areas.py).
LAZY = {
    "ingest": Lazy("soc.cli.logs:ingest", "Parse log files once (the offline twin of `soc replay`): events through the "
                   "Sigma rules into the store."),
    "serve": Lazy("soc.cli.web:serve", "Run the web console: analysts' queue, owners' posture, auditors' history, "
                  "admins' users."),
    "posture": Lazy("soc.cli.web:posture", "Security-level posture of each system: checks with reasons, alerts, "
                    "incidents, response times, score."),
    "alerts": Lazy("soc.cli.alerts:alerts_app", "Read alerts from the store."),
    "incidents": Lazy("soc.cli.incidents:incidents_app", "Incidents: alerts linked into one case, its phases and "
                      "reports."),
    "audit": Lazy("soc.cli.audit:audit_app", "The tamper-evident incident history."),
    "playbooks": Lazy("soc.cli.playbooks:playbooks_app", "Response playbooks: check, run, approve."),
    "jobs": Lazy("soc.cli.jobs:jobs_app", "Scheduled jobs: list, run one now, or run the scheduler."),
    "lab": Lazy("soc.cli.lab:lab_app", "Attack scenarios: generate labelled captures, replay them, score the "
                "detectors."),
    "model": Lazy("soc.cli.lab:model_app", "Anomaly models of normal traffic."),
    "users": Lazy("soc.cli.users:users_app", "Console users: add and list (passwords are stored as argon2 hashes)."),
    "sigma": Lazy("soc.cli.sigma:sigma_app", "Run Sigma rules on events."),
    "rules": Lazy("soc.cli.sigma:rules_app", "Check and convert Sigma rules."),
}
ORDER = ("replay", "run", "ingest", "serve", "posture", "alerts", "config", "incidents", "audit", "playbooks", "jobs",
         "lab", "model", "users", "sigma", "rules")

app = typer.Typer(
    name="soc",
    help="Security-monitoring engine: captures and logs in, alerts out (SQLite by default, or Elasticsearch).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=lazy_group(ORDER, LAZY),
)
config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
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
    from soc.engine.engine import Engine  # the detectors' imports cost time: only for commands that need them
    from soc.engine.sources import CaptureFiles, run_to_end

    settings, alert_store = open_configured_store(config, store)
    with alert_store, _progress(quiet) as progress:
        tasks: dict[Path, TaskID] = {}

        def advance(path: Path, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = progress.add_task(path.name, total=total)
            progress.update(tasks[path], completed=done)

        try:
            engine = Engine(settings, alert_store, store_events=events, progress=advance)
            outcome = run_to_end(engine, [CaptureFiles(pcaps)])
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
    from soc.engine.live import LiveStatus, run_live

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
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=err, disable=quiet or not err.is_terminal, transient=True,
    )


def _print_replay_summary(report: EngineReport, store_url: str) -> None:
    packets = report.packets
    out.print(f"Read {len(report.files)} file(s): {packets} packets, {report.flows} flows, "
              f"{len(report.alerts)} alerts → {store_url}", highlight=False)
    print_alerts(report.alerts)


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="the configuration file")] = Path("soc.yaml"),
) -> None:
    """Validate a configuration file; errors name the key and the line."""
    from soc.engine.plugins import check_plugins  # every plug-in's settings, validated by its own model

    settings = load_config(file)
    try:
        running = check_plugins(settings)
    except SocError as exc:
        fail(exc)
    levels = sorted({s.security_level for s in settings.inventory})
    out.print(f"{file}: valid. {len(settings.inventory)} information system(s) (levels {levels or '-'}), "
              f"store {settings.store.url}; plug-ins: {', '.join(running)}", highlight=False)



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
