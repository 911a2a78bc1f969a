"""Start-up of the read-only `soc` commands: each one run N times, each time in a fresh process, against an empty
SQLite store and one holding 1,000 alerts; prints the median wall time (and CPU time, steadier on a shared
machine) per command, then the top import costs of `soc alerts list` from ``python -X importtime``.

    python bench/startup.py                 # 15 runs per command and store
    python bench/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from soc.core.config import StoreSettings
from soc.core.model import Alert, Rule, Severity, Technique
from soc.store import open_store

RULE = Rule("soc-net-portscan", "Port scan", "soc")


def build_store(path: Path, alerts: int) -> str:
    """A SQLite store with ``alerts`` alerts (distinct sources, days and severities); returns one alert's id."""
    batch = [
        Alert(rule=RULE, severity=Severity(1 + n % 5), group_key=f"10.1.{n // 256}.{n % 256}", time_bucket=n,
              first_seen=f"2026-11-{1 + n % 28:02d}T10:00:00.000000Z",
              last_seen=f"2026-11-{1 + n % 28:02d}T10:05:00.000000Z", message=f"port scan number {n}",
              techniques=[Technique("T1046", "Network Service Discovery", "TA0007", "Discovery")],
              ecs={"source": {"ip": f"10.1.{n // 256}.{n % 256}"}, "destination": {"ip": "192.0.2.1"}},
              evidence={"ports": [22, 80, 443], "probes": n})
        for n in range(alerts)
    ]
    with open_store(StoreSettings(url=f"sqlite:///{path}")) as store:
        store.write(batch)
    return batch[0].id if batch else "no-such-alert"


def soc_command() -> list[str]:
    """The installed console script beside this interpreter (what users run), else ``python -m soc.cli.main``."""
    script = Path(sys.executable).parent / "soc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "soc.cli.main"]


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = 0  # reaped by wait4 above: Popen must not wait for it again
    return wall, usage.ru_utime + usage.ru_stime


def import_costs(command: list[str], cwd: Path, top: int) -> None:
    """The modules that cost most in one run (self time, µs) and the same summed by top-level package."""
    python = [sys.executable, "-X", "importtime", "-m", "soc.cli.main", *command]
    stderr = subprocess.run(python, cwd=cwd, capture_output=True, text=True, check=False).stderr
    rows: list[tuple[int, int, str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        self_us, cumulative, name = int(fields[0]), int(fields[1]), fields[2].strip()
        rows.append((self_us, cumulative, name))
    total = sum(r[0] for r in rows)
    print(f"\n-X importtime of `soc {' '.join(command)}`: {len(rows)} modules, {total / 1000:.0f} ms of imports")
    print(f"  top {top} modules by self time:")
    for self_us, cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"    {self_us / 1000:7.1f} ms self {cumulative / 1000:7.1f} ms cumulative  {name}")
    packages: dict[str, int] = defaultdict(int)
    for self_us, _, name in rows:
        packages[name.split(".")[0] if not name.startswith("soc.") else ".".join(name.split(".")[:2])] += self_us
    print(f"  top {top} packages (self time summed):")
    for name, self_us in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {self_us / 1000:7.1f} ms  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per command and store")
    parser.add_argument("--alerts", type=int, default=1000, help="alerts in the full store")
    parser.add_argument("--top", type=int, default=10, help="import costs to list")
    args = parser.parse_args()

    soc = soc_command()
    work = Path(tempfile.mkdtemp(prefix="soc-startup-"))  # no soc.yaml here: the defaults, as in a fresh folder
    try:
        stores = {"empty": (work / "empty.db", build_store(work / "empty.db", 0)),
                  f"{args.alerts} alerts": (work / "full.db", build_store(work / "full.db", args.alerts))}
        print(f"{' '.join(soc)}; {args.runs} fresh processes each; load average {os.getloadavg()[0]:.2f}; "
              f"{os.cpu_count()} CPUs\n")
        print(f"{'command':<40} {'store':<12} {'wall median':>12} {'wall min':>9} {'CPU median':>11}")
        cases: list[tuple[str, list[str]]] = [("--help", ["--help"])]
        for label, (path, alert_id) in stores.items():
            url = ["-s", f"sqlite:///{path}"]
            cases += [(label, ["alerts", "list", *url]), (label, ["alerts", "show", alert_id, *url]),
                      (label, ["audit", "verify", *url])]
        for label, command in cases:
            times = [timed([*soc, *command], work) for _ in range(args.runs)]
            walls, cpus = [t[0] for t in times], [t[1] for t in times]
            shown = " ".join(command[:2]) if command[0] != "--help" else "--help"
            print(f"soc {shown:<36} {label if command[0] != '--help' else '-':<12} "
                  f"{statistics.median(walls):>10.3f} s {min(walls):>7.3f} s {statistics.median(cpus):>9.3f} s")
        import_costs(["alerts", "list", "-s", f"sqlite:///{work / 'full.db'}"], work, args.top)
        import_costs(["--help"], work, args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
