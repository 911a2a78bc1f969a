"""The protocol analyzers as one engine plug-in (``analyzers.protocols`` in soc.yaml): DNS, HTTP and TLS metadata
from every packet batch, as ECS events for the Sigma rules and the event store."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from collectors.protocols.base import PARSERS
from collectors.protocols.extractor import ProtocolExtractor
from collectors.protocols.http import HOME_NETWORKS
from soc.core.model import PacketBatch
from soc.core.plugins import Observer, Output, PluginContext, PluginSettings, plugin


class ProtocolSettings(PluginSettings):
    protocols: list[str] = Field(default_factory=lambda: list(PARSERS), description="parsers to run")
    dns: dict[str, Any] = Field(default_factory=dict, description="e.g. {ports: [53, 5353]}")
    http: dict[str, Any] = Field(default_factory=dict, description="e.g. {home_networks: [...], patience_s: 30}")
    tls: dict[str, Any] = Field(default_factory=dict)


class ProtocolAnalyzer(Observer):
    """Runs the extractor on each batch; on a quiet live link, the clock releases requests that wait for their
    response."""

    def __init__(self, extractor: ProtocolExtractor) -> None:
        self.extractor = extractor

    def on_input(self, name: str) -> Output:
        self.extractor.source = name
        return ()

    def on_packets(self, batch: PacketBatch) -> Output:
        return self.extractor.process(batch)

    def on_tick(self, now_ns: int) -> Output:
        return self.extractor.expire(now_ns)

    def on_finish(self) -> Output:
        return self.extractor.finish()


@plugin("protocols", section="analyzers", settings=ProtocolSettings, order=10)
def protocol_analyzer(settings: ProtocolSettings, context: PluginContext) -> Observer:
    """Requests to the inventory's systems count as ``webserver`` traffic (ours to serve), the rest as ``proxy``
    (our users going out), unless the configuration names home networks."""
    config = settings.model_dump(exclude={"enabled"})
    if "home_networks" not in config["http"]:
        inventory = [str(network) for system in context.settings.inventory for network in system.addresses]
        config["http"] = {**config["http"], "home_networks": [*HOME_NETWORKS, *inventory]}
    return ProtocolAnalyzer(ProtocolExtractor.from_dict(config))
