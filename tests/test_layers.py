"""The import contract: each floor of the engine imports only the floors below it (docs/architecture.md).

Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import of a higher floor is still
a dependency on it. A module that belongs to no floor fails too, so a new package must say where it stands.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from .conftest import REPO

# (floor, module prefixes), lowest first; a module may import its own floor and the floors below it
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("soc.core",)),
    ("collectors", ("collectors",)),
    ("detectors", ("detectors",)),
    ("state and work", ("soc.store", "soc.alerts", "soc.audit", "soc.triage", "soc.incidents", "soc.response",
                        "soc.posture", "soc.coverage", "soc.jobs")),
    ("engine", ("soc.engine",)),
    ("interfaces", ("soc.cli", "soc.web", "lab")),
]
PACKAGES = ("soc", "collectors", "detectors", "lab")
# floors that import nothing of collectors/detectors (the table in docs/architecture.md)
NOT_ALLOWED = {"state and work": {"collectors", "detectors"}}


def floor_of(module: str) -> int | None:
    for level, (_, prefixes) in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def imports(root: Path) -> dict[str, set[str]]:
    """Module name -> the modules of ours it imports, for every .py file of the packages under ``root``."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
            found[module] = {n for n in names if n.split(".")[0] in PACKAGES and n != "soc"}
    return found


def violations(root: Path) -> list[str]:
    problems = []
    for module, targets in sorted(imports(root).items()):
        level = floor_of(module)
        if level is None:
            if module != "soc":
                problems.append(f"{module} belongs to no floor")
            continue
        name = FLOORS[level][0]
        for target in sorted(targets):
            target_level = floor_of(target)
            if target_level is None:
                problems.append(f"{module} imports {target}, which belongs to no floor")
            elif target_level > level:
                problems.append(f"{module} ({name}) imports {target} ({FLOORS[target_level][0]}), a higher floor")
            elif FLOORS[target_level][0] in NOT_ALLOWED.get(name, set()):
                problems.append(f"{module} ({name}) imports {target} ({FLOORS[target_level][0]}): not allowed")
    return problems


def test_every_floor_imports_only_the_floors_below_it() -> None:
    assert violations(REPO) == []


def test_a_planted_back_edge_is_reported(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    model = tmp_path / "soc" / "core" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _late() -> None:\n    from soc.engine.engine import Engine  # noqa\n")
    store = tmp_path / "soc" / "store" / "base.py"
    store.write_text(store.read_text() + "\nimport detectors.network.portscan  # noqa\n")
    before = set(violations(REPO))
    assert [v for v in violations(tmp_path) if v not in before] == [
        "soc.core.model (foundation) imports soc.engine.engine (engine), a higher floor",
        "soc.store.base (state and work) imports detectors.network.portscan (detectors): not allowed",
    ]
