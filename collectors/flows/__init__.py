"""Flow meters: PacketBatch in, expired bidirectional flows out as FlowBatch; and flows as ECS events.

``FlowMeter`` (numba) is the one to use; ``ReferenceFlowMeter`` (plain Python) defines its behaviour and checks it.
"""

from collectors.flows.events import flow_events
from collectors.flows.meter import FlowMeter
from collectors.flows.reference import ReferenceFlowMeter

__all__ = ["FlowMeter", "ReferenceFlowMeter", "flow_events"]
