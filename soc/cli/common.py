"""What every `soc` command shares: consoles, error reporting, the --config and --store options, the store.

Imported by every command module, so it imports only typer and rich's console at top level: the configuration,
the store and rich's tables load when a command uses them (`soc --help` must not pay for them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from soc.core.errors import SocError

if TYPE_CHECKING:
    from soc.core.config import Settings
    from soc.core.model import Alert
    from soc.store import SpooledStore

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
ActorOption = Annotated[str, typer.Option("--by", envvar="SOC_USER", help="who does it (recorded in the audit log)")]
AlertIds = Annotated[list[str], typer.Argument(help="alert ids (several for a bulk action)")]

EXIT_STORE_PENDING = 75  # EX_TEMPFAIL: alerts are safe in the spool, delivery must be retried


def say(message: object, level: str = "error") -> None:
    """One line on stderr, never wrapped (paths and offsets must stay greppable), markup in it escaped."""
    colour = "bold red" if level == "error" else "yellow"
    err.print(f"[{colour}]{level}:[/] {escape(str(message))}", soft_wrap=True, highlight=False)


def fail(error: SocError | str, code: int = 1) -> NoReturn:
    say(error)
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """A SocError raised in the block is the command's error: said on stderr, exit 1."""
    try:
        yield
    except SocError as exc:
        fail(exc)


def load_config(config: Path | None) -> Settings:
    from soc.core.config import load_settings

    with reported():
        return load_settings(config)


def open_configured_store(config: Path | None, store_url: str | None) -> tuple[Settings, SpooledStore]:
    """Settings and the spooled store they name (``--store`` wins over the file)."""
    from soc.store import open_spooled_store

    settings = load_config(config)
    store_settings = settings.store
    base_dir = str(settings.base_dir) if config or Path("soc.yaml").exists() else None
    if store_url:
        store_settings = store_settings.model_copy(update={"url": store_url})
        base_dir = None  # a path given on the command line is relative to where the command runs
    with reported():
        return settings, open_spooled_store(store_settings, str(settings.resolve(settings.store.spool_dir)), base_dir)


@contextmanager
def opened_store(config: Path | None, store_url: str | None) -> Iterator[tuple[Settings, SpooledStore]]:
    """The configured store, open for the block and closed after it; a SocError in the block fails the command."""
    settings, alert_store = open_configured_store(config, store_url)
    with alert_store, reported():
        yield settings, alert_store


def print_alerts(alerts: list[Alert]) -> None:
    """A table of alerts by rule and severity, then one line per alert."""
    from rich.table import Table

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
