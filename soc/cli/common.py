"""What every `soc` command shares: consoles, error reporting, the --config and --store options, the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from soc.core.config import Settings, load_settings
from soc.core.errors import SocError
from soc.core.model import Alert
from soc.store import SpooledStore, open_spooled_store

# Piped output is read by people in logs and by grep: wide lines, never wrapped at rich's default 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=200)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="soc.yaml to use (default: ./soc.yaml if present)")
]
StoreOption = Annotated[
    str | None,
    typer.Option("--store", "-s", help="sqlite:///FILE or http(s)://HOST:PORT; overrides the config's store.url"),
]

EXIT_STORE_PENDING = 75  # EX_TEMPFAIL: alerts are safe in the spool, delivery must be retried


def say(message: object, level: str = "error") -> None:
    """One line on stderr, never wrapped (paths and offsets must stay greppable), markup in it escaped."""
    colour = "bold red" if level == "error" else "yellow"
    err.print(f"[{colour}]{level}:[/] {escape(str(message))}", soft_wrap=True, highlight=False)


def fail(error: SocError | str, code: int = 1) -> NoReturn:
    say(error)
    raise typer.Exit(code)


def load_config(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except SocError as exc:
        fail(exc)


def open_configured_store(config: Path | None, store_url: str | None) -> tuple[Settings, SpooledStore]:
    """Settings and the spooled store they name (``--store`` wins over the file)."""
    settings = load_config(config)
    store_settings = settings.store
    base_dir = str(settings.base_dir) if config or Path("soc.yaml").exists() else None
    if store_url:
        store_settings = store_settings.model_copy(update={"url": store_url})
        base_dir = None  # a path given on the command line is relative to where the command runs
    try:
        return settings, open_spooled_store(store_settings, str(settings.resolve(settings.store.spool_dir)), base_dir)
    except SocError as exc:
        fail(exc)




ActorOption = Annotated[str, typer.Option("--by", envvar="SOC_USER", help="who does it (recorded in the audit log)")]


def print_alerts(alerts: list[Alert]) -> None:
    """A table of alerts by rule and severity, then one line per alert."""
    by_rule: dict[tuple[str, str], int] = {}
    for alert in alerts:
        key = (alert.rule.name, alert.severity.label)
        by_rule[key] = by_rule.get(key, 0) + 1
    if not by_rule:
        return
    table = Table(title="Alerts by rule and severity")
    table.add_column("rule")
    table.add_column("severity")
    table.add_column("alerts", justify="right")
    for (rule, severity), count in sorted(by_rule.items()):
        table.add_row(rule, severity, str(count))
    out.print(table)
    for alert in alerts:
        suppressed = " (suppressed)" if alert.suppressed_by else ""
        out.print(f"  [{alert.severity.label}] {alert.id}  {alert.message}{suppressed}", highlight=False,
                  markup=False)


def exit_if_spooled(settings: Settings, store: SpooledStore, pending: bool) -> None:
    """Alerts that could not reach the store wait in the spool: say so, and exit with EX_TEMPFAIL."""
    if pending:
        say(f"{store.spooled} alerts wait in the spool {settings.resolve(settings.store.spool_dir)}; "
            "they are delivered on the next run", "warning")
        raise typer.Exit(EXIT_STORE_PENDING)
