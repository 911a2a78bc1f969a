"""The interface every streaming detector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from soc.core.model import Alert, FlowBatch, PacketBatch


class FlowDetector(ABC):
    """Consumes expired flows in time order; returns alerts whose evidence is complete."""

    rule_id: str

    @abstractmethod
    def observe(self, flows: FlowBatch) -> list[Alert]:
        """Take a batch of flows; return the alerts of the windows this batch closed."""

    @abstractmethod
    def flush(self) -> list[Alert]:
        """End of input: return the alerts of every window still open."""


class PacketDetector(ABC):
    """Consumes decoded packet batches in time order, for what flows do not keep (ARP, DNS names).

    Reads only the packets it needs (a numpy selection over the batch); Python work is per selected record.
    """

    rule_id: str

    @abstractmethod
    def observe_packets(self, batch: PacketBatch) -> list[Alert]:
        """Take a batch of packets; return the alerts of the windows this batch closed."""

    @abstractmethod
    def flush(self) -> list[Alert]:
        """End of input: return the alerts of every window still open."""
