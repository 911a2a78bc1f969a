"""The parser interface and its registry: one small class per log format, chosen by name or by sniffing lines.

A parser turns one decoded line into one ECS event (nested dict) with ``soc.logsource`` set, or raises
:class:`~collectors.logs.base.ParseError` with a short reason; the reader adds file, offset and flags.
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from collectors.logs.base import ParseError
from soc.core.model import Event

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
MEMO_SIZE = 4096  # entries per memo of the parsers; a full memo is cleared (cheap, bounded, and soon warm again)


class LineParser(ABC):
    """One log format. ``name`` is what configuration and ``--format`` use; ``sniff`` is a cheap yes/no on a
    line, used to pick a parser for an unlabelled file; ``parse`` builds the event or raises ``ParseError``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    sniff_priority: ClassVar[int] = 50  # lower is tried first; generic formats go last

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abstractmethod
    def sniff(self, line: str) -> bool: ...

    @abstractmethod
    def parse(self, line: str) -> Event: ...


PARSERS: dict[str, type[LineParser]] = {}

P = TypeVar("P", bound=type[LineParser])


def register(cls: P) -> P:
    if cls.name in PARSERS:
        raise ValueError(f"parser {cls.name!r} registered twice")
    PARSERS[cls.name] = cls
    return cls


def get_parser(name: str, **options: Any) -> LineParser:
    cls = PARSERS.get(name)
    if cls is None:
        raise ValueError(f"unknown log format {name!r}: use one of {', '.join(sorted(PARSERS))}")
    return cls(**options)


def sniff_format(lines: Iterable[str], minimum: float = 0.5) -> str | None:
    """The format most of these sample lines are in (at least ``minimum`` of the non-blank ones), or None."""
    sample = [line for line in lines if line.strip()][:50]
    if not sample:
        return None
    best, best_hits = None, 0
    for cls in sorted(PARSERS.values(), key=lambda c: (c.sniff_priority, c.name)):
        parser = cls()
        hits = sum(1 for line in sample if parser.sniff(line))
        if hits > best_hits:
            best, best_hits = cls.name, hits
        if hits == len(sample):
            break
    return best if best_hits >= minimum * len(sample) else None


# --- timestamps: lines in one second share a timestamp text, so a small cache saves nearly all the work -------


def iso(dt: datetime) -> str:
    """Aware datetime to the ISO 8601 UTC form every stage writes (``...T07:43:26.000000Z``)."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


K = TypeVar("K")
V = TypeVar("V")
_MISS: Any = object()


def cached(fn: Callable[[K], V], size: int = MEMO_SIZE) -> Callable[[K], V]:
    """Memoize a one-argument function with a bounded dict (cleared when full: cheap and bounded). None is a
    result like any other: it is remembered too."""
    memo: dict[K, V] = {}

    def wrapper(key: K) -> V:
        hit = memo.get(key, _MISS)
        if hit is _MISS:
            if len(memo) >= size:
                memo.clear()
            hit = memo[key] = fn(key)
        return hit

    return wrapper


def with_fraction(stamp: str, fraction: str | None) -> str:
    """Put the sub-second digits into a whole-second stamp from :func:`iso`: zone offsets are whole minutes, so
    the fraction never changes under conversion and only the seconds need the (cached) calendar work."""
    if not fraction:
        return stamp
    return f"{stamp[:-7]}{(fraction + '000000')[:6]}Z"


def tz_offset(text: str) -> timedelta:
    """``+0100``, ``+01:00``, ``Z`` to a timedelta."""
    if text in ("Z", "z", ""):
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))


_ISO_STAMP = re.compile(r"\s*(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d+))?\s*(Z|z|[+-]\d\d:?\d\d)?\s*$")


def _iso_seconds(key: str) -> str:
    day, clock, zone = key.split("|")
    dt = datetime(int(day[:4]), int(day[5:7]), int(day[8:10]), int(clock[:2]), int(clock[3:5]), int(clock[6:8]))
    return iso(dt.replace(tzinfo=UTC) - tz_offset(zone))


class IsoParser:
    """ISO 8601 / RFC 3339 stamps with any fraction and offset (``2026-11-25T07:43:26.123456789+01:00``) to our
    UTC form; a stamp without zone is taken as UTC. Memoized per second."""

    def __init__(self) -> None:
        self._seconds = cached(_iso_seconds)
        # the common shape, microseconds (``2026-11-25T07:43:26.123456+0000``): the stamp without its six digits
        # (``2026-11-25T07:43:26+0000``) to its whole second, for stamps _ISO_STAMP has read
        self._micros: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if text[19:20] == "." and (digits := text[20:26]).isdecimal():
            seconds = self._micros.get(text[:19] + text[26:])
            if seconds is not None:
                return f"{seconds[:-7]}{digits}Z"
        match = _ISO_STAMP.match(text)
        if match is None:
            raise ParseError("bad_timestamp", f"bad timestamp {text!r}")
        day, clock, fraction, zone = match.groups()
        try:
            seconds = self._seconds(f"{day}|{clock}|{zone or ''}")
        except ValueError as exc:
            raise ParseError("bad_timestamp", f"bad timestamp {text!r}: {exc}") from None
        if fraction is not None and len(fraction) == 6 and match.start(1) == 0 and text[19] == ".":
            if len(self._micros) >= MEMO_SIZE:
                self._micros.clear()
            self._micros[text[:19] + text[26:]] = seconds
        return with_fraction(seconds, fraction)


def epoch_seconds(whole: str) -> str:
    """Whole seconds since the epoch (digits) to our UTC form."""
    return iso(datetime.fromtimestamp(int(whole), tz=UTC))


class EpochParser:
    """Seconds since the epoch as text (``1795592606.123``) or number to our UTC form, memoized per second."""

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}  # whole seconds (digits) to epoch_seconds()

    def __call__(self, value: str | float) -> str:
        text = value if isinstance(value, str) else repr(float(value))
        whole, _, fraction = text.partition(".")
        if not whole.isdigit() or not (fraction.isdigit() or not fraction):
            raise ParseError("bad_timestamp", f"bad epoch time {value!r}")
        memo = self._memo
        seconds = memo.get(whole)
        if seconds is None:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            seconds = memo[whole] = epoch_seconds(whole)
        return with_fraction(seconds, fraction)


def epoch_to_iso(seconds: float) -> str:
    return iso(datetime.fromtimestamp(seconds, tz=UTC))


def syslog_year(month: int, now: datetime | None = None) -> int:
    """RFC 3164 stamps have no year: take this year, or last year for a December line read in January."""
    now = now or datetime.now(tz=UTC)
    return now.year - 1 if month > now.month + 1 else now.year


_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def _is_ip(text: str) -> bool:
    if _IPV4.fullmatch(text):
        return True
    if ":" not in text:
        return False
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


# Whether a text is an IPv4 or IPv6 address (an ``ip`` field given a host name makes Elasticsearch refuse the whole
# document, so every parser checks before writing ``*.ip``). Memoized: logs repeat their addresses.
is_ip = cached(_is_ip)


ENDPOINTS: dict[str, dict[str, Any]] = {}  # endpoint() memo by address (no port): copy what it holds


def endpoint(address: str, port: str | int | None = None) -> dict[str, Any]:
    """ECS ``source``/``destination`` for an address that may be an IP or a host name, with an optional port."""
    known = ENDPOINTS.get(address)
    if known is None:
        if len(ENDPOINTS) >= MEMO_SIZE:
            ENDPOINTS.clear()
        known = ENDPOINTS[address] = (
            {"ip": address.split("%", 1)[0], "address": address} if is_ip(address) else
            {"address": address, "domain": address}
        )  # fmt: skip
    doc = known.copy()  # a dict per event: later stages may edit one event's copy
    if port is not None:
        if port.__class__ is str:
            if port.isdigit():
                doc["port"] = int(port)
        elif isinstance(port, int):
            doc["port"] = port
        elif port and port.isdigit():
            doc["port"] = int(port)
    return doc


def base_event(timestamp: str, dataset: str, logsource: dict[str, Any], message: str) -> Event:
    module = dataset.split(".", 1)[0]
    return {
        "@timestamp": timestamp,
        "message": message,
        "event": {"kind": "event", "module": module, "dataset": dataset},
        "soc": {"logsource": dict(logsource)},  # own copy: later stages may edit it
    }
