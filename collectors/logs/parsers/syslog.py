"""Syslog lines (RFC 5424, RFC 3164, and the file form without ``<PRI>``) and the program handlers behind them.

The header becomes ``log.syslog.*``, ``host.name``, ``process.name``/``pid``; then a handler registered for the
program (``sshd``, ``sudo``, ``kernel``, ``named``, ...) adds its fields and its Sigma log source. A program without
a handler stays a plain ``linux/syslog`` event.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from collectors.logs.base import ParseError
from collectors.logs.parsers.base import (
    MEMO_SIZE,
    MONTHS,
    IsoParser,
    LineParser,
    iso,
    register,
    syslog_year,
    tz_offset,
    with_fraction,
)
from soc.core.model import Event

_ISO = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_BSD = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?"
# <PRI>? STAMP HOST TAG[PID]: MSG   (the tag may be cut short of its colon by some senders)
_RFC3164 = re.compile(rf"(?:<(\d{{1,3}})>)?({_BSD}|{_ISO}) (?:(\S+) )?([^\s\[\]:]+)(?:\[([^\]]*)\])?: ?(.*)", re.S)
_BSD_REST = re.compile(r"(?:(\S+) )?([^\s\[\]:]+)(?:\[([^\]]*)\])?: ?(.*)", re.S)  # _RFC3164 after the stamp
_RFC5424 = re.compile(r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?", re.S)
_SD_ELEMENT = re.compile(r"\[([^\s\]]+)((?:\s+[^=\s\]]+=\"(?:[^\"\\]|\\.)*\")*)\s*\]")
_SD_PARAM = re.compile(r"([^=\s\]]+)=\"((?:[^\"\\]|\\.)*)\"")
_SD_UNESCAPE = re.compile(r"\\([\"\\\]])")


def _bsd_time(text: str, year: int | None, tz: timedelta) -> str:
    """``Nov 25 07:43:26`` (whole seconds; the caller adds any fraction)."""
    month = MONTHS.get(text[:3])
    if month is None:
        raise ParseError("bad_timestamp", f"bad month in {text!r}")
    h, m, s = text[7:].split(":")
    try:
        dt = datetime(year or syslog_year(month), month, int(text[4:6]), int(h), int(m), int(s), tzinfo=UTC)
    except ValueError as exc:
        raise ParseError("bad_timestamp", f"bad timestamp {text!r}: {exc}") from None
    return iso(dt - tz)


def structured_data(text: str) -> dict[str, dict[str, str]]:
    """RFC 5424 structured data ``[id k="v"...]...`` to ``{id: {k: v}}`` (escapes undone)."""
    out: dict[str, dict[str, str]] = {}
    if text == "-":
        return out
    for element in _SD_ELEMENT.finditer(text):
        out[element.group(1)] = {k: _SD_UNESCAPE.sub(r"\1", v) for k, v in _SD_PARAM.findall(element.group(2))}
    return out



def _syslog_event(timestamp: str, message: str, syslog: dict[str, Any]) -> Event:
    """The ECS skeleton both syslog formats fill (a literal: it is built once per line)."""
    return {
        "@timestamp": timestamp,
        "message": message,
        "event": {"kind": "event", "module": "system", "dataset": "system.syslog"},
        "soc": {"logsource": {"product": "linux", "category": None, "service": "syslog"}},
        "log": {"syslog": syslog},
    }

class ProgramHandler(ABC):
    """Fields for the messages of one program family; ``programs`` are the syslog tags it is called for."""

    programs: ClassVar[tuple[str, ...]]

    @abstractmethod
    def handle(self, event: Event, message: str) -> None:
        """Add fields to ``event`` (set its ``soc.logsource`` when the program has its own)."""


HANDLERS: dict[str, ProgramHandler] = {}


def register_handler(cls: type[ProgramHandler]) -> type[ProgramHandler]:
    handler = cls()
    for program in cls.programs:
        if program in HANDLERS:
            raise ValueError(f"syslog program {program!r} has two handlers")
        HANDLERS[program] = handler
    return cls


@register
class SyslogParser(LineParser):
    """Any syslog line: RFC 5424, RFC 3164, or a syslog file line (``Nov 25 07:43:26 host sshd[42]: ...``).

    Options: ``year`` for RFC 3164 stamps (default: this year), ``timezone`` (``+01:00``) the sender's clock
    when the stamp carries none (default UTC).
    """

    name = "syslog"
    description = "syslog (RFC 5424/3164, /var/log files): auth, sudo, su, useradd, kernel netfilter, named"
    sniff_priority = 80

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        year, tz = options.get("year"), tz_offset(options.get("timezone") or "Z")
        self._year, self._tz = year, tz
        self._bsd_memo: dict[str, str] = {}  # whole-second BSD stamps (``Nov 25 07:43:26``), each checked by _RFC3164
        self._iso = IsoParser().__call__  # the bound method: a cheaper call

    def sniff(self, line: str) -> bool:
        return (_RFC5424.match(line) or _RFC3164.match(line)) is not None

    def _bsd(self, text: str) -> str:
        memo = self._bsd_memo
        hit = memo.get(text)
        if hit is None:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            hit = memo[text] = _bsd_time(text, self._year, self._tz)
        return hit

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        # fast path, the /var/log form: a BSD stamp seen before (so checked), a space, then host, tag, message
        timestamp = self._bsd_memo.get(line[:15])
        if timestamp is None or line[15:16] != " " or (match := _BSD_REST.match(line, 16)) is None:
            return self._parse(line)
        host, app, procid, message = match.groups()
        process: dict[str, Any] = {"name": app}
        if procid:
            syslog: dict[str, Any] = {"hostname": host, "appname": app, "procid": procid} if host else {
                "appname": app, "procid": procid}  # fmt: skip
            if procid.isdigit():
                process["pid"] = int(procid)
        else:
            syslog = {"hostname": host, "appname": app} if host else {"appname": app}
        event = _syslog_event(timestamp, message, syslog)
        if host:
            event["host"] = {"name": host}
        event["process"] = process
        handler = HANDLERS.get(app)
        if handler is not None:
            handler.handle(event, message)
        return event

    def _parse(self, line: str) -> Event:
        match = _RFC5424.match(line) if line[:1] == "<" else None
        if match is not None:
            pri_text, stamp, host, app, procid, msgid, sd, message = match.groups()
            message = (message or "").removeprefix("\ufeff")
            timestamp = self._iso(stamp) if stamp != "-" else iso(datetime.now(tz=UTC))
            syslog: dict[str, Any] = {"version": "1"}
            if msgid != "-":
                syslog["msgid"] = msgid
            if sd != "-":
                syslog["structured_data"] = structured_data(sd)
            host, app, procid = (None if v == "-" else v for v in (host, app, procid))
        else:
            match = _RFC3164.match(line)
            if match is None:
                raise ParseError("no_match", "not a syslog line")
            pri_text, stamp, host, app, procid, message = match.groups()
            bsd = stamp[0].isalpha()
            timestamp = with_fraction(self._bsd(stamp[:15]), stamp[16:]) if bsd else self._iso(stamp)
            syslog = {}
        if pri_text is not None:
            pri = int(pri_text)
            if pri > 191:
                raise ParseError("bad_priority", f"priority {pri} out of range")
            syslog.update(priority=pri, facility={"code": pri >> 3}, severity={"code": pri & 7})
        event = _syslog_event(timestamp, message, syslog)
        if host:
            syslog["hostname"] = host
            event["host"] = {"name": host}
        if app:
            syslog["appname"] = app
            process: dict[str, Any] = {"name": app}
            if procid:
                syslog["procid"] = procid
                if procid.isdigit():
                    process["pid"] = int(procid)
            event["process"] = process
            handler = HANDLERS.get(app)
            if handler is not None:
                handler.handle(event, message)
        elif procid:
            syslog["procid"] = procid
        return event
