"""BIND ``named`` query logs: the ``querylog`` channel file and the same lines sent through syslog. Category dns.

``25-Nov-2026 07:43:26.123 queries: info: client @0x7f3a 10.0.0.5#53422 (example.com):
query: example.com IN A +E(0)K (10.0.0.1)`` (one line)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from collectors.logs.base import ParseError, logsource
from collectors.logs.parsers.base import MEMO_SIZE, MONTHS, LineParser, cached, iso, register, with_fraction
from collectors.logs.parsers.syslog import ProgramHandler, register_handler
from soc.core.model import Event

DNS = logsource(None, "dns", None)
_QUERY = re.compile(
    r"(?:.*?)client (?:@\S+ )?([0-9a-fA-F.:]+)#(\d+)(?: \([^)]*\))?: (?:view \S+: )?query: (\S+) (\S+) (\S+) (\S*)"
    r"(?: \(([0-9a-fA-F.:]+)\))?"
)
_FILE = re.compile(r"(\d\d)-([A-Z][a-z]{2})-(\d{4}) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (.*)", re.S)


def query_fields(event: Event, message: str) -> bool:
    match = _QUERY.match(message)
    if match is None:
        return False
    client, port, name, klass, qtype, flags, server = match.groups()
    event["soc"]["logsource"] = dict(DNS)
    event["event"].update(module="bind", dataset="bind.query", category=["network"], type=["protocol"])
    event["source"] = {"ip": client, "address": client, "port": int(port)}
    if server:
        event["destination"] = {"ip": server, "address": server}
    dns: dict[str, Any] = {"type": "query", "question": {"name": name, "class": klass, "type": qtype}}
    if flags:
        dns["header_flags"] = flags
        event["bind"] = {"query": {"flags": flags, "recursion_desired": flags.startswith("+")}}
    event["dns"] = dns
    event["network"] = {"protocol": "dns", "transport": "tcp" if "T" in flags else "udp"}
    return True


def _query_event(timestamp: str, body: str) -> Event:
    """``base_event(timestamp, "bind.query", DNS, body)`` with :func:`query_fields`, in one literal."""
    match = _QUERY.match(body)
    if match is None:
        raise ParseError("not_query", "BIND line that is not a query record")
    client, port, name, klass, qtype, flags, server = match.groups()
    event: Event = {
        "@timestamp": timestamp,
        "message": body,
        "event": {"kind": "event", "module": "bind", "dataset": "bind.query", "category": ["network"],
                  "type": ["protocol"]},
        "soc": {"logsource": {"product": None, "category": "dns", "service": None}},
        "source": {"ip": client, "address": client, "port": int(port)},
    }  # fmt: skip
    if server:
        event["destination"] = {"ip": server, "address": server}
    question = {"name": name, "class": klass, "type": qtype}
    if flags:
        event["bind"] = {"query": {"flags": flags, "recursion_desired": flags[0] == "+"}}
        event["dns"] = {"type": "query", "question": question, "header_flags": flags}
        event["network"] = {"protocol": "dns", "transport": "tcp" if "T" in flags else "udp"}
    else:
        event["dns"] = {"type": "query", "question": question}
        event["network"] = {"protocol": "dns", "transport": "udp"}
    return event


@register_handler
class NamedHandler(ProgramHandler):
    programs = ("named",)

    def handle(self, event: Event, message: str) -> None:
        query_fields(event, message)


def _file_time(joined: str) -> str:
    """``day|month|year|h|m|s`` (the parts of a file-log stamp) to our form."""
    day, month, year, h, m, s = joined.split("|")
    return iso(datetime(int(year), MONTHS[month], int(day), int(h), int(m), int(s), tzinfo=UTC))


@register
class BindQueryParser(LineParser):
    """BIND's own query log file (``channel querylog { file ...; print-time yes; }``). Times are taken as UTC."""

    name = "bind"
    description = "BIND named query log"
    sniff_priority = 25

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._time = cached(_file_time)
        self._seconds: dict[str, str] = {}  # ``25-Nov-2026 07:43:26`` (checked by _FILE) to our form

    def sniff(self, line: str) -> bool:
        match = _FILE.match(line)
        return match is not None and _QUERY.match(match.group(8)) is not None

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        # fast path: a whole second seen before (so checked), then a fraction or not, a space and the record
        seconds = self._seconds.get(line[:20])
        if seconds is not None:
            after = line[20:21]
            if after == " ":
                return _query_event(seconds, line[21:])
            if after == "." and (space := line.find(" ", 21)) > 21 and (fraction := line[21:space]).isdecimal():
                return _query_event(with_fraction(seconds, fraction), line[space + 1 :])
        match = _FILE.match(line)
        if match is None:
            raise ParseError("no_match", "not a BIND log line")
        *stamp, body = match.groups()
        if stamp[1] not in MONTHS:
            raise ParseError("bad_timestamp", f"bad month {stamp[1]!r}")
        fraction = stamp.pop()
        seconds = self._time("|".join(stamp))
        if len(self._seconds) >= MEMO_SIZE:
            self._seconds.clear()
        self._seconds[line[:20]] = seconds
        return _query_event(with_fraction(seconds, fraction), body)
