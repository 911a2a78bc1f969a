"""Shared paths for the log-collector tests: third-party data is read in place from ../shared."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
EVTX = SHARED / "evtx"


@pytest.fixture(scope="session")
def evtx_dir() -> Path:
    if not EVTX.is_dir():
        pytest.fail(f"{EVTX} is missing: the log tests read the real EVTX samples there")
    return EVTX
