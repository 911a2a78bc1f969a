"""Benchmark of the packet path: our reader + flow meter (cold and warm) against a plain read of the file (the
ceiling), our parse-only pass, nfstream, dpkt, scapy and pyshark, on one capture, in one run.

    python bench/packets.py                                   # ../shared/pcaps/throughput/ordinary_mix.pcap
    python bench/packets.py --scapy-packets 5000 --pyshark-packets 2000 --compile

Every row prints packets/s by wall clock and by CPU time of this process (the machine may be shared: CPU time is
the fairer per-core figure; nfstream and pyshark work in child processes, so only their wall time counts) and how
many times faster our warm read + flows + features pass is. scapy and pyshark run on a prefix of the capture and
are extrapolated (said in the row). Peers are the ``bench`` extra of pyproject.toml.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

DEFAULT_CAPTURE = REPO.parent / "shared" / "pcaps" / "throughput" / "ordinary_mix.pcap"
SMALL_CAPTURE = REPO.parent / "shared" / "pcaps" / "attacks" / "zeek__sshguess.pcap"


@dataclass(slots=True)
class Result:
    name: str
    packets: int  # packets actually processed
    wall: float
    cpu: float | None  # None when the work ran in other processes
    note: str = ""

    @property
    def pps(self) -> float:
        return self.packets / self.wall

    @property
    def pps_cpu(self) -> float | None:
        return self.packets / self.cpu if self.cpu else None


def timed(name: str, work: Callable[[], int], note: str = "") -> Result:
    wall, cpu = time.perf_counter(), time.process_time()
    packets = work()
    return Result(name, packets, time.perf_counter() - wall, time.process_time() - cpu, note)


def best_of(runs: int, name: str, work: Callable[[], int], note: str = "") -> Result:
    results = [timed(name, work, note) for _ in range(runs)]
    return min(results, key=lambda r: r.wall)


# --- ours ----------------------------------------------------------------------------------------------------------


def ours_flows(path: Path) -> int:
    from collectors.flows import FlowMeter
    from collectors.packets import CaptureReader

    meter, reader, flows = FlowMeter(), CaptureReader(path), 0
    for batch in reader:
        flows += len(meter.update(batch))
    flows += len(meter.flush())
    return reader.stats.packets


def ours_parse(path: Path) -> int:
    from collectors.packets import CaptureReader

    reader = CaptureReader(path)
    for _ in reader:
        pass
    return reader.stats.packets


def child(path: Path) -> None:
    """In a fresh interpreter: import, load the built kernels, meter the whole file; report times and peak memory."""
    wall, cpu = time.perf_counter(), time.process_time()
    packets = ours_flows(path)
    print(json.dumps({"packets": packets, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def fresh_process(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                          check=True, env=env, timeout=1800)
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    report["process_wall"] = time.perf_counter() - started  # interpreter start and imports included
    return report


# --- peers ---------------------------------------------------------------------------------------------------------

# imported before the peers' rows are timed: the rows measure the work, as ours (warm) does; importing scapy
# alone takes 0.2 s, and 1 s or more the first time it compiles its bytecode
PEER_MODULES = {"nfstream": ("nfstream",), "dpkt": ("dpkt",),
                "scapy": ("scapy.layers.inet", "scapy.layers.inet6", "scapy.utils"), "pyshark": ("pyshark",)}


def import_peers(names: list[str]) -> None:
    for name in names:
        for module in PEER_MODULES[name]:
            importlib.import_module(module)



def plain_read(path: Path, packets: int) -> Callable[[], int]:
    def work() -> int:
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
        return packets

    return work


def nfstream(path: Path) -> int:
    from nfstream import NFStreamer

    streamer = NFStreamer(source=str(path), statistical_analysis=True, n_dissections=0, n_meters=1,
                          idle_timeout=120, active_timeout=1800)
    return sum(int(flow.bidirectional_packets) for flow in streamer)


def dpkt_flows(path: Path) -> int:
    """dpkt decoding Ethernet/IP/TCP/UDP with a dict flow table (packets and bytes per 5-tuple)."""
    import dpkt

    table: dict[tuple[Any, ...], list[int]] = {}
    packets = 0
    with open(path, "rb") as handle:
        for _, frame in dpkt.pcap.Reader(handle):
            packets += 1
            try:
                ip = dpkt.ethernet.Ethernet(frame).data
            except (dpkt.UnpackError, IndexError):
                continue
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            transport = ip.data
            ports = (getattr(transport, "sport", 0), getattr(transport, "dport", 0))
            key = (ip.src, ip.dst, ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt, *ports)
            entry = table.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += len(frame)
    return packets


def scapy_flows(path: Path) -> int:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    table: dict[tuple[Any, ...], list[int]] = {}
    packets = 0
    with PcapReader(str(path)) as reader:
        for packet in reader:
            packets += 1
            layer = packet.getlayer(IP) or packet.getlayer(IPv6)
            if layer is None:
                continue
            transport = packet.getlayer(TCP) or packet.getlayer(UDP)
            ports = (transport.sport, transport.dport) if transport is not None else (0, 0)
            entry = table.setdefault((layer.src, layer.dst, *ports), [0, 0])
            entry[0] += 1
            entry[1] += len(packet)
    return packets


def pyshark_flows(path: Path, budget: float) -> int:
    """pyshark (tshark dissecting every layer), under a time budget: full dissectors can stall on odd traffic."""
    import pyshark

    table: dict[tuple[Any, ...], int] = {}
    count = [0]

    def on_packet(packet: Any) -> None:
        count[0] += 1
        layer = getattr(packet, "ip", None) or getattr(packet, "ipv6", None)
        if layer is not None:
            key = (layer.src, layer.dst, packet.transport_layer)
            table[key] = table.get(key, 0) + 1

    capture = pyshark.FileCapture(str(path), keep_packets=False)
    try:
        capture.apply_on_packets(on_packet, timeout=budget)
    finally:
        capture.close()
    return count[0]


def prefix_file(path: Path, packets: int, folder: Path) -> Path:
    """The first ``packets`` records of a classic pcap as a new file."""
    from collectors.packets import CaptureReader

    for batch in CaptureReader(path, chunk_packets=packets):
        n = len(batch)
        end = int(batch.data_offset[n - 1] + batch.caplen[n - 1])
        target = folder / f"prefix{n}.pcap"
        with open(path, "rb") as source:
            target.write_bytes(source.read(end))
        return target
    raise ValueError(f"{path} holds no packets")


def on_prefix(name: str, work: Callable[[Path], int], path: Path, packets: int, total: int, folder: Path,
              cpu_counts: bool = True) -> Result:
    prefix = prefix_file(path, packets, folder)
    result = timed(name, lambda: work(prefix))
    result.note = f"first {result.packets:,} packets; whole file extrapolated ≈ {total / result.pps:,.0f} s"
    if not cpu_counts:
        result.cpu = None
    return result


# --- report --------------------------------------------------------------------------------------------------------


def report(results: list[Result], ours: Result, console: Console) -> None:
    table = Table(title="packets/s on one capture (higher is better)")
    for column in ("pass", "packets", "wall s", "packets/s", "CPU s", "packets/s (CPU)", "ours ÷ this", "note"):
        table.add_column(column, justify="left" if column in ("pass", "note") else "right")
    for r in results:
        ratio = ours.pps / r.pps
        table.add_row(
            r.name, f"{r.packets:,}", f"{r.wall:.3f}", f"{r.pps:,.0f}", f"{r.cpu:.3f}" if r.cpu else "-",
            f"{r.pps_cpu:,.0f}" if r.pps_cpu else "-", f"{ratio:,.2f}×", r.note,
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--runs", type=int, default=3, help="warm runs; the best is kept")
    parser.add_argument("--scapy-packets", type=int, default=5000)
    parser.add_argument("--pyshark-packets", type=int, default=2000)
    parser.add_argument("--pyshark-budget", type=float, default=300.0, help="seconds before pyshark is stopped")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(PEER_MODULES))
    parser.add_argument("--compile", action="store_true",
                        help="also time a cold run that compiles the numba kernels from nothing (minutes)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    console = Console(width=200)
    path: Path = args.capture
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    console.print(f"capture {path} ({path.stat().st_size / 1e6:,.0f} MB), load average {load}, {now}")

    start = fresh_process(SMALL_CAPTURE)
    console.print(f"cold start, fresh process with the kernels built, {start['packets']} packets: "
                  f"{start['process_wall']:.2f} s wall from exec to result (meter {start['wall']:.2f} s)")
    cold = fresh_process(path)
    total = int(cold["packets"])
    jitted = fresh_process(path, {**os.environ, "SOC_KERNELS": "jit"})
    results = [Result("ours: read + flows + features, cold (fresh process, built kernels)", total, cold["wall"],
                      cold["cpu"], f"{cold['process_wall']:.2f} s with interpreter start"),
               Result("ours: cold through numba's JIT and its cache (SOC_KERNELS=jit)", total, jitted["wall"],
                      jitted["cpu"], f"{jitted['process_wall']:.2f} s with interpreter start")]
    if args.compile:
        with tempfile.TemporaryDirectory() as empty:
            compiled = fresh_process(path, {**os.environ, "SOC_KERNEL_CACHE": empty, "NUMBA_CACHE_DIR": empty})
        results.append(Result("ours: cold, building every kernel", total, compiled["wall"], compiled["cpu"],
                              "empty kernel and numba caches"))
    ours_flows(path)  # load the kernels into this process
    ours = best_of(args.runs, "ours: read + flows + features, warm", lambda: ours_flows(path), f"best of {args.runs}")
    results += [ours, best_of(args.runs, "ours: parse only, warm", lambda: ours_parse(path), f"best of {args.runs}"),
                best_of(args.runs, "plain read of the file (ceiling)", plain_read(path, total), "16 MiB reads")]
    import_peers([name for name in PEER_MODULES if name not in args.skip])
    with tempfile.TemporaryDirectory() as folder:
        if "nfstream" not in args.skip:
            result = timed("nfstream 6 (statistical features, no DPI, 1 meter)", lambda: nfstream(path))
            result.cpu, result.packets = None, total  # it works in child processes and counts only IP packets
            results.append(result)
        if "dpkt" not in args.skip:
            results.append(timed("dpkt (decode + dict flow table)", lambda: dpkt_flows(path)))
        if "scapy" not in args.skip:
            results.append(on_prefix("scapy (dissect + dict flow table)", scapy_flows, path, args.scapy_packets,
                                     total, Path(folder)))
        if "pyshark" not in args.skip:
            results.append(on_prefix("pyshark (tshark dissection)",
                                     lambda p: pyshark_flows(p, args.pyshark_budget), path, args.pyshark_packets,
                                     total, Path(folder), cpu_counts=False))
    report(results, ours, console)
    console.print(f"peak memory: fresh process metering the whole file {cold['maxrss_kib'] / 1024:,.0f} MiB; "
                  f"this benchmark process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
