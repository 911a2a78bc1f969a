"""``soc ingest PATH...``: parse log files once and summarize what came out (events by dataset and log source,
malformed lines by reason). With ``--output`` the events go to a JSONL file, resumably (``--checkpoint``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from collectors.logs.base import Diagnostics, Stats
from collectors.logs.ingest import ingest_paths, ingest_to_jsonl, known_format
from collectors.logs.parsers import PARSERS
from soc.cli.common import (
    ConfigOption,
    StoreOption,
    exit_if_spooled,
    open_configured_store,
    out,
    print_alerts,
    say,
)
from soc.core.config import Settings
from soc.core.errors import SocError
from soc.core.model import Alert, Event
from soc.store import SpooledStore

app = typer.Typer(add_completion=False, no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Log collectors."""


def _options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option wants KEY=VALUE, got {pair!r}")
        options[key] = value
    return options


def _table(title: str, rows: dict[str, int], key: str) -> Table:
    table = Table(title=title)
    table.add_column(key)
    table.add_column("count", justify="right")
    for name, count in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(name, f"{count:,}")
    return table


def print_summary(stats: Stats, seconds: float, console: Console | None = None) -> None:
    console = console or Console()
    total = sum(stats.events.values())
    console.print(_table("Events by dataset", dict(stats.events), "dataset"))
    console.print(_table("Events by log source (product/category/service)", dict(stats.logsources), "log source"))
    if stats.malformed:
        console.print(_table("Malformed (skipped, see the dead-letter file)", dict(stats.malformed), "reason"))
    if stats.skipped:
        console.print(_table("Not records", dict(stats.skipped), "reason"))
    rate = total / seconds if seconds > 0 else 0.0
    console.print(
        f"[bold]{total:,}[/] events, {sum(stats.malformed.values()):,} malformed, {stats.truncated:,} truncated, "
        f"{stats.utf8_replaced:,} with invalid UTF-8 replaced in {seconds:.2f} s ({rate:,.0f} events/s)"
    )


@app.command("ingest")
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="log files or directories (EVTX recognized by content)")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="log format; sniffed per file when omitted")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="parser option KEY=VALUE (year, timezone, ...)")
    ] = None,
    dead_letter: Annotated[
        Path | None, typer.Option("--dead-letter", help="append malformed lines here (JSONL)")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="write the events here (JSONL)")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="with --output: resume a killed run exactly")
    ] = None,
    fsync: Annotated[bool, typer.Option("--fsync", help="with --output: survive power loss, not only a kill")] = False,
    list_formats: Annotated[bool, typer.Option("--list-formats", help="list the formats and exit")] = False,
    detect: Annotated[bool, typer.Option(help="run the Sigma rules (sigma.rules) and store the alerts")] = True,
    events: Annotated[bool, typer.Option(help="also store every event (soc-events-*)")] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Parse log files once (the offline twin of `soc replay`): events through the Sigma rules into the store."""
    if list_formats:
        table = Table(title="Log formats")
        table.add_column("name")
        table.add_column("what")
        table.add_row("evtx", "Windows event log files")
        for name, cls in sorted(PARSERS.items()):
            table.add_row(name, cls.description)
        Console().print(table)
        return
    if not paths:
        say("no PATH given")
        raise typer.Exit(2)
    diagnostics = Diagnostics(dead_letter=dead_letter)
    started = time.perf_counter()
    try:
        known_format(fmt)
        options = _options(option or [])
        if output is not None:
            ingest_to_jsonl(
                paths, output, checkpoint or output.with_name(output.name + ".checkpoint"), fmt,
                options=options, diagnostics=diagnostics, durable=fsync,
            )  # fmt: skip
        elif detect or events:
            detected = _detect(ingest_paths(paths, fmt, options=options, diagnostics=diagnostics), events, detect,
                               config, store)
        else:
            for _ in ingest_paths(paths, fmt, options=options, diagnostics=diagnostics):
                pass
    except (OSError, ValueError, SocError) as exc:
        say(exc)
        raise typer.Exit(2) from None
    finally:
        diagnostics.close()
    print_summary(diagnostics.stats, time.perf_counter() - started)
    if output is None and (detect or events):
        settings, alert_store, alerts = detected
        out.print(f"{len(alerts)} alerts → {alert_store.url}", highlight=False)
        print_alerts(alerts)
        exit_if_spooled(settings, alert_store, alert_store.spool.pending() > 0)


def _detect(stream: Iterator[Event], store_events: bool, detect: bool, config: Path | None,
            store: str | None) -> tuple[Settings, SpooledStore, list[Alert]]:
    """Events through the engine (the Sigma rules and every other observer of events) into the configured store."""
    from soc.engine.engine import Engine  # the rules compile only when they are used
    from soc.engine.sources import EventStream, run_to_end

    settings, alert_store = open_configured_store(config, store)
    with alert_store:
        engine = Engine(settings, alert_store, store_events=store_events, observers=None if detect else [])
        report = run_to_end(engine, [EventStream(stream)])
    return settings, alert_store, report.alerts


if __name__ == "__main__":
    app()
