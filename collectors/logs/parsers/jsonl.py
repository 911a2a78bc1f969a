"""JSON-lines logs: Suricata ``eve.json``, Zeek JSON logs, and any other JSON object per line.

The original record is kept under ``suricata.eve`` / ``zeek.<log>`` (Zeek's dotted names nested) and the common
fields are copied to ECS (``source.*``, ``destination.*``, ``dns.question.*``, ``url.*``, ...).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import orjson

from collectors.logs.base import ParseError, logsource
from collectors.logs.parsers.base import EpochParser, IsoParser, LineParser, epoch_to_iso, register
from soc.core.model import Event, get_field, iso_now, set_field

_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))  # ASCII digits to "0", any other byte to " "
_WIDE = b"0" * 19  # a run of digits that may be an integer wider than 64 bits
_FAILED: Any = object()


def load_object(line: str) -> dict[str, Any]:
    """One JSON object per line. orjson reads it (several times faster than json); what orjson refuses (NaN,
    lone surrogates, bad JSON) or may read otherwise (an integer wider than 64 bits, which it makes a float:
    any line with 19 digits in a row) is read by json, so the result and the error message are json's."""
    record = _FAILED
    if _WIDE not in line.encode().translate(_DIGITS):
        try:  # noqa: SIM105 - per line: contextlib.suppress costs a context manager each time
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    if record.__class__ is not dict:  # json's verdict and message for what is not a plain object
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ParseError("bad_json", f"invalid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ParseError("not_object", f"JSON {type(record).__name__}, not an object")
    return record


def nest(record: dict[str, Any]) -> dict[str, Any]:
    """``{"id.orig_h": x}`` to ``{"id": {"orig_h": x}}``, recursively (our events never carry dotted keys).
    A record without dotted keys or nested objects is returned as it is (the common case: no copy)."""
    # JSON keys are strings and its objects plain dicts: both questions in one C call each
    if "." not in "".join(record) and dict not in map(type, record.values()):
        return record
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            value = nest(value)
        if "." in key:
            head, _, tail = key.partition(".")
            if "." in tail:
                set_field(out, key, value)
            else:
                out.setdefault(head, {})[tail] = value  # set_field for a key of two parts
        else:
            out[key] = value
    return out


def _endpoint(ip: Any, port: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"ip": ip, "address": ip}
    if isinstance(port, int):
        doc["port"] = port
    return doc


@register
class SuricataEveParser(LineParser):
    """Suricata EVE JSON: ``event_type`` becomes the Sigma service under product ``suricata``; ``alert`` records
    are ``event.kind: alert`` with ``rule.*``; ``dns`` records are category ``dns``."""

    name = "suricata-eve"
    description = "Suricata eve.json"
    sniff_priority = 10

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._time = IsoParser().__call__  # the bound method: a cheaper call

    def sniff(self, line: str) -> bool:
        return line.startswith("{") and '"event_type"' in line and '"timestamp"' in line

    def parse(self, line: str) -> Event:
        record = load_object(line)
        event_type, stamp = record.get("event_type"), record.get("timestamp")
        if not isinstance(event_type, str) or not isinstance(stamp, str):
            raise ParseError("missing_field", "eve record without event_type or timestamp")
        event: Event = {
            "@timestamp": self._time(stamp),
            "event": {
                "kind": "alert" if event_type == "alert" else "event",
                "module": "suricata",
                "dataset": "suricata.eve",
                "type": [event_type],
            },
            "suricata": {"eve": record},
            "soc": {
                "logsource": {"product": "suricata", "category": "dns" if event_type == "dns" else None,
                              "service": event_type}},
        }  # fmt: skip
        if "src_ip" in record:
            ip, port = record["src_ip"], record.get("src_port")
            event["source"] = {"ip": ip, "address": ip, "port": port} if isinstance(port, int) else {
                "ip": ip, "address": ip}  # fmt: skip
        if "dest_ip" in record:
            ip, port = record["dest_ip"], record.get("dest_port")
            event["destination"] = {"ip": ip, "address": ip, "port": port} if isinstance(port, int) else {
                "ip": ip, "address": ip}  # fmt: skip
        if isinstance(proto := record.get("proto"), str):
            event["network"] = {"transport": proto.lower()}
        if isinstance(host := record.get("host"), str):
            event["observer"] = {"name": host}
        alert = record.get("alert")
        if isinstance(alert, dict):
            event["rule"] = {
                "id": str(alert.get("signature_id", "")),
                "name": alert.get("signature", ""),
                "category": alert.get("category", ""),
            }
            if "action" in alert:
                event["event"]["action"] = alert["action"]
            if isinstance(alert.get("severity"), int):
                event["event"]["severity"] = alert["severity"]
        dns = record.get("dns")
        if isinstance(dns, dict):
            # EVE v1 puts one query at the top; v2/v3 answers list "queries"
            query = dns["queries"][0] if isinstance(dns.get("queries"), list) and dns["queries"] else dns
            if "rrname" in query:
                event["dns"] = {"type": dns.get("type", "query"), "question": {"name": query["rrname"]}}
                if "rrtype" in query:
                    event["dns"]["question"]["type"] = query["rrtype"]
                if "rcode" in dns:
                    event["dns"]["response_code"] = dns["rcode"]
        http = record.get("http")
        if isinstance(http, dict):
            if "url" in http:
                event["url"] = {"original": http["url"], "path": str(http["url"]).split("?")[0]}
                if "hostname" in http:
                    event["url"]["domain"] = http["hostname"]
            doc: dict[str, Any] = {}
            if "http_method" in http:
                doc["request"] = {"method": http["http_method"]}
            if isinstance(http.get("status"), int):
                doc["response"] = {"status_code": http["status"]}
            if doc:
                event["http"] = doc
            if "http_user_agent" in http:
                event["user_agent"] = {"original": http["http_user_agent"]}
        tls = record.get("tls")
        if isinstance(tls, dict) and "sni" in tls:
            event["tls"] = {"client": {"server_name": tls["sni"]}}
        return event


class _Zeek:
    """ECS copies of Zeek fields, by log."""

    COMMON: ClassVar[dict[str, str]] = {"uid": "zeek.session_id", "proto": "network.transport"}
    BY_LOG: ClassVar[dict[str, dict[str, str]]] = {
        "dns": {"query": "dns.question.name", "qtype_name": "dns.question.type", "rcode_name": "dns.response_code"},
        "http": {
            "method": "http.request.method",
            "host": "url.domain",
            "uri": "url.original",
            "user_agent": "user_agent.original",
            "status_code": "http.response.status_code",
            "referrer": "http.request.referrer",
        },
        "ssl": {"server_name": "tls.client.server_name", "version": "tls.version"},
        "conn": {"service": "network.protocol", "conn_state": "zeek.connection.state"},
    }


def _paths(mapping: dict[str, str]) -> list[tuple[str, tuple[str, ...], str]]:
    """``{key: "a.b.c"}`` to ``[(key, ("a", "b"), "c")]``: what set_field splits, split once."""
    return [(key, tuple(dotted.split(".")[:-1]), dotted.rpartition(".")[2]) for key, dotted in mapping.items()]


_ZEEK_FIELDS = {log: _paths(_Zeek.COMMON) + _paths(fields) for log, fields in _Zeek.BY_LOG.items()}
_ZEEK_COMMON = _paths(_Zeek.COMMON)


@register
class ZeekJsonParser(LineParser):
    """Zeek logs written as JSON. The log name (``conn``, ``dns``, ``http``...) comes from ``_path`` or from the
    option ``log`` (the reader passes the file's stem); it is the Sigma service under product ``zeek``."""

    name = "zeek-json"
    description = "Zeek JSON logs (conn, dns, http, ssl, ...)"
    sniff_priority = 11

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.log_name: str | None = options.get("log")
        self._time = EpochParser().__call__  # the bound method: a cheaper call
        self._iso = IsoParser().__call__  # the bound method: a cheaper call

    def sniff(self, line: str) -> bool:
        return line.startswith("{") and '"ts"' in line and ('"uid"' in line or '"id.orig_h"' in line)

    def parse(self, line: str) -> Event:
        record = load_object(line)
        stamp = record.get("ts")
        if isinstance(stamp, int | float):
            timestamp = self._time(stamp)
        elif isinstance(stamp, str):
            timestamp = self._iso(stamp)
        else:
            raise ParseError("missing_field", "zeek record without ts")
        log_name = str(record.get("_path") or self.log_name or "unknown")
        event: Event = {
            "@timestamp": timestamp,
            "event": {"kind": "event", "module": "zeek", "dataset": f"zeek.{log_name}"},
            "zeek": {log_name: nest(record)},
            "soc": {"logsource": {"product": "zeek", "category": None, "service": log_name}},
        }
        if "id.orig_h" in record:
            event["source"] = _endpoint(record["id.orig_h"], record.get("id.orig_p"))
        if "id.resp_h" in record:
            event["destination"] = _endpoint(record["id.resp_h"], record.get("id.resp_p"))
        for key, parents, last in _ZEEK_FIELDS.get(log_name, _ZEEK_COMMON):  # set_field, the paths split once
            value = record.get(key)
            if value is not None and value != "-":
                node = event
                for part in parents:
                    node = node.setdefault(part, {})
                node[last] = value
        return event


@register
class JsonParser(LineParser):
    """Any JSON object per line, kept as it is (dotted keys nested). ``@timestamp`` from ``@timestamp``,
    ``timestamp``, ``time`` or ``ts``; the log source from the options ``product``, ``category``, ``service``."""

    name = "json"
    description = "generic JSON lines"
    sniff_priority = 90
    TIME_KEYS: ClassVar[tuple[str, ...]] = ("@timestamp", "timestamp", "time", "ts")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._logsource = logsource(options.get("product"), options.get("category"), options.get("service"))
        self._dataset = options.get("dataset", "json.generic")
        self._iso = IsoParser().__call__  # the bound method: a cheaper call

    def sniff(self, line: str) -> bool:
        return line.lstrip().startswith("{")

    def parse(self, line: str) -> Event:
        event = nest(load_object(line))
        for key in self.TIME_KEYS:
            value = get_field(event, key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                event["@timestamp"] = epoch_to_iso(value / 1000 if value > 1e11 else value)  # ms or s
                break
            if isinstance(value, str):
                event["@timestamp"] = self._iso(value)
                break
        ev = event.get("event")
        if not isinstance(ev, dict):
            ev = event["event"] = {} if ev is None else {"original_event": ev}
        if "@timestamp" not in event:  # every stage sorts and buckets by time: a record without one gets ours
            event["@timestamp"] = ev["ingested"] = iso_now()
        ev.setdefault("kind", "event")
        ev.setdefault("dataset", self._dataset)
        soc = event.setdefault("soc", {})
        if not isinstance(soc, dict):
            raise ParseError("bad_field", "field 'soc' is reserved for our own metadata")
        soc["logsource"] = dict(self._logsource)
        return event
