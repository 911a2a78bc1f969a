"""Shared fixtures: the real captures in ../shared and a real Elasticsearch node."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

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
    name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")[:40]
    return f"soctest-{name}-{os.getpid()}"
