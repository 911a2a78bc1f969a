"""`soc jobs [run NAME | start]`: the scheduled jobs (summaries, reports, retention), listed, run once, or run
on their schedules."""

from __future__ import annotations

import contextlib
import json
import sys

import typer

from soc.cli.common import ConfigOption, StoreOption, fail, load_config, open_configured_store, out

jobs_app = typer.Typer(help="Scheduled jobs: list, run one now, or run the scheduler.", invoke_without_command=True)


@jobs_app.callback()
def jobs_list(context: typer.Context, config: ConfigOption = None) -> None:
    """List the scheduled jobs and when each runs next."""
    if context.invoked_subcommand is not None:
        return
    from rich.table import Table

    from soc.engine.scheduler import next_runs

    table = Table("job", "schedule (cron)", "next run", "what")
    for job, when in next_runs(load_config(config)):
        table.add_row(job.name, job.cron, when.isoformat() if when else "-", job.description)
    out.print(table)


@jobs_app.command("run")
def jobs_run(name: str, config: ConfigOption = None, store: StoreOption = None) -> None:
    """Run one job now."""
    from soc.engine.scheduler import jobs

    settings, alert_store = open_configured_store(config, store)
    known = jobs(settings)
    if name not in known:
        fail(f"no job {name!r}: use one of {', '.join(known)}")
    sys.stdout.write(json.dumps(known[name].run(settings, alert_store), indent=2) + "\n")


@jobs_app.command("start")
def jobs_start(config: ConfigOption = None, store: StoreOption = None) -> None:
    """Run the scheduler in the foreground until Ctrl-C."""
    from soc.engine.scheduler import run_scheduler

    settings, alert_store = open_configured_store(config, store)
    out.print("scheduler running (Ctrl-C stops it)")
    with contextlib.suppress(KeyboardInterrupt):
        run_scheduler(settings, alert_store)
