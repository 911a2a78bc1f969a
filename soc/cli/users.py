"""`soc users add|list`: console accounts (argon2 password hashes, roles, the systems an owner sees)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from soc.cli.common import ConfigOption, StoreOption, opened_store, out
from soc.web.users import Role, Users  # typer reads the choices of --role as it builds the group

users_app = typer.Typer(help="Console users: add and list (passwords are stored as argon2 hashes).",
                        no_args_is_help=True)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="the login name")],
    role: Annotated[Role, typer.Option(help="what the user may do")],
    systems: Annotated[str | None, typer.Option(help="owners: the systems they own, comma-separated")] = None,
    language: Annotated[str, typer.Option(help="vi or en")] = "vi",
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    replace: Annotated[bool, typer.Option(help="replace an existing user (new password, role, systems)")] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Add a console user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    from soc.audit import AuditLog

    with opened_store(config, store) as (settings, alert_store):
        user = Users(alert_store, [s.name for s in settings.inventory]).add(
            name, role, password, [s.strip() for s in (systems or "").split(",") if s.strip()], language,
            replace=replace)
        AuditLog(alert_store).append(os.environ.get("SOC_USER", "admin (cli)"), "user.added", f"user:{user.name}",
                                     {"role": user.role.value, "systems": user.systems})
    out.print(f"user {user.name} ({user.role.value}) added", highlight=False)


@users_app.command("list")
def users_list(config: ConfigOption = None, store: StoreOption = None) -> None:
    """The console users."""
    from rich.table import Table

    with opened_store(config, store) as (_, alert_store):
        users = Users(alert_store).all()
    table = Table("name", "role", "systems", "language")
    for user in users:
        table.add_row(user.name, user.role.value, ", ".join(user.systems), user.language)
    out.print(table)
