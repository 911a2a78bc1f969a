"""tshark and pyshark under a time budget: dissection beyond our own parsers must never stall ingestion.

Full dissectors can spend minutes on one hostile or odd trace (tshark took over two minutes on a 3,866-packet VNC
capture in our throughput mix). Both runners here stop at the budget, keep what was dissected until then, and
say what was cut: the last frame reached and how much of the file was left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TSHARK = "tshark"


@dataclass(slots=True)
class Dissection:
    """What a budgeted run produced. ``cut`` is None when the run finished, else why and where it stopped."""

    path: str
    rows: list[Any] = field(default_factory=list)
    elapsed_s: float = 0.0
    budget_s: float = 0.0
    last_frame: int = 0  # the highest frame number seen in the output (0 if unknown)
    cut: str | None = None
    error: str | None = None  # tshark's own complaint (exit status and the end of stderr)

    @property
    def complete(self) -> bool:
        return self.cut is None and self.error is None


def tshark_fields(
    path: str | os.PathLike[str],
    fields: Sequence[str],
    display_filter: str | None = None,
    budget_s: float = 60.0,
    extra_args: Sequence[str] = (),
    aggregator: str = "\x1f",
) -> Dissection:
    """``tshark -T fields`` rows (one list of strings per frame; ``frame.number`` is added first) within budget.

    Several occurrences of a field are joined with ``aggregator`` (unit separator by default, which no name or
    URI holds). Output is read line by line as tshark writes it (``-l``), so a cut run keeps every whole row."""
    command = [TSHARK, "-n", "-l", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
               "-E", f"aggregator={aggregator}", "-e", "frame.number"]
    for name in fields:
        command += ["-e", name]
    if display_filter:
        command += ["-Y", display_filter]
    command += list(extra_args)
    result = Dissection(path=str(path), budget_s=budget_s)

    def keep(line: bytes) -> None:
        row = line.rstrip(b"\n").decode("utf-8", "replace").split("\t")
        result.rows.append(row)
        if row[0].isdigit():
            result.last_frame = int(row[0])

    _run(command, budget_s, keep, result)
    return result


def _run(command: list[str], budget_s: float, keep: Callable[[bytes], None], result: Dissection) -> None:
    start = time.monotonic()
    # own process group, so the kill reaches dumpcap or any helper tshark starts
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    lines: queue.Queue[bytes | None] = queue.Queue(maxsize=10000)
    stderr: list[bytes] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def drain_stderr() -> None:
        assert process.stderr is not None
        stderr.append(process.stderr.read())

    threads = [threading.Thread(target=pump, daemon=True), threading.Thread(target=drain_stderr, daemon=True)]
    for thread in threads:
        thread.start()
    deadline = start + budget_s
    finished = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if line is None:
            finished = True
            break
        keep(line)
    if not finished:
        _kill(process)
        size = Path(result.path).stat().st_size if Path(result.path).exists() else 0
        result.cut = (f"budget of {budget_s:g} s spent; stopped after frame {result.last_frame} "
                      f"({len(result.rows)} rows kept) of a {size}-byte capture")
    code = process.wait()
    for thread in threads:
        thread.join(timeout=1.0)
    result.elapsed_s = time.monotonic() - start
    if finished and code != 0:
        tail = b"".join(stderr).decode("utf-8", "replace").strip().splitlines()[-3:]
        result.error = f"tshark exited with {code}: {' / '.join(tail)}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def pyshark_packets(
    path: str | os.PathLike[str],
    visit: Callable[[Any], Any],
    display_filter: str | None = None,
    budget_s: float = 60.0,
) -> Dissection:
    """Run pyshark's FileCapture over ``path``, calling ``visit(packet)`` per packet until done or out of budget;
    the values ``visit`` returns (other than None) are the rows. At the budget the tshark processes under pyshark
    are killed from a timer thread, so a tshark that stalls inside one packet ends the iteration too."""
    import pyshark  # imported here: it starts an event loop policy on import that the engine does not need

    result = Dissection(path=str(path), budget_s=budget_s)
    start = time.monotonic()
    capture = pyshark.FileCapture(str(path), display_filter=display_filter, keep_packets=False)
    stop = threading.Event()

    def expire() -> None:
        stop.set()
        for process in list(getattr(capture, "_running_processes", ())):
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    timer = threading.Timer(budget_s, expire)
    timer.daemon = True
    timer.start()
    try:
        for packet in capture:
            result.last_frame = int(packet.number)
            value = visit(packet)
            if value is not None:
                result.rows.append(value)
            if stop.is_set():
                break
    except Exception as exc:  # pyshark surfaces tshark's failures (and our kill) as assorted exception types
        if not stop.is_set():
            result.error = f"{type(exc).__name__}: {exc}"
    finally:
        timer.cancel()
        capture.close()
    if stop.is_set():
        result.cut = (f"budget of {budget_s:g} s spent; stopped after frame {result.last_frame} "
                      f"({len(result.rows)} rows kept)")
    result.elapsed_s = time.monotonic() - start
    return result
