"""What every step of compiling a rule shares: the rule being compiled (for its errors), the placeholder values,
and the shapes of the functions the steps hand each other."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionItem, ConditionValueExpression

from detectors.sigma.errors import UnsupportedFeature
from soc.core.model import Event

ValueTest = Callable[[Any], bool]  # one present, scalar value -> bool
Matcher = Callable[[Event], bool]
ConditionNode = ConditionItem | ConditionFieldEqualsValueExpression | ConditionValueExpression | None


@dataclass(frozen=True, slots=True)
class CompileContext:
    """The rule file and rule being compiled, and the field (``key``) being compiled when there is one."""

    path: str = ""
    rule: str = ""
    placeholders: Mapping[str, list[str]] = field(default_factory=dict)
    key: str | None = None

    def at(self, key: str) -> CompileContext:
        """The same context while compiling the values of field ``key`` (so that its errors name the field)."""
        return dataclasses.replace(self, key=key)

    def unsupported(self, reason: str, message: str, line: int | None = None) -> UnsupportedFeature:
        return UnsupportedFeature(reason, message, self.path, self.rule, line=line, key=self.key)
