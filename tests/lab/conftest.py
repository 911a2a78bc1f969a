"""Lab test fixtures: every scenario generated once per session into a temporary folder, and the real captures
read in place from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.labels import CaptureLabels
from lab.scenarios import SCENARIOS, generate

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
ATTACKS = SHARED / "pcaps" / "attacks"
REAL_LABELS = Path(__file__).resolve().parents[2] / "lab" / "labels" / "attacks.yaml"
SEED, DURATION = 3, 120.0  # two minutes of background is enough for every attack and keeps the suite quick


@pytest.fixture(scope="session")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, CaptureLabels]]:
    folder = tmp_path_factory.mktemp("lab")
    return {name: generate(name, folder, seed=SEED, duration=DURATION) for name in SCENARIOS}


@pytest.fixture(scope="session")
def attacks_dir() -> Path:
    if not ATTACKS.is_dir():
        pytest.fail(f"{ATTACKS} is missing: the lab tests read the real attack captures there")
    return ATTACKS
