"""The interface every streaming detector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from soc.model import Alert, FlowBatch


class FlowDetector(ABC):
    """Consumes expired flows in time order; returns alerts whose evidence is complete."""

    rule_id: str

    @abstractmethod
    def observe(self, flows: FlowBatch) -> list[Alert]:
        """Take a batch of flows; return the alerts of the windows this batch closed."""

    @abstractmethod
    def flush(self) -> list[Alert]:
        """End of input: return the alerts of every window still open."""
