"""Benchmark of the protocol parsers: our DNS/HTTP/TLS extractor against pyshark and tshark on the same captures,
in messages per second (a DNS message, an HTTP request or response, a TLS ClientHello).

Ours: capture reader + ProtocolExtractor, warm (the second of two runs). pyshark: FileCapture with a display
filter, reading the same fields per packet. tshark: one ``-T fields`` process with the same filter (the fastest
way to use tshark). Both dissectors run under a time budget; a cut run is reported with where it stopped.

    python bench/protocols.py                      # attack captures + ordinary_mix_first30k, then our parser on
                                                   # the full 526k-packet ordinary_mix (tshark under budget)
    python bench/protocols.py --budget 60 --skip-full
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.packets import CaptureReader
from collectors.protocols import ProtocolExtractor
from collectors.protocols.budget import Dissection, pyshark_packets, tshark_fields

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "pcaps"
CAPTURES = [
    SHARED / "attacks" / "ntop__dns-tunnel-iodine.pcap",
    SHARED / "attacks" / "ntop__dns_exfiltration.pcap",
    SHARED / "attacks" / "chrissanders__http_dvwa_sqlinjection.pcapng",
    SHARED / "attacks" / "chrissanders__cryptowall4_c2.pcapng",
    SHARED / "attacks" / "esnet-security__nmap_80_all.pcap",
    SHARED / "throughput" / "ordinary_mix_first30k.pcap",
]
FULL = SHARED / "throughput" / "ordinary_mix.pcap"
FILTER = "dns || http.request || http.response || tls.handshake.type == 1"
FIELDS = ["dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.resp.name", "http.request.method",
          "http.request.uri", "http.host", "http.user_agent", "http.response.code",
          "tls.handshake.extensions_server_name", "tls.handshake.ja3"]


def messages(events: list[dict[str, Any]]) -> int:
    """Messages behind the events: a paired HTTP event is a request and a response."""
    count = 0
    for event in events:
        http = event.get("http")
        count += 1 if http is None else ("request" in http) + ("response" in http)
    return count


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (tshark under tshark_fields and pyshark)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ours(path: Path, repeat: int = 2) -> tuple[float, float, int, int]:
    """(wall seconds and CPU seconds of the last run, messages, packets)."""
    elapsed, cpu, packets = 0.0, 0.0, 0
    events: list[dict[str, Any]] = []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        extractor = ProtocolExtractor(source=path)
        events = []
        for batch in CaptureReader(path):
            events += extractor.process(batch)
        events += extractor.finish()
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        packets = extractor.stats.packets
    return elapsed, cpu, messages(events), packets


def pyshark_visit(packet: Any) -> tuple[Any, ...]:
    """Read the same fields pyshark users read: the attribute access is where pyshark spends its time."""
    if hasattr(packet, "dns"):
        layer = packet.dns
        return ("dns", getattr(layer, "qry_name", None), getattr(layer, "qry_type", None))
    if hasattr(packet, "http"):
        layer = packet.http
        return ("http", getattr(layer, "request_method", None), getattr(layer, "request_uri", None),
                getattr(layer, "host", None), getattr(layer, "user_agent", None), getattr(layer, "response_code", None))
    if hasattr(packet, "tls"):
        layer = packet.tls
        return ("tls", getattr(layer, "handshake_extensions_server_name", None), getattr(layer, "handshake_ja3", None))
    return ("other",)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:12,.0f}" if seconds > 0 else f"{'-':>12}"


def note(result: Dissection) -> str:
    return result.cut or result.error or ""


def row(name: str, tool: str, count: int, wall: float, cpu: float, ours_cpu_rate: float | None, text: str) -> None:
    ratio = f"{ours_cpu_rate / (count / cpu):8.1f}" if ours_cpu_rate and count and cpu > 0 else f"{'':>8}"
    print(f"{name:44} {tool:8} {count:9,} {wall:8.3f} {cpu:8.3f} {rate(count, wall)} {rate(count, cpu)} {ratio}"
          f"  {text}")


def dissector(name: str, run: Any, ours_cpu_rate: float) -> None:
    start = cpu_seconds()
    result: Dissection = run()
    row("", name, len(result.rows), result.elapsed_s, cpu_seconds() - start, ours_cpu_rate, note(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per capture for pyshark and tshark")
    parser.add_argument("--skip-full", action="store_true", help="skip the full ordinary_mix run")
    args = parser.parse_args()

    print(f"{'capture':44} {'tool':8} {'messages':>9} {'wall s':>8} {'CPU s':>8} {'msg/s wall':>12} "
          f"{'msg/s CPU':>12} {'ours× CPU':>8}  note")
    for path in CAPTURES:
        wall, cpu, count, packets = ours(path)
        row(path.name, "ours", count, wall, cpu, None, f"{packets:,} packets, {packets / cpu:,.0f} packets/s CPU")
        ours_rate = count / cpu
        dissector("tshark", lambda p=path: tshark_fields(p, FIELDS, FILTER, budget_s=args.budget), ours_rate)
        dissector("pyshark", lambda p=path: pyshark_packets(p, pyshark_visit, FILTER, budget_s=args.budget), ours_rate)
    if args.skip_full or not FULL.exists():
        return
    wall, cpu, count, packets = ours(FULL, repeat=1)
    row(FULL.name, "ours", count, wall, cpu, None,
        f"{packets:,} packets, {packets / cpu:,.0f} packets/s CPU (first run: numba cache load, cold page cache)")
    dissector("tshark", lambda: tshark_fields(FULL, FIELDS, FILTER, budget_s=args.budget), count / cpu)


if __name__ == "__main__":
    main()
