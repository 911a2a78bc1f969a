"""Shared fixtures: the real captures in ../shared and a real Elasticsearch node."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from soc.core.config import ElasticsearchSettings, StoreSettings
from soc.core.model import Alert, Rule, Severity, Technique
from soc.store import AlertStore, open_store

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ATTACKS = SHARED / "pcaps" / "attacks"


def load_es_server_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("es_server", REPO / "scripts" / "es_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["es_server"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read the real captures and logs there")
    return SHARED


@pytest.fixture(scope="session")
def es_server() -> Iterator[object]:
    """A real Elasticsearch node started for this test session (restartable), or None with SOC_TEST_ES_URL."""
    if os.environ.get("SOC_TEST_ES_URL"):
        yield None
        return
    es_server = load_es_server_module()
    server = es_server.ElasticsearchServer()
    try:
        server.start()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Elasticsearch must run in CI: {exc}")
        pytest.skip(f"Elasticsearch could not be started here: {exc}")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def es_url(es_server: object) -> str:
    return os.environ.get("SOC_TEST_ES_URL") or es_server.url  # type: ignore[attr-defined]


@pytest.fixture
def es_prefix(request: pytest.FixtureRequest) -> str:
    """A fresh index prefix per test, so tests never see each other's documents."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")[:30]
    unique = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    return f"soctest-{name}-{unique}-{os.getpid()}"


RULE = Rule("test-rule", "Test rule", "tests", "a rule for tests", "https://example.org/rule")


def make_alert(n: int, severity: Severity = Severity.MEDIUM, count: int = 1, bucket: int = 7) -> Alert:
    return Alert(
        rule=RULE,
        severity=severity,
        group_key=f"10.0.{n // 256}.{n % 256}",
        time_bucket=bucket,
        first_seen=f"2026-11-{1 + n % 28:02d}T10:00:00.000000Z",
        last_seen=f"2026-11-{1 + n % 28:02d}T10:00:30.000000Z",
        message=f"alert number {n}",
        techniques=[Technique("T1046", "Network Service Discovery", "TA0007", "Discovery")],
        ecs={"source": {"ip": f"10.0.{n // 256}.{n % 256}"}, "destination": {"ip": "192.0.2.1", "port": 22}},
        evidence={"ports": [22, 80, n], "note": "x"},
        count=count,
    )


@pytest.fixture(params=["sqlite", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    if request.param == "sqlite":
        settings = StoreSettings(url=f"sqlite:///{tmp_path / 'alerts.db'}")
    else:
        es_url = request.getfixturevalue("es_url")
        prefix = request.getfixturevalue("es_prefix")
        settings = StoreSettings(url=es_url, elasticsearch=ElasticsearchSettings(index_prefix=prefix))
    with open_store(settings) as opened:
        yield opened


