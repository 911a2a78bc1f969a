"""`soc run` on a real interface: a veth pair into a network namespace of our own, known traffic sent into it
with scapy, the flows and alerts that come out checked; and a restart that resumes from the ring folder."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ATTACKS

NAMESPACE, HOST_SIDE, NS_SIDE = f"soct{os.getpid() % 10000}", f"soca{os.getpid() % 10000}", f"socb{os.getpid() % 10000}"
HOST_IP, SCANNER_IP = "198.18.7.1", "198.18.7.2"  # the benchmark range, on our own veth pair only

needs_root = pytest.mark.skipif(
    (os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("dumpcap")) and not os.environ.get("CI"),
    reason="live capture needs root, iproute2 and dumpcap (CI has them)",
)


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@pytest.fixture
def veth() -> Iterator[str]:
    sh("ip", "netns", "add", NAMESPACE)
    try:
        sh("ip", "link", "add", HOST_SIDE, "type", "veth", "peer", "name", NS_SIDE)
        sh("ip", "link", "set", NS_SIDE, "netns", NAMESPACE)
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_SIDE)
        sh("ip", "link", "set", HOST_SIDE, "up")
        sh("ip", "netns", "exec", NAMESPACE, "ip", "addr", "add", f"{SCANNER_IP}/24", "dev", NS_SIDE)
        sh("ip", "netns", "exec", NAMESPACE, "ip", "link", "set", NS_SIDE, "up")
        yield HOST_SIDE
    finally:
        subprocess.run(["ip", "link", "del", HOST_SIDE], capture_output=True)
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)


def soc_run(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "soc.cli.main", "run", "--store", f"sqlite:///{tmp_path / 'live.db'}",
         "--state-dir", str(tmp_path / "state"), "--events", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def stored(tmp_path: Path) -> tuple[list[dict], list[dict]]:
    db = sqlite3.connect(tmp_path / "live.db")
    alerts = [json.loads(row[0]) for row in db.execute("SELECT doc FROM alerts")]
    events = [json.loads(row[0]) for row in db.execute("SELECT doc FROM events")]
    return alerts, events


def wait_for_capture(tmp_path: Path, timeout: float = 120) -> None:
    """dumpcap has opened its first ring file: packets sent from now on are captured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((tmp_path / "state" / "ring").glob("ring_*.pcapng")):
            time.sleep(0.5)
            return
        time.sleep(0.1)
    raise AssertionError("dumpcap did not start capturing")


@needs_root
def test_live_capture_of_a_syn_scan(tmp_path: Path, veth: str) -> None:
    run = soc_run(tmp_path, "--interface", veth, "--duration", "15")
    wait_for_capture(tmp_path)
    scan = (f"from scapy.all import IP, TCP, send; send([IP(src='{SCANNER_IP}', dst='{HOST_IP}')/"
            f"TCP(sport=40000, dport=p, flags='S', seq=1) for p in range(1, 41)], verbose=False)")
    sh("ip", "netns", "exec", NAMESPACE, sys.executable, "-c", scan)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert "dropped by the kernel 0" in stdout

    alerts, events = stored(tmp_path)
    tcp = sorted((e["source"]["ip"], e["destination"]["ip"], e["destination"]["port"], e["source"]["packets"],
                  e["destination"]["packets"]) for e in events if e["network"]["transport"] == "tcp")
    # each probe: our SYN in, the kernel's RST/ACK out (no listener on the port)
    assert tcp == [(SCANNER_IP, HOST_IP, port, 1, 1) for port in sorted(range(1, 41))]
    [alert] = alerts
    assert alert["source"]["ip"] == SCANNER_IP and alert["destination"]["ip"] == HOST_IP
    assert alert["soc"]["alert"]["evidence"]["distinct_ports"] == 40


@needs_root
def test_restart_processes_what_the_ring_holds_exactly_once(tmp_path: Path, veth: str) -> None:
    ring = tmp_path / "state" / "ring"
    ring.mkdir(parents=True)
    # a file the previous run's dumpcap finished but that run never read (it was killed)
    shutil.copy(ATTACKS / "chrissanders__synscan.pcapng", ring / "ring_00007_20261125080000.pcapng")
    first = soc_run(tmp_path, "--interface", veth, "--duration", "2")
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    alerts, events = stored(tmp_path)
    assert [a["source"]["ip"] for a in alerts] == ["172.16.0.8"]
    flows_after_first = len(events)
    assert flows_after_first >= 1994
    assert not any(ring.glob("ring_00007_*"))

    second = soc_run(tmp_path, "--interface", veth, "--duration", "2")
    _, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    alerts, events = stored(tmp_path)
    assert [a["source"]["ip"] for a in alerts] == ["172.16.0.8"]
    assert len([e for e in events if e["source"]["ip"] == "172.16.0.8"]) == 1994  # not read twice


@needs_root
def test_lab_replay_onto_an_interface_is_captured_live(tmp_path: Path, veth: str) -> None:
    """`soc lab replay --interface`: a capture sent out of the namespace's end, `soc run` on ours."""
    run = soc_run(tmp_path, "--interface", veth, "--duration", "40")
    wait_for_capture(tmp_path)
    scan = ATTACKS / "esnet-security__nmap_80_all.pcap"
    sh("ip", "netns", "exec", NAMESPACE, sys.executable, "-m", "soc.cli.main", "lab", "replay", str(scan),
       "--interface", NS_SIDE, "--speed", "100")
    _, stderr = run.communicate(timeout=180)
    assert run.returncode == 0, stderr
    alerts, events = stored(tmp_path)
    assert [(a["rule"]["id"], a["source"]["ip"]) for a in alerts] == [("soc-net-portscan", "10.87.1.10")]
    tcp = {(e["source"]["ip"], e["destination"]["port"]) for e in events if e["network"]["transport"] == "tcp"}
    assert ("10.87.1.10", 80) in tcp and ("10.87.1.10", 443) in tcp
