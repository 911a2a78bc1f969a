"""`soc run` with a syslog source: sshd lines over TCP through our Sigma correlation rules into the store."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect(port: int, timeout: float = 120) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def sshd(when: datetime, text: str) -> bytes:
    return f"<38>1 {when:%Y-%m-%dT%H:%M:%SZ} web01 sshd 42 - - {text}\n".encode()


def test_syslog_brute_force_then_success_raises_both_correlations(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "soc.yaml").write_text(
        f"collectors:\n  logs:\n    - {{type: syslog, host: 127.0.0.1, udp_port: null, tcp_port: {port}}}\n"
        f"sigma:\n  rules: [{REPO / 'rules'}]\n")
    run = subprocess.Popen([sys.executable, "-m", "soc.cli.main", "run", "--duration", "20"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=3)
    with connect(port) as stream:
        for i in range(12):
            stream.sendall(sshd(start + timedelta(seconds=10 * i),
                                "Failed password for root from 198.51.100.23 port 51234 ssh2"))
        stream.sendall(sshd(start + timedelta(seconds=150), "Accepted password for root from 198.51.100.23 port "
                                                             "51240 ssh2"))
    _, stderr = run.communicate(timeout=180)
    assert run.returncode == 0, stderr
    rows = sqlite3.connect(tmp_path / "soc.db").execute("SELECT doc FROM alerts").fetchall()
    alerts = {json.loads(r[0])["rule"]["name"]: json.loads(r[0]) for r in rows}
    assert set(alerts) == {"SSH Brute Force From One Source", "SSH Brute Force Followed By Successful Login"}
    brute = alerts["SSH Brute Force From One Source"]
    assert brute["soc"]["alert"]["count"] == 10 and brute["source"]["ip"] == "198.51.100.23"
