"""Netfilter LOG lines (iptables ``-j LOG``, nftables ``log prefix``) from the kernel: firewall events.

``[12.345] FW-DROP: IN=eth0 OUT= MAC=... SRC=203.0.113.9 DST=10.0.0.5 LEN=60 ... PROTO=TCP SPT=51234 DPT=22 ...``
"""

from __future__ import annotations

import re
from typing import Any

from collectors.logs.base import ParseError, logsource
from collectors.logs.parsers.base import cached, register
from collectors.logs.parsers.syslog import ProgramHandler, SyslogParser, register_handler
from soc.core.model import Event

FIREWALL = logsource("linux", "firewall", None)
_BODY = re.compile(r"(?:\[\s*\d+\.\d+\]\s*)?(.*?)\s*IN=(\S*) OUT=(\S*) (.*)")
_ACTIONS = (("drop", "denied"), ("deny", "denied"), ("reject", "denied"), ("block", "denied"), ("accept", "allowed"))


def _action(prefix: str) -> str | None:
    lower = prefix.lower()
    for word, action in _ACTIONS:
        if word in lower:
            return action
    return None


_prefix_action = cached(_action)  # a firewall logs few prefixes
_MOVED = ("SRC", "DST", "SPT", "DPT")  # to source/destination, not kept under iptables


def netfilter_fields(event: Event, message: str) -> bool:
    """Add the firewall fields of a LOG line to ``event``; False when the message is not one."""
    match = _BODY.match(message)
    if match is None:
        return False
    prefix, ingress, egress, rest = match.groups()
    fields: dict[str, str] = {}
    flags: list[str] = []  # DF, SYN, ACK...: the bare words
    for token in rest.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
        else:
            flags.append(key)
    src, dst = fields.get("SRC"), fields.get("DST")
    if not src or not dst:
        return False
    proto = fields.get("PROTO", "")
    event["soc"]["logsource"] = {"product": "linux", "category": "firewall", "service": None}
    ev = event["event"]
    ev["module"] = "iptables"
    ev["dataset"] = "iptables.log"
    ev["category"] = ["network"]
    ev["type"] = ["connection"]
    prefix = prefix.rstrip(": ").strip()
    action = _prefix_action(prefix)
    if action:
        ev["action"] = action
        ev["type"] = ["connection", "denied" if action == "denied" else "allowed"]
    source: dict[str, Any] = {"ip": src, "address": src}
    destination: dict[str, Any] = {"ip": dst, "address": dst}
    if (spt := fields.get("SPT")) and spt.isdigit():
        source["port"] = int(spt)
    if (dpt := fields.get("DPT")) and dpt.isdigit():
        destination["port"] = int(dpt)
    event["source"], event["destination"] = source, destination
    network: dict[str, Any] = {"transport": proto.lower()} if proto else {}
    network["type"] = "ipv6" if ":" in src else "ipv4"
    event["network"] = network
    observer: dict[str, Any] = {}
    if ingress:
        observer["ingress"] = {"interface": {"name": ingress}}
    if egress:
        observer["egress"] = {"interface": {"name": egress}}
    if observer:
        event["observer"] = observer
    if (length := fields.get("LEN")) and length.isdigit():
        network["bytes"] = int(length)
    iptables: dict[str, Any] = {k.lower(): v for k, v in fields.items() if k not in _MOVED}
    if flags:
        iptables["flags"] = flags
    if prefix:
        iptables["prefix"] = prefix
        event["rule"] = {"name": prefix}
    event["iptables"] = iptables
    return True


@register_handler
class KernelHandler(ProgramHandler):
    """The kernel's messages: netfilter LOG lines become firewall events, the rest stay ``linux/syslog``."""

    programs = ("kernel",)

    def handle(self, event: Event, message: str) -> None:
        netfilter_fields(event, message)


@register
class NetfilterParser(SyslogParser):
    """A firewall log file (``/var/log/iptables.log``, ``kern.log``): syslog lines that must be netfilter LOG lines."""

    name = "iptables"
    description = "iptables/nftables LOG lines (syslog-wrapped kernel messages)"
    sniff_priority = 30

    def sniff(self, line: str) -> bool:
        return " SRC=" in line and " DST=" in line and "IN=" in line and super().sniff(line)

    def parse(self, line: str) -> Event:
        event = super().parse(line)
        if event["soc"]["logsource"]["category"] != "firewall":
            raise ParseError("not_netfilter", "syslog line without a netfilter LOG record")
        return event
