"""A command group whose subcommands are imported only when one of them runs.

Typer builds every command of an app, and so imports every type its options name, before it runs any of them.
`soc alerts list` would pay for the web console, pySigma and the detectors. Here each subcommand is named by
``module:attribute`` with its one-line help: `soc --help` lists them from that table, and running one imports
its module alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # typer vendors click from 0.16 on: its own classes, not the click package's
    from typer._click.core import Command, Context
    from typer._click.formatting import HelpFormatter


@dataclass(frozen=True)
class Lazy:
    """A subcommand of another module: a Typer app (a group) or a command function, and its one-line help."""

    target: str  # "package.module:attribute"
    help: str  # what `soc --help` lists; tests/test_cli_areas.py checks it is the command's own

    def load(self, name: str) -> Command:
        module, _, attribute = self.target.partition(":")
        value: Any = getattr(importlib.import_module(module), attribute)
        holder = typer.Typer()  # built as `add_typer`/`command` on the main app would build it
        if isinstance(value, typer.Typer):
            holder.add_typer(value, name=name)
        else:
            holder.command(name)(value)
        return typer.main.get_group(holder).commands[name]


class LazyGroup(TyperGroup):
    """A Typer group with subcommands in ``lazy`` too; list order is ``order`` (eager and lazy names)."""

    lazy: ClassVar[dict[str, Lazy]] = {}
    order: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        names = [*self.commands, *(n for n in self.lazy if n not in self.commands)]
        rank = {name: i for i, name in enumerate(self.order)}
        return sorted(names, key=lambda n: rank.get(n, len(rank)))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            entry = self.lazy[cmd_name]
            if self._listing:  # the help of the group only shows the name and the line of help
                return TyperCommand(cmd_name, help=entry.help)
            self.commands[cmd_name] = entry.load(cmd_name)
        return self.commands.get(cmd_name)

    @contextmanager
    def _list_only(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        with self._list_only():
            super().format_help(ctx, formatter)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        name = args[0] if args else ""
        known = self.list_commands(ctx)
        if name and name not in known and not name.startswith("-") and not ctx.resilient_parsing:
            matches = get_close_matches(name, known)  # typer would suggest only among the commands loaded
            if matches:
                ctx.fail(f"No such command {name!r}. Did you mean {', '.join(repr(m) for m in matches)}?")
        return super().resolve_command(ctx, args)


def lazy_group(order: tuple[str, ...], lazy: dict[str, Lazy]) -> type[LazyGroup]:
    """A LazyGroup class for one app (Typer takes a class, not an instance)."""
    return type("SocGroup", (LazyGroup,), {"lazy": lazy, "order": order})
