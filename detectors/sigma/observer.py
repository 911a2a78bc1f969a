"""The Sigma engine as an engine plug-in (``detectors.sigma``): the rules of ``sigma.rules`` on every event the
engine sees — log lines and the protocol analyzers' metadata."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from soc.core.model import Event
from soc.core.plugins import Observer, Output, PluginContext, PluginSettings, plugin

if TYPE_CHECKING:
    from detectors.sigma.engine import SigmaEngine


class SigmaObserver(Observer):
    def __init__(self, engine: SigmaEngine) -> None:
        self.engine = engine

    def on_events(self, events: list[Event]) -> Output:
        process = self.engine.process
        return [alert for event in events for alert in process(event)]


def check_sigma(settings: PluginSettings, context: PluginContext) -> None:
    """``sigma.pipeline`` names pipelines that exist (the engine would otherwise fail when it compiles)."""
    from detectors.sigma.pipelines import PIPELINES

    names = context.settings.sigma.pipeline
    for name in [names] if isinstance(names, str) else names or []:
        if name not in PIPELINES:
            raise context.settings.config_error(
                f"unknown pySigma pipeline {name!r}: use one of {', '.join(sorted(PIPELINES))}", "sigma", "pipeline")


@plugin("sigma", settings=PluginSettings, check=check_sigma, order=50)
def sigma_observer(settings: PluginSettings, context: PluginContext) -> Observer | None:
    """The in-process engine over ``sigma.rules``; none when no rule folder exists (``check_sigma`` has run: the
    engine checks every plug-in before it builds any)."""
    from detectors.sigma.engine import SigmaEngine  # pySigma loads only when rules run

    paths = [context.resolve(p) for p in context.settings.sigma.rules]
    existing = [p for p in paths if Path(p).exists()]
    if not existing:
        return None
    return SigmaObserver(SigmaEngine.from_paths(existing, context.settings.sigma.pipeline))
