"""Several `soc` processes on one soc.yaml at once: while `soc serve` and `soc run` keep running, the other
commands (alerts list, replay, audit verify) finish; two replays at once store each alert once."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ATTACKS, REPO

SYNSCAN = ATTACKS / "chrissanders__synscan.pcapng"
NMAP = ATTACKS / "esnet-security__nmap_80_all.pcap"
BRUTE_FORCE_SOURCE = "203.0.113.77"
TIMEOUT = 120  # seconds a command may take; far more than any of these needs when nothing waits for a lock


def soc(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soc.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=TIMEOUT)


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "soc.cli.main", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGINT (Ctrl-C), then the exit code and stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return process.returncode, stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auth_lines(first: int, last: int, source: str = BRUTE_FORCE_SOURCE) -> str:
    """sshd failures from one source, ten seconds apart: ten within five minutes raise the SSH brute force."""
    return "".join(f"Nov 25 07:{40 + n * 10 // 60:02d}:{n * 10 % 60:02d} web01 sshd[{1000 + n}]: Failed password "
                   f"for root from {source} port {40000 + n} ssh2\n" for n in range(first, last))


def write_config(folder: Path, store_url: str, es_prefix: str | None = None, request_timeout: float = 30) -> Path:
    """A soc.yaml with the store, a spool folder, one followed auth log and our Sigma rules."""
    es = (f"  elasticsearch: {{index_prefix: {es_prefix}, request_timeout: {request_timeout}, max_retries: 0}}\n"
          if es_prefix else "")
    config = folder / "soc.yaml"
    config.write_text(
        f"store:\n  url: {store_url}\n  spool_dir: spool\n{es}"
        f"collectors:\n  logs:\n    - {{type: file, path: {folder / 'auth.log'}, format: syslog}}\n"
        f"sigma:\n  rules: [{REPO / 'rules'}]\n")
    return config


def listed(folder: Path) -> list[dict]:
    result = soc("alerts", "list", "--json", "-c", "soc.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def wait_for(condition: object, what: str, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():  # type: ignore[operator]
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process ended first ({process.returncode}): {process.communicate()[1]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {TIMEOUT} s")
        time.sleep(0.5)


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "elasticsearch"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A folder with soc.yaml on the embedded store, or on the test Elasticsearch under a fresh prefix."""
    if request.param == "sqlite":
        write_config(tmp_path, "sqlite:///soc.db")
    else:
        write_config(tmp_path, request.getfixturevalue("es_url"), request.getfixturevalue("es_prefix"))
    return tmp_path


def test_commands_finish_while_serve_and_run_keep_running(folder: Path) -> None:
    added = soc("users", "add", "lan", "--role", "analyst", "--password-stdin", "-c", "soc.yaml", cwd=folder,
                stdin="analyst-pass-1\n")
    assert added.returncode == 0, added.stderr
    (folder / "auth.log").write_text(auth_lines(0, 6))
    port = free_port()
    serve = start("serve", "--port", str(port), "-c", "soc.yaml", cwd=folder)
    run = start("run", "-c", "soc.yaml", "--state-dir", "state", cwd=folder)
    try:
        wait_for(lambda: serving(port), "the console answers", serve)
        with open(folder / "auth.log", "a") as log:  # the followed file grows while `soc run` watches it
            log.write(auth_lines(6, 14))
        wait_for(lambda: any(d["source"]["ip"] == BRUTE_FORCE_SOURCE for d in listed(folder)),
                 "soc run stores the SSH brute force", run)

        alerts = soc("alerts", "list", "-c", "soc.yaml", cwd=folder)
        assert alerts.returncode == 0, alerts.stderr
        assert BRUTE_FORCE_SOURCE in alerts.stdout
        replay = soc("replay", "-q", "-c", "soc.yaml", str(SYNSCAN), cwd=folder)
        assert replay.returncode == 0, replay.stderr
        verify = soc("audit", "verify", "-c", "soc.yaml", cwd=folder)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert sorted(d["source"]["ip"] for d in listed(folder)) == sorted([BRUTE_FORCE_SOURCE, "172.16.0.8"])
        assert serve.poll() is None and run.poll() is None, "serve and run keep running meanwhile"
        assert serving(port)
    finally:
        run_code, run_err = stop(run)
        serve_code, serve_err = stop(serve)
    assert run_code == 0, run_err
    assert serve_code in (0, -signal.SIGINT), serve_err
    assert not list((folder / "spool").glob("segment-*.jsonl")), "nothing was left waiting in the spool"


def test_two_replays_at_once_both_finish_and_store_each_alert_once(folder: Path, tmp_path_factory: pytest.
                                                                   TempPathFactory) -> None:
    alone = tmp_path_factory.mktemp("alone")  # the same captures replayed once, into a store of their own
    assert soc("replay", "-q", str(SYNSCAN), str(NMAP), cwd=alone).returncode == 0
    expected = sorted(d["event"]["id"] for d in listed_default(alone))

    replays = [start("replay", "-q", "-c", "soc.yaml", str(SYNSCAN), str(NMAP), cwd=folder) for _ in range(2)]
    outcomes = []
    for replay in replays:
        _, stderr = replay.communicate(timeout=TIMEOUT)
        outcomes.append((replay.returncode, stderr))
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert sorted(d["event"]["id"] for d in listed(folder)) == expected


def listed_default(folder: Path) -> list[dict]:
    result = soc("alerts", "list", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]
