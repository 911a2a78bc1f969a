"""Squid native access log, Sigma category ``proxy``.

``1764056606.123    145 10.0.0.5 TCP_MISS/200 4310 GET http://example.com/a - HIER_DIRECT/93.184.216.34 text/html``
"""

from __future__ import annotations

import re
from typing import Any

from collectors.logs.base import ParseError, logsource
from collectors.logs.parsers.base import ENDPOINTS, EpochParser, LineParser, endpoint, register
from soc.core.model import Event

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
        code = int(status)
        denied = "DENIED" in result
        source = ENDPOINTS.get(client)
        response: dict[str, Any] = {"bytes": int(size), "status_code": code} if code else {"bytes": int(size)}
        if mime != "-":
            response["mime_type"] = mime
        event: Event = {
            "@timestamp": self._time(stamp),
            "message": line,
            "event": {
                "kind": "event",
                "module": "squid",
                "dataset": "squid.access",
                "category": ["network", "web"],
                "type": ["access", "denied" if denied else "allowed"],
                "action": result,
                "outcome": "failure" if code >= 400 or denied else "success",
                "duration": int(elapsed) * 1_000_000,
            },
            "soc": {"logsource": {"product": "squid", "category": "proxy", "service": None}},
            "source": endpoint(client) if source is None else source.copy(),
            "http": {"request": {"method": method}, "response": response},
        }
        if method == "CONNECT":
            domain, _, port = url.rpartition(":")
            url_doc: dict[str, Any] = (
                {"original": url, "domain": domain, "port": int(port)} if port.isdigit() else
                {"original": url, "domain": url}
            )  # fmt: skip
        elif "://" in url:
            scheme, _, rest = url.partition("://")
            host, _, path = rest.partition("/")
            if "@" in host or ":" in host:
                host = host.rsplit("@", 1)[-1].split(":")[0]
            url_doc = {"original": url, "scheme": scheme, "domain": host, "path": "/" + path.split("?")[0]}
        else:
            url_doc = {"original": url}
        event["url"] = url_doc
        if user != "-":
            event["user"] = {"name": user}
        if peer != "-":
            destination = ENDPOINTS.get(peer)
            event["destination"] = endpoint(peer) if destination is None else destination.copy()
        event["squid"] = {"hierarchy_code": hierarchy, "result_code": result}
        return event
