"""Live taps: dumpcap writes a ring of short pcapng files; the follower hands each finished file to the reader.

Why dumpcap and not pyshark's live capture: dumpcap only copies packets from the kernel to disk, and our reader
decodes whole files in one numba call, while pyshark turns every packet into Python objects through tshark's
full dissection, which is orders of magnitude slower (see bench/RESULTS.md).

Drop counters: ``kernel`` — packets the capture socket dropped (dumpcap's pcap/ps_ifdrop counts, read when it
stops) plus the interface's ``rx_dropped`` since start; ``own`` — ring files dumpcap overwrote before we read
them (a gap in the ring's sequence numbers). A checkpoint file names the last file fully processed, so after a
restart the files left in the ring folder are processed once, in order.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from soc.core.errors import CaptureError

# dumpcap names ring files PREFIX_NNNNN_YYYYMMDDhhmmss.pcapng; the sequence restarts at 1 with every run
_RING_NAME = re.compile(r"_(\d{5,})_(\d{14})\.pcapng$")
_SUMMARY = re.compile(
    r"received/dropped on interface '(?P<iface>[^']+)': (?P<received>\d+)/(?P<dropped>\d+)"
    r"(?: \(pcap:(?P<pcap>\d+)/dumpcap:(?P<dumpcap>\d+)/flushed:(?P<flushed>\d+)/ps_ifdrop:(?P<ifdrop>\d+)\))?"
)


@dataclass(slots=True)
class DropCounters:
    kernel: int = 0  # dropped before dumpcap saw them
    own: int = 0  # ring files lost before we read them
    received: int = 0
    by_interface: dict[str, int] = field(default_factory=dict)


def ring_key(path: Path) -> tuple[str, int]:
    """Order of ring files: by start time, then sequence (a restarted dumpcap starts again at 1)."""
    match = _RING_NAME.search(path.name)
    if match is None:
        return ("", 0)
    return (match.group(2), int(match.group(1)))


def _rx_dropped(interface: str) -> int:
    try:
        return int(Path(f"/sys/class/net/{interface}/statistics/rx_dropped").read_text())
    except (OSError, ValueError):
        return 0


class RingCapture:
    """One dumpcap process capturing ``interfaces`` into ``directory`` as a ring of ``file_seconds`` files."""

    def __init__(self, interfaces: list[str], directory: Path, file_seconds: int = 1, ring_files: int = 120,
                 capture_filter: str | None = None, prefix: str = "ring") -> None:
        if not interfaces:
            raise CaptureError("no interface to capture from: give --interface or collectors.packets.interfaces")
        self.interfaces = interfaces
        self.directory = directory
        self.file_seconds = file_seconds
        self.ring_files = ring_files
        self.capture_filter = capture_filter
        self.prefix = prefix
        self.process: subprocess.Popen[str] | None = None
        self.drops = DropCounters()
        self._rx_dropped_at_start: dict[str, int] = {}

    def start(self) -> None:
        dumpcap = shutil.which("dumpcap")
        if dumpcap is None:
            raise CaptureError("dumpcap not found: install Debian's wireshark-common or tshark package")
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [dumpcap, "-q", "-n", "-w", str(self.directory / f"{self.prefix}.pcapng"),
                   "-b", f"duration:{self.file_seconds}", "-b", f"files:{self.ring_files}"]
        for interface in self.interfaces:
            command += ["-i", interface]
            if self.capture_filter:
                command += ["-f", self.capture_filter]
            self._rx_dropped_at_start[interface] = _rx_dropped(interface)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> DropCounters:
        """Stop dumpcap (it closes its last file) and read its drop counts."""
        if self.process is None:
            return self.drops
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        for match in _SUMMARY.finditer(stderr or ""):
            dropped = int(match.group("dropped"))
            self.drops.received += int(match.group("received"))
            self.drops.by_interface[match.group("iface")] = dropped
            self.drops.kernel += dropped
        for interface, at_start in self._rx_dropped_at_start.items():
            self.drops.kernel += max(0, _rx_dropped(interface) - at_start)
        if self.process.returncode not in (0, -signal.SIGINT) and not self.drops.by_interface:
            raise CaptureError(f"dumpcap failed ({self.process.returncode}): {(stderr or '').strip()[-500:]}")
        return self.drops


class RingFollower:
    """Finished ring files in order, each once, across restarts (the checkpoint names the last one done)."""

    def __init__(self, directory: Path, checkpoint: Path) -> None:
        self.directory = directory
        self.checkpoint = checkpoint
        self.lost_files = 0
        self._last_sequence: int | None = None

    def _done_key(self) -> tuple[str, int]:
        try:
            return ring_key(Path(self.checkpoint.read_text().strip()))
        except OSError:
            return ("", 0)

    def pending(self, include_newest: bool = False) -> list[Path]:
        """Files not yet processed, oldest first; the newest is still being written unless ``include_newest``."""
        files = sorted((p for p in self.directory.glob("*.pcapng") if _RING_NAME.search(p.name)), key=ring_key)
        if files and not include_newest:
            files = files[:-1]
        done = self._done_key()
        return [p for p in files if ring_key(p) > done]

    def new_run(self) -> None:
        """A new dumpcap starts numbering at 1: a first file numbered higher means files were lost."""
        self._last_sequence = 0

    def mark_done(self, path: Path) -> None:
        """Record ``path`` as processed (atomically) and remove it; count ring files that vanished unread."""
        sequence = ring_key(path)[1]
        if self._last_sequence is not None and sequence > self._last_sequence + 1:
            self.lost_files += sequence - self._last_sequence - 1
        self._last_sequence = sequence
        temporary = self.checkpoint.with_suffix(".tmp")
        temporary.write_text(path.name)
        os.replace(temporary, self.checkpoint)
        path.unlink(missing_ok=True)
