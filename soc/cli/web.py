"""`soc serve` (the web console) and `soc posture` (security-level posture in the terminal); `soc users` is in
soc/cli/users.py. Wire all three into an app with ``register(app)``."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from soc.cli.common import ConfigOption, StoreOption, open_configured_store, opened_store, out, reported

if TYPE_CHECKING:
    from soc.core.config import Settings
    from soc.posture import SystemPosture


def secret_key(settings: Settings, path: Path | None) -> str:
    """The key that signs session cookies: $SOC_SECRET_KEY, else a file made once (0600) beside the config."""
    if os.environ.get("SOC_SECRET_KEY"):
        return os.environ["SOC_SECRET_KEY"]
    path = path or settings.resolve(".soc-web-secret")
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    https_only: Annotated[bool, typer.Option(help="mark session cookies Secure (behind a TLS proxy)")] = False,
    secret_file: Annotated[Path | None, typer.Option(help="file with the session-signing key")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Run the web console: analysts' queue, owners' posture, auditors' history, admins' users."""
    import uvicorn

    from soc.web import create_app

    settings, alert_store = open_configured_store(config, store)
    with reported():
        app = create_app(settings, alert_store, secret_key(settings, secret_file), https_only=https_only)
    out.print(f"soc console on http://{host}:{port} (store {alert_store.url}); Ctrl-C stops it")
    with alert_store:
        uvicorn.run(app, host=host, port=port, log_level="warning")


def _print_posture(p: SystemPosture) -> None:
    from rich.table import Table

    out.print(f"[bold]{p.system}[/] (owner {p.owner}, level {p.security_level}, {p.profile}): "
              f"score [bold]{p.score}[/]/100", highlight=False)
    table = Table("check", "result", "why", "source")
    colours = {"pass": "green", "fail": "red", "not_applicable": "dim"}
    for c in p.checks:
        table.add_row(f"{c.id} {c.title}", f"[{colours[c.status]}]{c.status}[/]", c.reason, c.source)
    out.print(table)
    opened = ", ".join(f"{s} {n}" for s, n in p.open_alerts.items()) or "none"
    out.print(f"open alerts: {opened}; incidents: {len(p.incidents)}", highlight=False)
    for label, medians in (("acknowledge", p.time_to_acknowledge), ("resolve", p.time_to_resolve)):
        out.print(f"median hours to {label}: this month {medians['this_month'] or '—'}, "
                  f"last month {medians['last_month'] or '—'}", highlight=False)
    for name, seen in p.coverage.items():
        out.print(f"coverage {name}: {seen['alerts']} alerts, last seen {seen['last_seen'] or 'never'}",
                  highlight=False)


def posture(
    system: Annotated[list[str] | None, typer.Option("--system", help="only this system (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    profile: Annotated[str | None, typer.Option(help="profile name or file (default: response.profile)")] = None,
    record: Annotated[bool, typer.Option(help="also store today's score of every system (the trend)")] = False,
    html: Annotated[Path | None, typer.Option(help="write each system's posture report (HTML) to this folder")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Security-level posture of each system: checks with reasons, alerts, incidents, response times, score."""
    from soc.posture import PostureEvaluator, load_profile, render_report

    with opened_store(config, store) as (settings, alert_store):
        evaluator = PostureEvaluator(settings, alert_store, load_profile(profile) if profile else None)
        if record:
            evaluator.record_scores()
        postures = evaluator.evaluate(system or None)
    if html is not None:
        html.mkdir(parents=True, exist_ok=True)
        for p in postures:
            (html / f"posture-{p.system}.html").write_text(render_report(p), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps([p.to_dict() for p in postures], indent=2, ensure_ascii=False) + "\n")
        return
    for p in postures:
        _print_posture(p)


def register(app: typer.Typer) -> None:
    """Add `soc serve`, `soc posture` and `soc users` to an app."""
    from soc.cli.users import users_app

    app.command("serve")(serve)
    app.command("posture")(posture)
    app.add_typer(users_app, name="users")
