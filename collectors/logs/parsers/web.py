"""Web server logs, Sigma category ``webserver``: nginx and Apache access (combined/common) and error logs, and
IIS W3C extended logs (header-driven).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from collectors.logs.base import ParseError, SkipLine, logsource
from collectors.logs.parsers.base import (
    ENDPOINTS,
    MEMO_SIZE,
    MONTHS,
    IsoParser,
    LineParser,
    base_event,
    cached,
    endpoint,
    iso,
    register,
    tz_offset,
    with_fraction,
)
from soc.core.model import Event, set_field

# host ident user [time] "request" status bytes ["referrer" "agent"] [anything nginx/apache appends]
_ACCESS = re.compile(r'(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}|-) (\d+|-)(?: "([^"]*)" "([^"]*)")?')
# the slow twin for quotes inside fields: escaped (Apache: \") or raw (Tomcat), matched lazily up to '" <status> '
_ACCESS_QUOTES = re.compile(
    r'(\S+) (\S+) (\S+) \[([^\]]+)\] "(.*?)" (\d{3}|-) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?'
)


def _clf_time(text: str) -> str:
    """``25/Nov/2026:07:43:26 +0100`` (common log format)."""
    try:
        day, month, rest = text.split("/", 2)
        year, h, m, s_zone = rest.split(":", 3)
        s, _, zone = s_zone.partition(" ")
        dt = datetime(int(year), MONTHS[month], int(day), int(h), int(m), int(s), tzinfo=UTC)
        return iso(dt - tz_offset(zone))
    except (ValueError, KeyError, IndexError):
        raise ParseError("bad_timestamp", f"bad timestamp {text!r}") from None


def _request_parts(request: str) -> tuple[str | None, dict[str, Any] | None, str | None]:
    """What :func:`http_request_fields` writes for ``request``: the method, ``url.*`` and ``http.version`` (None:
    not written)."""
    parts = request.split(" ")
    if len(parts) >= 2 and parts[0].isalpha() and parts[0].isupper():
        target = " ".join(parts[1:-1]) if len(parts) > 2 and parts[-1].startswith("HTTP/") else " ".join(parts[1:])
        url: dict[str, Any] = {"original": target}
        path, sep, query = target.partition("?")
        url["path"] = path
        if sep:
            url["query"] = query
        name = path.rpartition("/")[2]
        if "." in name:
            url["extension"] = name.rpartition(".")[2].lower()
        return parts[0], url, parts[-1][5:] if parts[-1].startswith("HTTP/") else None
    return None, None, None


# :func:`_request_parts`, memoized (logs repeat their requests). The ``url`` dict it returns is shared: copy it.
request_parts = cached(_request_parts)


def http_request_fields(event: Event, request: str) -> None:
    """``GET /a?b HTTP/1.1`` into ``http.request.method``, ``url.*``, ``http.version``; junk requests (a TLS
    hello sent to a plain port) are kept in ``http.request.body``-free form: only ``url.original`` is absent."""
    http: dict[str, Any] = event.setdefault("http", {})
    method, url, version = request_parts(request)
    if method is not None:
        http["request"] = {"method": method}
        event["url"] = url.copy()  # type: ignore[union-attr]
        if version is not None:
            http["version"] = version



def local_time_reader(timezone: str) -> Callable[[str], str]:
    """Error logs write local time without a zone: ``2026-11-25 07:43:26`` read in ``timezone`` (memoized)."""
    offset = tz_offset(timezone)

    def to_utc(text: str) -> str:
        return iso(datetime.fromisoformat(text).replace(tzinfo=UTC) - offset)

    return cached(to_utc)

class AccessLogParser(LineParser):
    """NCSA combined/common access log, as nginx and Apache (and Tomcat) write by default."""

    name = "web-access"
    description = "web server access log (combined or common format), server unknown"
    product: ClassVar[str | None] = None
    module: ClassVar[str] = "http"
    sniff_priority = 40

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._stamps: dict[str, str] = {}  # memo of _clf_time
        self._logsource = logsource(self.product, "webserver", None)
        self._dataset = f"{self.module}.access"

    def sniff(self, line: str) -> bool:
        return _ACCESS_QUOTES.match(line) is not None

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        match = _ACCESS.match(line)
        if match is None or ((end := match.end()) < len(line) and line[end] != " "):  # a quote inside a field
            match = _ACCESS_QUOTES.match(line)
        if match is None:
            raise ParseError("no_match", "not a combined/common access log line")
        client, _ident, user, stamp, request, status, size, referrer, agent = match.groups()
        # literals and memos instead of helper calls: this is the hottest parser, so every call saved shows
        stamps = self._stamps
        timestamp = stamps.get(stamp)
        if timestamp is None:
            if len(stamps) >= MEMO_SIZE:
                stamps.clear()
            timestamp = stamps[stamp] = _clf_time(stamp)
        source = ENDPOINTS.get(client)
        response: dict[str, Any] = {}
        http: dict[str, Any] = {"response": response}
        ev = {"kind": "event", "module": self.module, "dataset": self._dataset, "category": ["web"], "type": ["access"]}
        event: Event = {
            "@timestamp": timestamp,
            "message": line,
            "event": ev,
            "soc": {"logsource": dict(self._logsource)},  # own copy: later stages may edit it
            "source": endpoint(client) if source is None else source.copy(),
            "http": http,
        }
        if status != "-":
            code = int(status)
            response["status_code"] = code
            ev["outcome"] = "success" if code < 400 else "failure"
        if size != "-":
            response["body"] = {"bytes": int(size)}
        if user != "-":
            event["user"] = {"name": user}
        if "\\" in request:
            request = request.replace('\\"', '"')
        http_request_fields(event, request)
        if referrer is not None and referrer != "-":
            if (fields := http.get("request")) is None:
                fields = http["request"] = {}
            fields["referrer"] = referrer.replace('\\"', '"') if "\\" in referrer else referrer
        if agent is not None and agent != "-":
            event["user_agent"] = {"original": agent.replace('\\"', '"') if "\\" in agent else agent}
        return event


register(AccessLogParser)


@register
class NginxAccessParser(AccessLogParser):
    name = "nginx-access"
    description = "nginx access log (combined)"
    product = "nginx"
    module = "nginx"
    sniff_priority = 41  # indistinguishable from web-access by content: only chosen by name


@register
class ApacheAccessParser(AccessLogParser):
    name = "apache-access"
    description = "Apache httpd access log (combined or common)"
    product = "apache"
    module = "apache"
    sniff_priority = 42


_NGINX_ERROR = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)", re.S)
_NGINX_CONTEXT = re.compile(r', (client|server|request|upstream|host|referrer): "?((?:[^"\\]|\\.)*?)"?(?=, \w+: |$)')


@register
class NginxErrorParser(LineParser):
    """``2026/11/25 07:43:26 [error] 812#812: *5 open() "/x" failed (2: ...), client: 10.0.0.5, request: "GET /x"``.
    nginx writes local time without a zone: option ``timezone`` (default UTC)."""

    name = "nginx-error"
    description = "nginx error log"
    sniff_priority = 35

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._time = local_time_reader(options.get("timezone") or "Z")
        self._logsource = logsource("nginx", "webserver", None)

    def sniff(self, line: str) -> bool:
        return _NGINX_ERROR.match(line) is not None

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        match = _NGINX_ERROR.match(line)
        if match is None:
            raise ParseError("no_match", "not an nginx error log line")
        y, mo, d, h, mi, s, level, pid, tid, connection, message = match.groups()
        stamp = self._time(f"{y}-{mo}-{d}T{h}:{mi}:{s}")
        event = base_event(stamp, "nginx.error", self._logsource, message)
        event["event"].update(category=["web"], type=["error"])
        event["log"] = {"level": level}
        event["process"] = {"pid": int(pid), "thread": {"id": int(tid)}}
        if connection:
            event["nginx"] = {"error": {"connection_id": int(connection)}}
        context = dict(_NGINX_CONTEXT.findall(message))
        if "client" in context:
            event["source"] = endpoint(context["client"])
        if "request" in context:
            http_request_fields(event, context["request"])
        if "host" in context:
            event.setdefault("url", {})["domain"] = context["host"]
        if "server" in context:
            event["server"] = {"domain": context["server"]}
        return event


_APACHE_ERROR = re.compile(
    r"\[(\w{3}) (\w{3}) (\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? (\d{4})\] \[(?:(\w+):)?(\w+)\]"
    r"(?: \[pid (\d+)(?::tid (\d+))?\])?(?: \[client ([^\]]+)\])? ?(.*)",
    re.S,
)


@register
class ApacheErrorParser(LineParser):
    """``[Wed Nov 25 07:43:26.123456 2026] [core:error] [pid 812:tid 9] [client 10.0.0.5:51234] AH00126: ...``.
    Apache writes local time without a zone: option ``timezone`` (default UTC)."""

    name = "apache-error"
    description = "Apache httpd error log (2.2 and 2.4)"
    sniff_priority = 35

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._time = local_time_reader(options.get("timezone") or "Z")
        self._logsource = logsource("apache", "webserver", None)

    def sniff(self, line: str) -> bool:
        return _APACHE_ERROR.match(line) is not None

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        match = _APACHE_ERROR.match(line)
        if match is None:
            raise ParseError("no_match", "not an Apache error log line")
        _dow, month, day, h, mi, s, frac, year, module, level, pid, tid, client, message = match.groups()
        if month not in MONTHS:
            raise ParseError("bad_timestamp", f"bad month {month!r}")
        stamp = with_fraction(self._time(f"{year}-{MONTHS[month]:02d}-{day}T{h}:{mi}:{s}"), frac)
        event = base_event(stamp, "apache.error", self._logsource, message)
        event["event"].update(category=["web"], type=["error"])
        event["log"] = {"level": level}
        if module:
            event["apache"] = {"error": {"module": module}}
        if pid:
            event["process"] = {"pid": int(pid)}
            if tid:
                event["process"]["thread"] = {"id": int(tid)}
        if client:
            ip, _, port = client.rpartition(":") if client.count(":") == 1 or "]" in client else (client, "", "")
            event["source"] = endpoint(ip.strip("[]"), port)
        if message[:2] == "AH" and message[2:7].isdigit():
            event["error"] = {"code": message[:7]}
        return event


# IIS W3C field names to ECS, for the fields Sigma's webserver rules use
_W3C: dict[str, str] = {
    "s-ip": "destination.ip",
    "s-port": "destination.port",
    "cs-method": "http.request.method",
    "cs-uri-stem": "url.path",
    "cs-uri-query": "url.query",
    "cs-username": "user.name",
    "c-ip": "source.ip",
    "cs(User-Agent)": "user_agent.original",
    "cs(Referer)": "http.request.referrer",
    "cs-host": "url.domain",
    "sc-status": "http.response.status_code",
    "sc-bytes": "http.response.bytes",
    "cs-bytes": "http.request.bytes",
    "s-sitename": "iis.access.site_name",
    "s-computername": "host.name",
    "sc-substatus": "iis.access.sub_status",
    "sc-win32-status": "iis.access.win32_status",
}
_W3C_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ [A-Z]+ /")
_W3C_INT = {"destination.port", "http.response.status_code", "http.response.bytes", "http.request.bytes"}


@register
class IisParser(LineParser):
    """IIS W3C extended log: ``#Fields:`` directives name the columns of the lines that follow (state kept per
    parser, so one parser per file). Times are UTC, as IIS writes them."""

    name = "iis"
    description = "IIS W3C extended log (#Fields header)"
    sniff_priority = 30
    DEFAULT_FIELDS: ClassVar[tuple[str, ...]] = (
        *("date", "time", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port", "cs-username", "c-ip"),
        *("cs(User-Agent)", "cs(Referer)", "sc-status", "sc-substatus", "sc-win32-status", "time-taken"),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.fields: tuple[str, ...] = self.DEFAULT_FIELDS
        self._time = IsoParser().__call__  # W3C dates are UTC (the bound method: a cheaper call)
        self._logsource = logsource("windows", "webserver", "iis")

    def sniff(self, line: str) -> bool:
        return (
            line.startswith(("#Software: ", "#Version: ", "#Date: ", "#Fields: ")) or _W3C_LINE.match(line) is not None
        )

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                self.fields = tuple(line[8:].split())
            raise SkipLine("w3c_directive")
        values = line.split(" ")
        if len(values) != len(self.fields):
            raise ParseError("field_count", f"{len(values)} values for {len(self.fields)} fields")
        record = dict(zip(self.fields, values, strict=True))
        try:
            stamp = self._time(f"{record['date']} {record['time']}")
        except KeyError:
            raise ParseError("bad_timestamp", "no date or time field") from None
        event = base_event(stamp, "iis.access", self._logsource, line)
        event["event"].update(category=["web"], type=["access"])
        for name, value in record.items():
            dotted = _W3C.get(name)
            if dotted is None or value == "-":
                continue
            if dotted == "user_agent.original":
                value = value.replace("+", " ")
            set_field(event, dotted, int(value) if dotted in _W3C_INT and value.isdigit() else value)
        if (taken := record.get("time-taken", "-")).isdigit():
            event["event"]["duration"] = int(taken) * 1_000_000  # milliseconds to ECS nanoseconds
        url = event.get("url")
        if url is not None and "path" in url:
            url["original"] = url["path"] + (f"?{url['query']}" if "query" in url else "")
        if "source" in event:
            event["source"] = endpoint(event["source"]["ip"])
        status = event.get("http", {}).get("response", {}).get("status_code")
        if isinstance(status, int):
            event["event"]["outcome"] = "success" if status < 400 else "failure"
        return event
