"""Flow meters: PacketBatch in, expired bidirectional flows out as FlowBatch; and flows as ECS events."""

from collectors.flows.events import flow_events
from collectors.flows.reference import ReferenceFlowMeter

__all__ = ["ReferenceFlowMeter", "flow_events"]
