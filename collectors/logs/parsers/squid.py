"""Squid native access log, Sigma category ``proxy``.

``1764056606.123    145 10.0.0.5 TCP_MISS/200 4310 GET http://example.com/a - HIER_DIRECT/93.184.216.34 text/html``
"""

from __future__ import annotations

import re
from typing import Any

from collectors.logs.base import ParseError, logsource
from collectors.logs.parsers.base import EpochParser, LineParser, base_event, endpoint, register
from soc.model import Event

PROXY = logsource("squid", "proxy", None)
_LINE = re.compile(
    r"(\d+\.\d+)\s+(-?\d+) (\S+) ([A-Z_]+)/(\d{3}) (\d+) (\S+) (\S+) (\S+) ([A-Z_]+)/(\S+) (\S+)(?: (.*))?"
)


@register
class SquidParser(LineParser):
    name = "squid"
    description = "Squid native access.log"
    sniff_priority = 25

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._time = EpochParser()

    def sniff(self, line: str) -> bool:
        return _LINE.match(line) is not None

    def parse(self, line: str) -> Event:
        line = line.rstrip("\r\n")
        match = _LINE.match(line)
        if match is None:
            raise ParseError("no_match", "not a squid access log line")
        stamp, elapsed, client, result, status, size, method, url, user, hierarchy, peer, mime, _extra = match.groups()
        event = base_event(self._time(stamp), "squid.access", PROXY, line)
        code = int(status)
        event["event"].update(
            category=["network", "web"],
            type=["access", "denied" if "DENIED" in result else "allowed"],
            action=result,
            outcome="failure" if code >= 400 or "DENIED" in result else "success",
            duration=int(elapsed) * 1_000_000,
        )
        event["source"] = endpoint(client)
        http: dict[str, Any] = {"request": {"method": method}, "response": {"bytes": int(size)}}
        if code:
            http["response"]["status_code"] = code
        if mime != "-":
            http["response"]["mime_type"] = mime
        event["http"] = http
        url_doc: dict[str, Any] = {"original": url}
        if method == "CONNECT":
            domain, _, port = url.rpartition(":")
            if port.isdigit():
                url_doc.update(domain=domain, port=int(port))
            else:
                url_doc["domain"] = url
        elif "://" in url:
            scheme, _, rest = url.partition("://")
            host, _, path = rest.partition("/")
            url_doc.update(scheme=scheme, domain=host.rsplit("@", 1)[-1].split(":")[0], path="/" + path.split("?")[0])
        event["url"] = url_doc
        if user != "-":
            event["user"] = {"name": user}
        if peer != "-":
            event["destination"] = endpoint(peer)
        event["squid"] = {"hierarchy_code": hierarchy, "result_code": result}
        return event
