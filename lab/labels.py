"""Ground truth for the evaluation: which attack a capture holds, who did it to whom, when, and which flows are
part of it. The generator writes one labels file per scenario; ``lab/labels/`` holds the same for real captures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from soc.core.errors import SocError


class LabelError(SocError):
    """A labels file is missing, unreadable or names something impossible."""


@dataclass(slots=True)
class AttackLabel:
    """One attack. ``detector`` is the rule id that must report it; ``subject`` the address the alert is about
    (the attacker, or the victim for floods from spoofed sources). Times are nanoseconds since the epoch."""

    attack: str
    detector: str
    subject: str
    attacker: str
    victims: list[str]
    start_ns: int
    end_ns: int
    flow_keys: list[str] = field(default_factory=list)
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackLabel:
        return cls(**data)


@dataclass(slots=True)
class CaptureLabels:
    """Everything known about one capture. ``background_detector_free``: the background must raise nothing."""

    capture: str
    scenario: str
    seed: int | None
    start_ns: int
    end_ns: int
    attacks: list[AttackLabel] = field(default_factory=list)
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> CaptureLabels:
        try:
            attacks = [AttackLabel.from_dict(a) for a in data.get("attacks", [])]
            return cls(capture=data["capture"], scenario=data["scenario"], seed=data.get("seed"),
                       start_ns=int(data.get("start_ns", 0)), end_ns=int(data.get("end_ns", 0)), attacks=attacks,
                       description=data.get("description", ""))
        except (KeyError, TypeError) as exc:
            raise LabelError(f"not a labels record: {exc}", path=source) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def attack_flow_keys(self) -> set[str]:
        return {key for attack in self.attacks for key in attack.flow_keys}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")


def load_labels(path: Path) -> list[CaptureLabels]:
    """A scenario's JSON labels file (one capture) or a YAML/JSON list of captures (``lab/labels/*.yaml``)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"cannot read labels: {exc}", path=str(path)) from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise LabelError(f"labels are not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}", path=str(path)) from None
    records = data.get("captures", data) if isinstance(data, dict) and "captures" in data else data
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise LabelError("expected a labels record or a list of them under 'captures'", path=str(path))
    return [CaptureLabels.from_dict(r, f"{path} (capture {i + 1})") for i, r in enumerate(records)]
