"""How an event's field is read (nested ``a.b.c``, a flat dotted key as fallback), how a value reads as text, and
the text keyword (field-less) searches look in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soc.core.model import Event

Getter = Callable[[Event], Any]


def field_getter(dotted: str) -> Getter:
    """``a.b.c`` on a nested event (``None`` when missing); a flat dotted key is found as a fallback."""
    parts = tuple(dotted.split("."))
    if len(parts) == 1:
        return lambda ev: ev.get(dotted)
    if len(parts) == 2:
        first, second = parts

        def get2(ev: Event) -> Any:
            node = ev.get(first)
            if type(node) is dict:
                value = node.get(second)
                if value is not None:
                    return value
            return ev.get(dotted)

        return get2
    if len(parts) == 3:
        p0, p1, p2 = parts

        def get3(ev: Event) -> Any:
            node = ev.get(p0)
            if type(node) is dict:
                node = node.get(p1)
                if type(node) is dict:
                    return node.get(p2)
            return ev.get(dotted)

        return get3

    def get(ev: Event) -> Any:
        node: Any = ev
        for part in parts:
            if type(node) is not dict:
                return ev.get(dotted)
            node = node.get(part)
            if node is None:
                return ev.get(dotted)
        return node

    return get


def as_text(value: Any) -> str:
    """The text a string pattern is compared with."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


KEYWORD_SCOPE = ("message", "event.original", "winlog.event_data")


def event_strings(event: Event) -> list[str]:
    """What keywords search: the scalars under ``message``, ``event.original`` and ``winlog.event_data`` (the
    text of a log line or the data of a Windows event), as text."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if type(node) is str:
            out.append(node)
        elif type(node) is dict:
            strings = [v for v in node.values() if type(v) is str]
            if len(strings) == len(node):  # the usual flat block of strings (Windows event data)
                out.extend(strings)
                return
            for value in node.values():
                walk(value)
        elif type(node) is list:
            for value in node:
                walk(value)
        elif node is not None:
            out.append(as_text(node))

    for getter in _KEYWORD_GETTERS:
        value = getter(event)
        if value is not None:
            walk(value)
    return out


_last_text: list[Any] = [None, ""]  # one-slot cache: several keyword rules usually test the same event in a row


def reset_event_cache() -> None:
    """Forget the cached event text (a caller that reuses one dict for several events calls this between)."""
    _last_text[0] = None


def event_text(event: Event) -> str:
    """All strings of the event, lower-cased, one per line: a substring without a newline found here lies
    inside one value."""
    if _last_text[0] is not event:
        _last_text[0], _last_text[1] = event, "\n".join(event_strings(event)).lower()
    return str(_last_text[1])


_KEYWORD_GETTERS = [field_getter(name) for name in KEYWORD_SCOPE]
