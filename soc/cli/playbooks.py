"""`soc playbooks check|run|approve|retry|runs`: response playbooks on alerts, step by step, with approvals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soc.cli.common import (
    ActorOption,
    ConfigOption,
    StoreOption,
    fail,
    load_config,
    open_configured_store,
    out,
    reported,
    say,
)

if TYPE_CHECKING:
    from soc.response import PlaybookEngine

playbooks_app = typer.Typer(help="Response playbooks: check, run, approve.", no_args_is_help=True)


def _engine(config: Path | None, store: str | None) -> PlaybookEngine:
    from soc.response import PlaybookEngine, load_playbooks

    settings, alert_store = open_configured_store(config, store)
    with reported():
        playbooks = load_playbooks([settings.resolve(p) for p in settings.playbooks])
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
    from soc.response import load_playbooks

    settings = load_config(config)
    with reported():
        playbooks = load_playbooks(paths or [settings.resolve(p) for p in settings.playbooks])
    for playbook in playbooks:
        out.print(f"{playbook.id}: {len(playbook.steps)} steps ({playbook.source})", highlight=False)


@playbooks_app.command("run")
def playbooks_run(alert_id: str, playbook: Annotated[str | None, typer.Option(help="a playbook id (default: every "
                                                                                    "playbook the alert triggers)")]
                  = None, by: ActorOption = "analyst", config: ConfigOption = None, store: StoreOption = None) -> None:
    """Run playbooks on an alert, up to the first step that needs approval."""
    engine = _engine(config, store)
    with reported():
        alert = engine.store.get(alert_id)
        if alert is None:
            fail(f"no alert with id {alert_id}")
        runs = [engine.start(playbook, alert_id, by)] if playbook else engine.start_all(alert, by)
    if not runs:
        say(f"no playbook is triggered by alert {alert_id}", "warning")
    for run in runs:
        _print_run(run)


@playbooks_app.command("approve")
def playbooks_approve(run_id: str, step: str, by: ActorOption = "analyst", config: ConfigOption = None,
                      store: StoreOption = None) -> None:
    """Approve the step a run waits for, and go on."""
    with reported():
        _print_run(_engine(config, store).approve(run_id, step, by))


@playbooks_app.command("retry")
def playbooks_retry(run_id: str, by: ActorOption = "analyst", config: ConfigOption = None,
                    store: StoreOption = None) -> None:
    """Retry a run from the step that failed."""
    with reported():
        _print_run(_engine(config, store).retry(run_id, by))


@playbooks_app.command("runs")
def playbooks_runs(config: ConfigOption = None, store: StoreOption = None) -> None:
    """List playbook runs."""
    for run in _engine(config, store).runs():
        _print_run(run)
