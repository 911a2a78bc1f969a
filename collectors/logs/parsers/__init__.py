"""Log formats: each module registers its parser classes (and syslog program handlers) on import."""

from collectors.logs.parsers import bind, jsonl, linux, netfilter, squid, syslog, web
from collectors.logs.parsers.base import PARSERS, LineParser, get_parser, register, sniff_format

__all__ = [
    "PARSERS",
    "LineParser",
    "bind",
    "get_parser",
    "jsonl",
    "linux",
    "netfilter",
    "register",
    "sniff_format",
    "squid",
    "syslog",
    "web",
]
