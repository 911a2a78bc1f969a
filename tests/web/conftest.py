"""A console over a store holding the real alert of a shared port-scan capture, an alert of another system
whose log fields carry HTML and script, an incident, and one user per role."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc.core.config import Settings
from soc.core.model import Alert, Rule, Severity
from soc.incidents import Incidents
from soc.pipeline import Replay
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
    Replay(settings, store).run([SYNSCAN])
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


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"name": name, "password": password, "csrf": token})
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get(answer.headers["location"]).text)
