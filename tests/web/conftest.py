"""A console over a store holding the real alert of a shared port-scan capture, an alert of another system
whose log fields carry HTML and script, an incident, and one user per role."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from soc.core.config import Settings
from soc.core.model import Alert, Rule, Severity
from soc.engine.sources import replay_files
from soc.incidents import Incidents
from soc.store import AlertQuery
from soc.store.sqlite import SqliteStore
from soc.web import create_app
from soc.web.users import Role, Users

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
SYNSCAN = SHARED / "pcaps" / "attacks" / "chrissanders__synscan.pcapng"
TARGET = "64.13.134.52"
PASSWORD = "correct horse battery"
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"
OWN, OTHER = "cong-thong-tin", "csdl-tai-chinh"


def settings_for(folder: Path) -> Settings:
    return Settings.model_validate({
        "inventory": [
            # level 2: the port-scan playbook stops at its approval gate without e-mailing the owner
            {"name": OWN, "owner": "so-tttt", "security_level": 2, "addresses": [f"{TARGET}/32"],
             "approved_by": "UBND tinh", "approved_on": "2025-03-14", "description": "public service portal"},
            {"name": OTHER, "owner": "so-tai-chinh", "security_level": 3, "addresses": ["10.20.5.0/24"]},
        ],
        "playbooks": [str(REPO / "playbooks")],
        "store": {"url": f"sqlite:///{folder / 'soc.db'}"},
        "base_dir": folder,
    })


def hostile_alert(system: str, n: int) -> Alert:
    """What an attacker controls ends up in alerts: user names, URLs, messages from logs."""
    return Alert(rule=Rule(f"sigma-{n}", f"Suspicious {XSS}", "sigma", description=XSS), severity=Severity.MEDIUM,
                 group_key=f"host-{n}", time_bucket=n, first_seen="2026-11-20T10:00:00.000000Z",
                 last_seen="2026-11-20T10:05:00.000000Z", message=f"login by {XSS}",
                 ecs={"user": {"name": XSS}, "url": {"original": f"/?q={XSS}"}, "source": {"ip": "10.20.5.7"}},
                 evidence={"events": [{"message": XSS}]}, system=system, system_level=3)


@dataclass
class World:
    folder: Path
    settings: Settings
    own_alert: str  # the replayed port scan, on OWN
    other_alert: str  # a hostile alert on OTHER
    own_hostile: str  # a hostile alert on OWN (what the owner sees escaped)
    incident: str


def build_world(folder: Path) -> World:
    settings = settings_for(folder)
    store = SqliteStore(folder / "soc.db")
    replay_files(settings, store, [SYNSCAN])
    [scan] = store.search(AlertQuery())
    other, own_hostile = hostile_alert(OTHER, 1), hostile_alert(OWN, 2)
    store.write([other, own_hostile])
    incident = Incidents(store, settings).open(f"Case {XSS}", [other.id], "analyst")
    users = Users(store, [OWN, OTHER])
    users.add("analyst", Role.ANALYST, PASSWORD, language="en")
    users.add("owner", Role.OWNER, PASSWORD, [OWN], language="en")
    users.add("auditor", Role.AUDITOR, PASSWORD, language="en")
    users.add("admin", Role.ADMIN, PASSWORD, language="vi")
    store.close()
    return World(folder, settings, scan.id, other.id, own_hostile.id, incident.id)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Replayed and populated once (argon2 hashing is slow on purpose); each test gets a copy of the store."""
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def world(built: World, tmp_path: Path) -> World:
    shutil.copy(built.folder / "soc.db", tmp_path / "soc.db")
    return World(tmp_path, settings_for(tmp_path), built.own_alert, built.other_alert, built.own_hostile,
                 built.incident)


@pytest.fixture
def client(world: World) -> TestClient:
    store = SqliteStore(world.folder / "soc.db")
    return TestClient(create_app(world.settings, store, "test-secret-key"), follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"name": name, "password": password, "csrf": token})
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get(answer.headers["location"]).text)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on a real uvicorn server on a free port of 127.0.0.1, in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):  # wait for the socket, not for a fixed time
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Endpoint:
    method: str
    path: str
    route: Any  # the APIRoute, or what FastAPI shows of it once included (same dependant and endpoint)


def endpoints(app: FastAPI) -> tuple[list[Endpoint], list[Any]]:
    """Every (method, path) the app serves, and the routes that are not API routes (static files).

    Newer FastAPI keeps each included router as one entry of ``app.routes``; ``iter_route_contexts`` opens them
    (older ones list the routes themselves, which is what the fallback walks)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
        flat: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        flat = list(app.routes)
    found, others = [], []
    for route in flat:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            found += [Endpoint(method, route.path, route) for method in sorted(route.methods)]
        else:
            others.append(route)
    return found, others
