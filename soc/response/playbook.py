"""Response playbooks as data (``playbooks/*.yml``), shaped after CACAO 2.0: an id, a trigger, and ordered steps,
each of a registered type, with an optional condition. Loading validates everything and names the file, the
step and the field of any error.

    id: playbook--ssh-brute-force
    name: SSH brute force
    trigger: {techniques: [T1110], min_severity: medium}
    steps:
      - {id: look-up, type: enrich}
      - {id: tell-owner, type: notify, channel: email, to: ["{system.owner}@example.gov.vn"],
         when: {min_system_level: 3}}
      - {id: block, type: contain, target: source.ip}          # waits for a recorded approval
      - {id: open-case, type: incident, title: "SSH brute force from {alert.source.ip}"}
      - {id: notice, type: report, form: initial}
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soc.core.errors import SocError
from soc.core.model import Alert, Severity, get_field
from soc.core.yamlfile import load_model


class PlaybookError(SocError):
    """A playbook file that cannot be used, or a run that cannot go on."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    """All given parts must hold. ``fields`` maps ECS fields of the alert to a value or glob."""

    min_severity: str | None = None
    min_system_level: int | None = Field(None, ge=1, le=5)
    fields: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_severity(self) -> Condition:
        if self.min_severity is not None:
            Severity.parse(self.min_severity)
        return self

    def holds(self, alert: Alert) -> bool:
        if self.min_severity is not None and alert.severity < Severity.parse(self.min_severity):
            return False
        if self.min_system_level is not None and (alert.system_level or 0) < self.min_system_level:
            return False
        doc = alert.to_ecs()
        return all(fnmatch.fnmatchcase(str(get_field(doc, name, "")), pattern) for name, pattern in self.fields.items())


class Trigger(Condition):
    rules: list[str] = Field(default_factory=list, description="rule ids or globs")
    techniques: list[str] = Field(default_factory=list, description="ATT&CK ids; T1110 also covers T1110.001")

    def matches(self, alert: Alert) -> bool:
        if self.rules and not any(fnmatch.fnmatchcase(alert.rule.id, r) for r in self.rules):
            return False
        if self.techniques and not any(
            t.id == wanted or t.id.startswith(wanted + ".") for t in alert.techniques for wanted in self.techniques
        ):
            return False
        return self.holds(alert)


class _Step(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = ""
    when: Condition | None = None
    requires_approval: bool = False


class EnrichStep(_Step):
    type: Literal["enrich"]
    related_hours: float = Field(24.0, gt=0, description="related alerts of the same addresses within this time")


class NotifyStep(_Step):
    type: Literal["notify"]
    channel: Literal["email", "webhook"]
    to: list[str] = Field(default_factory=list, description="addresses (email); templates allowed")
    url: str | None = None
    subject: str = "[soc] {alert.severity_label}: {alert.rule.name} on {system.name}"
    body: str = ("{alert.message}\n\nAlert {alert.id}, first seen {alert.first_seen}, system {system.name} "
                 "(level {system.security_level}, owner {system.owner}).")

    @model_validator(mode="after")
    def _destination(self) -> NotifyStep:
        if self.channel == "email" and not self.to:
            raise ValueError("an email step needs 'to'")
        if self.channel == "webhook" and not self.url:
            raise ValueError("a webhook step needs 'url'")
        return self


class ContainStep(_Step):
    type: Literal["contain"]
    action: Literal["block_ip"] = "block_ip"
    target: str = Field("source.ip", description="the ECS field of the alert holding the address to block")
    requires_approval: bool = True  # disrupting service always waits for a person

    @model_validator(mode="after")
    def _always_approved(self) -> ContainStep:
        if not self.requires_approval:
            raise ValueError("a contain step disrupts service: it cannot run without approval")
        return self


class IncidentStep(_Step):
    type: Literal["incident"]
    title: str = "{alert.rule.name}: {alert.message}"
    serious: bool = False


class ReportStep(_Step):
    type: Literal["report"]
    form: Literal["initial", "closing"] = "initial"


Step = Annotated[EnrichStep | NotifyStep | ContainStep | IncidentStep | ReportStep, Field(discriminator="type")]


class Playbook(_Strict):
    id: str = Field(pattern=r"^playbook--[a-z0-9][a-z0-9-]*$")
    name: str
    description: str = ""
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    source: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Playbook:
        ids = [s.id for s in self.steps]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"step ids must be unique: {', '.join(repeated)}")
        return self

    def step(self, step_id: str) -> Any:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise PlaybookError(f"playbook {self.id} has no step {step_id!r}")


def load_playbook(path: Path) -> Playbook:
    return load_model(Playbook, path, PlaybookError, extra={"source": str(path)})


def load_playbooks(paths: list[Path]) -> list[Playbook]:
    """Every ``*.yml``/``*.yaml`` under ``paths``; ids must be unique across them."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    playbooks = [load_playbook(f) for f in files]
    seen: dict[str, str] = {}
    for playbook in playbooks:
        if playbook.id in seen:
            raise PlaybookError(f"playbook id {playbook.id} is used by {seen[playbook.id]} too", path=playbook.source)
        seen[playbook.id] = playbook.source
    return playbooks
