#!/usr/bin/env python3
"""A real Elasticsearch for development and tests: fetch the integ-test-zip distribution from Maven Central with
Maven, cache it outside the repo, run it on 127.0.0.1 on a free port with a small heap, stop it.

    python scripts/es_server.py fetch           # download (once) and unpack into the cache
    python scripts/es_server.py run [--port N]  # run in the foreground until Ctrl-C; prints the URL

Elasticsearch refuses to run as root, so as root it runs as the system user ``soc-es`` (created if missing).
The Python client in pyproject.toml is pinned to this server's major version (8).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

VERSION = os.environ.get("SOC_ES_VERSION", "8.19.21")  # the newest integ-test-zip on Maven Central that runs on JDK 17
ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{VERSION}:zip"
RUN_USER = "soc-es"


def cache_dir() -> Path:
    if os.environ.get("SOC_ES_CACHE"):
        return Path(os.environ["SOC_ES_CACHE"])
    # /root is not readable by the unprivileged user Elasticsearch runs as, so root caches under /var/cache
    return Path("/var/cache/soc") if os.geteuid() == 0 else Path.home() / ".cache" / "soc"


def home() -> Path:
    return cache_dir() / f"elasticsearch-{VERSION}"


def fetch() -> Path:
    """Download the distribution with Maven (cached in ~/.m2) and unpack it into the cache; idempotent."""
    target = home()
    if (target / "bin" / "elasticsearch").exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("mvn not found: install Maven (apt-get install maven) to fetch Elasticsearch")
    subprocess.run([mvn, "-q", "-B", "dependency:get", f"-Dartifact={ARTIFACT}", "-Dtransitive=false"], check=True)
    repo = Path(os.environ.get("MAVEN_REPO", Path.home() / ".m2" / "repository"))
    artifact_dir = repo / "org/elasticsearch/distribution/integ-test-zip/elasticsearch" / VERSION
    archive = artifact_dir / f"elasticsearch-{VERSION}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            extracted = Path(bundle.extract(member, staging))
            mode = member.external_attr >> 16
            if mode:
                extracted.chmod(mode & 0o777)
    (staging / f"elasticsearch-{VERSION}").rename(target)
    staging.rmdir()
    for path in [target, *target.rglob("*")]:  # readable and traversable by the unprivileged user
        path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() else 0))
    return target


def java_home() -> str | None:
    """A JDK for Elasticsearch 8: JAVA_HOME/ES_JAVA_HOME if set, else the one `java` on PATH belongs to."""
    for variable in ("ES_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(variable):
            return os.environ[variable]
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_USER],
                       check=True)
    return RUN_USER


class ElasticsearchServer:
    """One node on loopback. ``start``/``stop`` may be called again: data and port are kept, as on a restart."""

    def __init__(self, port: int | None = None, workdir: Path | None = None, heap: str = "512m") -> None:
        self.port = port or free_port()
        self.transport_port = free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="soc-es-"))
        self.heap = heap
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> ElasticsearchServer:
        es_home = fetch()
        config = self.workdir / "config"
        if not config.exists():
            shutil.copytree(es_home / "config", config)
        for sub in ("data", "logs"):
            (self.workdir / sub).mkdir(exist_ok=True)
        user = _run_user()
        if user:
            account = pwd.getpwnam(user)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JAVA_TOOL", "_JAVA"))}
        env.update(ES_PATH_CONF=str(config), ES_JAVA_OPTS=f"-Xms{self.heap} -Xmx{self.heap}")
        jdk = java_home()
        if jdk:
            env["ES_JAVA_HOME"] = jdk
        settings = {
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": self.transport_port,
            "path.data": self.workdir / "data",
            "path.logs": self.workdir / "logs",
            "xpack.security.enabled": "false",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
        }
        command = [str(es_home / "bin" / "elasticsearch"), *(f"-E{k}={v}" for k, v in settings.items())]
        log = open(self.workdir / "stdout.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, user=user,
                                        start_new_session=True)
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.workdir / "stdout.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Elasticsearch exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s",
                                            timeout=5) as answer:
                    if json.load(answer).get("status") in ("yellow", "green"):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Elasticsearch did not answer on {self.url} within {timeout:.0f} s")

    def stop(self, kill: bool = False) -> None:
        """Stop the node: SIGTERM and wait (or SIGKILL at once with ``kill``, as a crash would)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download and unpack the distribution into the cache")
    run = sub.add_parser("run", help="run a node in the foreground until interrupted")
    run.add_argument("--port", type=int, default=9200)
    args = parser.parse_args()
    if args.command == "fetch":
        print(fetch())
        return
    server = ElasticsearchServer(port=args.port).start()
    print(f"Elasticsearch {VERSION} answers on {server.url} (Ctrl-C stops it)", flush=True)
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()
    sys.exit(0)


if __name__ == "__main__":
    main()
