"""Plug-ins: the observers the engine runs (protocol analyzers, network detectors, the Sigma engine, anomaly
models), each registering itself by name with its own settings model.

A plug-in module declares itself with :func:`plugin`; its settings are the ``SECTION.NAME`` mapping of soc.yaml
(``detectors.portscan``, ``analyzers.protocols``), validated by that model when the engine starts or
``soc config check`` runs. The foundation never imports a plug-in: the engine discovers them (``soc.engine.plugins``),
so adding a detector touches only its own module and its tests.

Observers follow nfstream's plug-in hooks: each hook takes what the engine saw and returns what the observer makes of
it — alerts (:class:`~soc.core.model.Alert`) and events (ECS dicts) in one list, routed by the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from soc.core.model import Alert, Event, FlowBatch, PacketBatch

if TYPE_CHECKING:
    from soc.core.config import Settings

Output = Sequence[Alert | Event]
NOTHING: Output = ()
SECTIONS = ("analyzers", "detectors")


class PluginSettings(BaseModel):
    """What every plug-in's settings have."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false: the plug-in is not run")


class Observer:
    """One stage the engine feeds. Every hook is optional; the engine calls only the hooks a class overrides.

    - ``on_input``: a new input begins (a capture file, a ring file): its name, for messages;
    - ``on_packets``: a decoded packet batch, in capture order (protocol analyzers, ARP/DNS/SMB detectors);
    - ``on_flows``: flows that ended (nfstream's ``on_expire``), in time order;
    - ``on_events``: ECS events (log lines, protocol metadata from this or another observer);
    - ``on_alerts``: alerts other observers raised, before grouping (correlation, the lab's clock);
    - ``on_tick``: the wall clock in live mode (``now_ns``), so windows close on a quiet link;
    - ``on_finish``: end of input: what is still open.
    """

    name: ClassVar[str] = ""

    def on_input(self, name: str) -> Output:
        return NOTHING

    def on_packets(self, batch: PacketBatch) -> Output:
        return NOTHING

    def on_flows(self, flows: FlowBatch) -> Output:
        return NOTHING

    def on_events(self, events: list[Event]) -> Output:
        return NOTHING

    def on_alerts(self, alerts: list[Alert]) -> Output:
        return NOTHING

    def on_tick(self, now_ns: int) -> Output:
        return NOTHING

    def on_finish(self) -> Output:
        return NOTHING

    @classmethod
    def hooks(cls) -> set[str]:
        """The hooks this class implements (overrides of the no-op defaults)."""
        return {name for name in HOOKS if getattr(cls, name) is not getattr(Observer, name)}


HOOKS = ("on_input", "on_packets", "on_flows", "on_events", "on_alerts", "on_tick", "on_finish")


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plug-in's factory may use besides its own settings: the whole configuration (inventory, paths)."""

    settings: Settings

    def resolve(self, path: str) -> Path:
        return self.settings.resolve(path)


Factory = Callable[[Any, PluginContext], Observer | None]
Check = Callable[[Any, PluginContext], None]


@dataclass(frozen=True, slots=True)
class Plugin:
    name: str
    section: str
    settings: type[PluginSettings]
    factory: Factory
    module: str
    check: Check | None = None  # extra validation needing the whole configuration (raises ConfigError)
    order: int = 100  # observers run in this order, then by name (analyzers before the detectors of their events)


class PluginRegistry:
    def __init__(self) -> None:
        self._plugins: dict[tuple[str, str], Plugin] = {}

    def add(self, plugin: Plugin) -> None:
        key = (plugin.section, plugin.name)
        known = self._plugins.get(key)
        if known is not None and known.module != plugin.module:
            raise ValueError(f"plug-in {plugin.section}.{plugin.name} is declared twice: in {known.module} and "
                             f"{plugin.module}")
        self._plugins[key] = plugin

    def remove(self, section: str, name: str) -> None:
        self._plugins.pop((section, name), None)

    def get(self, section: str, name: str) -> Plugin | None:
        return self._plugins.get((section, name))

    def names(self, section: str) -> list[str]:
        return sorted(name for sec, name in self._plugins if sec == section)

    def all(self) -> list[Plugin]:
        return sorted(self._plugins.values(), key=lambda p: (p.order, p.section, p.name))


REGISTRY = PluginRegistry()
T = TypeVar("T")


def plugin(name: str, *, section: str = "detectors", settings: type[PluginSettings] = PluginSettings,
           check: Check | None = None, order: int = 100) -> Callable[[T], T]:
    """Declare an observer class (built as ``cls(settings)``) or a factory function ``(settings, context) ->
    Observer | None`` as the plug-in ``section.name``."""
    if section not in SECTIONS:
        raise ValueError(f"unknown plug-in section {section!r}: use one of {', '.join(SECTIONS)}")

    def declare(target: T) -> T:
        if isinstance(target, type):
            cls: Any = target

            def factory(options: Any, context: PluginContext) -> Observer | None:
                return cls(options)
        else:
            factory = target  # type: ignore[assignment]
        REGISTRY.add(Plugin(name, section, settings, factory, str(getattr(target, "__module__", "")), check, order))
        return target

    return declare
