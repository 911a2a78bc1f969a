"""Posture profiles: one YAML file per regulation (shipped in ``soc/posture/profiles``), each check with the
article it comes from, so an auditor can check the rule and not only its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from soc.core.errors import SocError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


class PostureError(SocError):
    """A posture profile that cannot be read, or a system that is not in the inventory."""


@dataclass(slots=True, frozen=True)
class CheckSpec:
    id: str
    kind: str  # the registered check class that evaluates it (soc.posture.checks)
    title: str
    source: str
    min_level: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str) -> CheckSpec:
        missing = [k for k in ("id", "kind", "title", "source") if not data.get(k)]
        if missing:
            raise PostureError(f"check {data.get('id', '?')} lacks {', '.join(missing)}", path=path)
        return cls(id=str(data["id"]), kind=str(data["kind"]), title=str(data["title"]), source=str(data["source"]),
                   min_level=int(data.get("min_level", 1)), params=dict(data.get("params") or {}))


@dataclass(slots=True, frozen=True)
class Profile:
    id: str
    title: str
    checks: tuple[CheckSpec, ...]

    @classmethod
    def from_yaml(cls, path: Path) -> Profile:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PostureError(f"cannot read posture profile: {exc}", path=str(path)) from None
        if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
            raise PostureError("a posture profile is a mapping with id, title and a list of checks", path=str(path))
        return cls(id=str(data.get("id") or path.stem), title=str(data.get("title") or ""),
                   checks=tuple(CheckSpec.from_dict(c, str(path)) for c in data["checks"]))


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """A shipped profile by name (``vn-decree85-2016``), or a profile file by path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PostureError(f"no posture profile {name!r}: use one of {', '.join(profile_names())} or a file")
    return Profile.from_yaml(path)
