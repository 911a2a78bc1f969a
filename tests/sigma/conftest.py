"""Shared fixtures: the SigmaHQ rule set compiled once per session (it takes seconds), and the EVTX samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.sigma import RuleSet

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SIGMAHQ = SHARED / "sigma" / "rules"
EVTX = SHARED / "evtx"


@pytest.fixture(scope="session")
def sigmahq() -> RuleSet:
    """Every rule of the SigmaHQ ``rules/`` folder, compiled with our default pipeline."""
    return RuleSet.from_paths([SIGMAHQ])


@pytest.fixture(scope="session")
def windows_rules(sigmahq: RuleSet) -> RuleSet:
    windows = str((SIGMAHQ / "windows").resolve())
    rules = [r for r in sigmahq.rules if str(Path(r.path).resolve()).startswith(windows)]
    return RuleSet(rules, [], sigmahq.report)
