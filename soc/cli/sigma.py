"""``soc sigma match`` (run Sigma rules on EVTX or JSON-lines events) and ``soc rules check|convert``.

Two typer apps: ``sigma_app`` and ``rules_app``; :func:`register` adds both to the main CLI.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from detectors.sigma import RuleSet, SigmaEngine, load_rules
from detectors.sigma.pipelines import PIPELINES, get_pipeline
from soc.cli.common import say
from soc.core.model import Event

sigma_app = typer.Typer(help="Run Sigma rules on events.", no_args_is_help=True, add_completion=False)
rules_app = typer.Typer(help="Check and convert Sigma rules.", no_args_is_help=True, add_completion=False)
err = Console(stderr=True)

TARGETS = ("lucene", "eql", "esql")

RulesOption = Annotated[list[Path], typer.Option("--rules", "-r", help="rule files or folders (repeatable)")]
PipelineOption = Annotated[
    list[str] | None,
    typer.Option("--pipeline", "-p", help=f"processing pipeline(s), in order: {', '.join(sorted(PIPELINES))}"),
]


def register(app: typer.Typer) -> None:
    """Add ``soc sigma ...`` and ``soc rules ...`` to the main CLI."""
    app.add_typer(sigma_app, name="sigma")
    app.add_typer(rules_app, name="rules")


def _check_pipeline(names: list[str] | None) -> None:
    try:
        get_pipeline(names)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--pipeline") from None


# --- reading events -------------------------------------------------------------------------------------------


def _jsonl(
    name: str, lines: Iterator[str], malformed: Counter[str], defaults: dict[str, str | None]
) -> Iterator[Event]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            malformed["bad_json"] += 1
            say(f"{name}:{number}: not JSON ({exc.msg}), skipped", "warning")
            continue
        if not isinstance(event, dict):
            malformed["not_an_object"] += 1
            say(f"{name}:{number}: a JSON {type(event).__name__}, not an event object, skipped", "warning")
            continue
        soc = event.setdefault("soc", {})
        if isinstance(soc, dict) and not soc.get("logsource"):
            soc["logsource"] = dict(defaults)
        yield event


def read_events(paths: list[str], malformed: Counter[str], defaults: dict[str, str | None]) -> Iterator[Event]:
    """Events from EVTX files, JSON-lines files, or ``-`` (JSON lines on stdin), in the order given."""
    for name in paths:
        if name == "-":
            yield from _jsonl("<stdin>", iter(sys.stdin), malformed, defaults)
            continue
        path = Path(name)
        if not path.is_file():
            malformed["missing_file"] += 1
            say(f"{name}: no such file, skipped")
            continue
        with path.open("rb") as handle:
            is_evtx = handle.read(8) == b"ElfFile\x00"
        if is_evtx:
            from collectors.logs.base import Diagnostics
            from collectors.logs.evtx import iter_evtx_events

            diagnostics = Diagnostics()
            yield from iter_evtx_events(path, diagnostics=diagnostics)
            for reason, count in diagnostics.stats.malformed.items():
                malformed[reason] += count
            continue
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from _jsonl(name, handle, malformed, defaults)


def _match_line(rule_id: str, title: str, level: str, tags: list[str], body: dict[str, Any]) -> str:
    return json.dumps({"rule": {"id": rule_id, "title": title, "level": level, "tags": tags}, **body},
                      ensure_ascii=False, default=str)


@sigma_app.command("match")
def match(
    events: Annotated[list[str], typer.Argument(help="EVTX files, JSON-lines files, or - for stdin")],
    rules: RulesOption,
    pipeline: PipelineOption = None,
    product: Annotated[str | None, typer.Option(help="log source product of JSON events that carry none")] = None,
    category: Annotated[str | None, typer.Option(help="log source category of JSON events that carry none")] = None,
    service: Annotated[str | None, typer.Option(help="log source service of JSON events that carry none")] = None,
) -> None:
    """Print one JSON line per match (rule id, title, level, tags, the event) and per fired correlation."""
    _check_pipeline(pipeline)
    started = time.perf_counter()
    ruleset = RuleSet.from_paths(rules, pipeline)
    for problem in ruleset.report.problems:
        say(problem, "warning")
    if not ruleset.rules:
        say("no rule could be loaded")
        raise typer.Exit(2)
    engine = SigmaEngine(ruleset.rules, ruleset.correlations)
    loaded = time.perf_counter()
    malformed: Counter[str] = Counter()
    by_rule: Counter[tuple[str, str]] = Counter()
    defaults = {"product": product, "category": category, "service": service}
    count = 0
    write = sys.stdout.write
    for event in read_events(events, malformed, defaults):
        count += 1
        matches, fired = engine.evaluate(event)
        for rule in matches:
            by_rule[(rule.title, rule.level)] += 1
            write(_match_line(rule.id, rule.title, rule.level, rule.tags, {"event": event}) + "\n")
        for alert in fired:
            by_rule[(alert.rule.name, alert.severity.label)] += 1
            tags = [f"attack.{t.id.lower()}" for t in alert.techniques]
            write(_match_line(alert.rule.id, alert.rule.name, alert.severity.label, tags,
                              {"correlation": alert.to_ecs()}) + "\n")
    done = time.perf_counter()
    _summary(ruleset, count, by_rule, malformed, loaded - started, done - loaded)
    if malformed and count == 0:
        raise typer.Exit(1)


def _summary(ruleset: RuleSet, events: int, by_rule: Counter[tuple[str, str]], malformed: Counter[str],
             load_s: float, match_s: float) -> None:
    if by_rule:
        table = Table(title="Matches by rule")
        for column in ("rule", "level", "matches"):
            table.add_column(column, justify="right" if column == "matches" else "left")
        for (title, level), n in by_rule.most_common():
            table.add_row(title, level, f"{n:,}")
        err.print(table)
    if malformed:
        table = Table(title="Skipped input")
        table.add_column("reason")
        table.add_column("count", justify="right")
        for reason, n in malformed.most_common():
            table.add_row(reason, f"{n:,}")
        err.print(table)
    rate = events / match_s if match_s > 0 else 0.0
    err.print(f"{len(ruleset.rules):,} rules and {len(ruleset.correlations)} correlations loaded in {load_s:.1f} s "
              f"({len(ruleset.report.problems)} not loaded); {events:,} events, {sum(by_rule.values()):,} matches "
              f"in {match_s:.2f} s ({rate:,.0f} events/s)", highlight=False, soft_wrap=True)


# --- rules check / convert -------------------------------------------------------------------------------------


@rules_app.command("check")
def check(
    paths: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    pipeline: PipelineOption = None,
) -> None:
    """Load and compile every rule; list those that cannot be used, with counts by reason."""
    _check_pipeline(pipeline)
    ruleset = RuleSet.from_paths(paths, pipeline)
    report = ruleset.report
    for problem in report.problems:
        err.print(escape(str(problem)), soft_wrap=True, highlight=False)
    table = Table(title="Rules")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("files", f"{report.files:,}")
    table.add_row("rules loaded", f"{len(ruleset.rules):,}")
    table.add_row("correlations loaded", f"{len(ruleset.correlations):,}")
    for reason, n in report.by_reason().most_common():
        table.add_row(f"not loaded: {reason}", f"{n:,}")
    Console().print(table)
    if report.problems:
        raise typer.Exit(1)


def _backend(target: str, pipeline: list[str] | None) -> Any:
    from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend

    backends = {"lucene": LuceneBackend, "eql": EqlBackend, "esql": ESQLBackend}
    return backends[target](processing_pipeline=get_pipeline(pipeline))


@rules_app.command("convert")
def convert(
    paths: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    target: Annotated[str, typer.Option("--target", "-t", help="lucene | eql | esql")] = "lucene",
    pipeline: PipelineOption = None,
) -> None:
    """Print each rule as an Elasticsearch query (one JSON line: rule id, title, query); failures on stderr."""
    if target not in TARGETS:
        raise typer.BadParameter(f"use one of {', '.join(TARGETS)}", param_hint="--target")
    _check_pipeline(pipeline)
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError

    report = load_rules(paths)
    for problem in report.problems:
        say(problem, "warning")
    failures: Counter[str] = Counter()
    converted = 0
    # referenced rules first: a correlation's query is built from their converted queries
    for rule in sorted([*report.rules, *report.correlations]):
        backend = _backend(target, pipeline)  # a backend keeps per-rule state: a fresh one per rule
        try:
            backend.init_processing_pipeline(None)
            if isinstance(rule, SigmaCorrelationRule):
                queries = backend.convert_correlation_rule(rule, backend.default_format)
            else:
                queries = backend.convert_rule(rule, backend.default_format)
            queries = backend.finalize(queries, backend.default_format)
        except (SigmaError, NotImplementedError, ValueError, KeyError, TypeError) as exc:
            failures[type(exc).__name__] += 1
            path = rule.source.path if rule.source else ""
            say(f"{path}: {rule.title}: {exc}", "warning")
            continue
        for query in queries:
            converted += 1
            sys.stdout.write(json.dumps({"id": str(rule.id), "title": rule.title, "target": target,
                                         "query": query}, ensure_ascii=False, default=str) + "\n")
    err.print(f"{converted:,} queries, {sum(failures.values()):,} rules not converted "
              f"({', '.join(f'{k}: {v}' for k, v in failures.most_common()) or 'none'}), "
              f"{len(report.problems)} not loaded", highlight=False, soft_wrap=True)
    if failures or report.problems:
        raise typer.Exit(1)
