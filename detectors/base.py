"""The interface every streaming detector implements: an engine observer (soc.core.plugins) fed flows or packets."""

from __future__ import annotations

from abc import abstractmethod

from soc.core.model import Alert, FlowBatch, PacketBatch
from soc.core.plugins import Observer, Output


class FlowDetector(Observer):
    """Consumes expired flows in time order; returns alerts whose evidence is complete."""

    rule_id: str

    @abstractmethod
    def observe(self, flows: FlowBatch) -> list[Alert]:
        """Take a batch of flows; return the alerts of the windows this batch closed."""

    @abstractmethod
    def flush(self) -> list[Alert]:
        """End of input: return the alerts of every window still open."""

    def on_flows(self, flows: FlowBatch) -> Output:
        return self.observe(flows)

    def on_finish(self) -> Output:
        return self.flush()


class PacketDetector(Observer):
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

    def on_packets(self, batch: PacketBatch) -> Output:
        return self.observe_packets(batch)

    def on_finish(self) -> Output:
        return self.flush()
