"""HTTP/1.x requests and responses to ECS ``http.*``/``url.*``/``user_agent.*`` events, one per transaction.

Only the first TCP segment of each message is read (request line or status line and the headers in it); a header
that starts in a later segment is not seen. Candidates are found by content, not port: a TCP payload that starts
with a method token or ``HTTP/`` on any port.

A request is held until its response arrives on the reverse direction of the same connection (pipelined requests
are answered in order), then one event carries both, like a web server's access-log line, so a Sigma rule can ask
for ``cs-method``, ``c-uri``, ``c-useragent``, ``cs-host`` and ``sc-status`` together. A request without an answer
within :attr:`HttpParser.patience_ns` of capture time (or at :meth:`flush`) is emitted without a status; a
response whose request was not seen becomes an event of its own. Events therefore come out in response order.

Log source: a request to an address in ``home_networks`` (RFC 1918 and ULA by default) is a ``webserver`` event,
as the server's access log would be; any other request (an inside client going out) is a ``proxy`` event, as the
proxy's log would be. Sigma fields (our pipeline ``soc_ecs``): ``cs-method`` http.request.method, ``c-uri``
url.original, ``c-uri-stem`` url.path, ``c-uri-query`` url.query, ``c-uri-extension`` url.extension,
``cs-host`` url.domain, ``c-useragent`` user_agent.original, ``cs-referrer`` http.request.referrer,
``cs-cookie`` http.request.cookie, ``cs-version`` http.version, ``sc-status`` http.response.status_code.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from typing import Any, ClassVar

import numpy as np

from collectors.protocols.base import BatchView, Malformed, Packet, ProtocolParser, register
from soc.core.model import Event

# first four bytes of a message, big-endian: the methods of RFC 9110 and WebDAV, and a response's "HTTP"
_TOKENS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"CONN", b"PATC", b"TRAC", b"PROP", b"MKCO",
           b"COPY", b"MOVE", b"LOCK", b"UNLO", b"SEAR", b"REPO", b"PURG", b"HTTP")
HEADS = np.array([int.from_bytes(t, "big") for t in _TOKENS], dtype=np.uint32)
METHODS = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "TRACE", "PROPFIND", "PROPPATCH",
           "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "PURGE"}
HOME_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
MAX_HEAD = 16 * 1024  # header bytes read; a longer head is cut (its first segment rarely is this long anyway)
MAX_PENDING = 65536  # requests waiting for a response, all connections


def _header_lines(payload: bytes) -> tuple[str, list[tuple[str, str]]]:
    head = payload[:MAX_HEAD]
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[:end]
    lines = head.decode("latin-1").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def _version(token: str) -> str:
    if not token.startswith("HTTP/") or token[5:] not in ("1.0", "1.1", "0.9"):
        raise Malformed("http.bad_version", f"version {token[:16]!r} is not HTTP/1.x")
    return token[5:]


def parse_request(payload: bytes) -> dict[str, Any]:
    """Request line and headers to ``http``, ``url`` and ``user_agent`` ECS objects (a dict of them).

    A request line longer than the segment (an overlong URI, as in WebDAV exploits) gives the method and the
    target so far, without ``http.version``, and ``soc.http.request_line_cut``."""
    first, headers = _header_lines(payload)
    parts = first.split(" ")
    cut = len(parts) == 2 and b"\r\n" not in payload[:MAX_HEAD]
    if not (len(parts) == 3 or cut) or parts[0] not in METHODS:
        raise Malformed("http.bad_request_line", f"request line {first[:80]!r}")
    method, target, version = parts[0], parts[1], (None if cut else _version(parts[2]))
    fields = dict(headers)  # a repeated header keeps its last value
    request: dict[str, Any] = {"method": method}
    for header, key in (("referer", "referrer"), ("content-type", "mime_type"), ("cookie", "cookie")):
        if header in fields:
            request[key] = fields[header]
    if "content-length" in fields and fields["content-length"].isdigit():
        request["body"] = {"bytes": int(fields["content-length"])}
    url: dict[str, Any] = {"original": target}
    rest = target
    host = fields.get("host", "")
    if "://" in target[:12]:  # absolute form (a proxy request): the authority is in the target
        scheme, _, rest = target.partition("://")
        url["scheme"] = scheme.lower()
        authority, slash, rest = rest.partition("/")
        host, rest = authority.rpartition("@")[2], slash + rest
    elif method == "CONNECT":  # authority form
        host, rest = target, ""
    path, sep, query = rest.partition("?")
    if path:
        url["path"] = path
        leaf = path.rsplit("/", 1)[-1]
        if "." in leaf:
            url["extension"] = leaf.rsplit(".", 1)[1].lower()
    if sep:
        url["query"] = query
    if host:
        name, port = _split_host(host)
        url["domain"] = name
        if port is not None:
            url["port"] = port
    result: dict[str, Any] = {"http": {"request": request}, "url": url}
    if version is not None:
        result["http"]["version"] = version
    else:
        result["soc"] = {"http": {"request_line_cut": True}}
    if "user-agent" in fields:
        result["user_agent"] = {"original": fields["user-agent"]}
    return result


def _split_host(host: str) -> tuple[str, int | None]:
    if host.startswith("["):  # [v6]:port
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return name.lower(), (int(port) if port.isdigit() and int(port) < 65536 else None)


def parse_response(payload: bytes) -> dict[str, Any]:
    """Status line and headers to the ``http.response`` object plus ``http.version``."""
    first, headers = _header_lines(payload)
    parts = first.split(" ", 2)
    version = _version(parts[0])
    if len(parts) < 2 or len(parts[1]) != 3 or not parts[1].isdigit():
        raise Malformed("http.bad_status_line", f"status line {first[:80]!r}")
    response: dict[str, Any] = {"status_code": int(parts[1])}
    fields = dict(headers)
    if "content-type" in fields:
        response["mime_type"] = fields["content-type"]
    if "content-length" in fields and fields["content-length"].isdigit():
        response["body"] = {"bytes": int(fields["content-length"])}
    return {"version": version, "response": response}


ConnKey = tuple[bytes, int, bytes, int]  # client ip, client port, server ip, server port


@register
class HttpParser(ProtocolParser):
    protocol: ClassVar[str] = "http"

    def __init__(self, home_networks: tuple[str, ...] = HOME_NETWORKS, patience_s: float = 30.0) -> None:
        super().__init__()
        self.home = [ipaddress.ip_network(n) for n in home_networks]
        self.patience_ns = int(patience_s * 1e9)
        self.pending: dict[ConnKey, deque[tuple[int, Event]]] = {}
        self.pending_count = 0

    def select(self, view: BatchView) -> np.ndarray:
        return view.tcp & (view.available >= 5) & np.isin(view.head_u32(), HEADS)

    def parse(self, packet: Packet) -> list[Event]:
        if packet.payload.startswith(b"HTTP/"):
            return self._response(packet)
        fields = parse_request(packet.payload)
        event = packet.event("http", "webserver" if self._is_home(packet.dst_ip) else "proxy")
        if "soc" in fields:
            self.notes["http.request_line_cut"] += 1
            event["soc"].update(fields.pop("soc"))
        event.update(fields)
        key = (packet.src_ip, packet.src_port, packet.dst_ip, packet.dst_port)
        self.pending.setdefault(key, deque()).append((packet.ts_ns, event))
        self.pending_count += 1
        if self.pending_count > MAX_PENDING:  # a flood of unanswered requests: emit them all, O(1) amortised
            self.notes["http.pending_overflow"] += 1
            return self.flush()
        return []

    def _response(self, packet: Packet) -> list[Event]:
        fields = parse_response(packet.payload)
        key = (packet.dst_ip, packet.dst_port, packet.src_ip, packet.src_port)
        waiting = self.pending.get(key)
        if waiting:
            _, event = waiting.popleft()
            self.pending_count -= 1
            if not waiting:
                del self.pending[key]
            event["http"]["response"] = fields["response"]
            event["soc"]["packet"]["response_frame"] = packet.frame
            return [event]
        self.notes["http.response_without_request"] += 1
        event = packet.event("http", "webserver" if self._is_home(packet.src_ip) else "proxy")
        # the response travels server -> client; ECS source/destination name the connection's client and server
        event["source"], event["destination"] = event["destination"], event["source"]
        event["http"] = fields
        return [event]

    def flush(self, now_ns: int | None = None) -> list[Event]:
        out: list[Event] = []
        for key in list(self.pending):
            waiting = self.pending[key]
            while waiting and (now_ns is None or now_ns - waiting[0][0] > self.patience_ns):
                out.append(waiting.popleft()[1])
            if not waiting:
                del self.pending[key]
        if out:
            self.pending_count -= len(out)
            self.notes["http.request_without_response"] += len(out)
        return out

    def _is_home(self, raw: bytes) -> bool:
        address = ipaddress.IPv6Address(raw)
        ip = address.ipv4_mapped or address
        return any(ip in net for net in self.home)
