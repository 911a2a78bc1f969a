"""Finding the plug-ins and building the observers a configuration asks for.

Plug-ins declare themselves in their own modules (``soc.core.plugins.plugin``); the engine imports the packages that
hold them, plus any installed distribution's ``soc.plugins`` entry points, once, when it first needs them. A name in
``analyzers`` or ``detectors`` of soc.yaml that no plug-in declares is an error naming the key and the known names.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

from soc.core.config import Settings
from soc.core.plugins import REGISTRY, SECTIONS, Observer, Plugin, PluginContext, PluginSettings

# the packages whose modules declare plug-ins; another distribution adds its own through the entry point group
PLUGIN_PACKAGES = ("collectors.protocols", "detectors.network", "detectors.anomaly", "detectors.sigma")
ENTRY_POINTS = "soc.plugins"
_loaded = False


def load_plugins() -> None:
    """Import every plug-in module once."""
    global _loaded
    if _loaded:
        return
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__, f"{package_name}."):
            importlib.import_module(module.name)
    for entry in entry_points(group=ENTRY_POINTS):
        entry.load()
    _loaded = True


def configured(settings: Settings) -> list[tuple[Plugin, PluginSettings]]:
    """Every plug-in with its validated settings, in run order; raises ConfigError for an unknown name or a bad
    value (naming the key and the line)."""
    load_plugins()
    for section in SECTIONS:
        for name in getattr(settings, section):
            if REGISTRY.get(section, name) is None:
                known = ", ".join(REGISTRY.names(section))
                raise settings.config_error(f"no {section[:-1]} plug-in named {name!r}; known: {known}", section, name)
    context = PluginContext(settings)
    chosen = []
    for plugin in REGISTRY.all():
        options = settings.plugin_settings(plugin.section, plugin.name, plugin.settings)
        if plugin.check is not None:
            plugin.check(options, context)
        chosen.append((plugin, options))
    return chosen


def check_plugins(settings: Settings) -> list[str]:
    """Validate every plug-in section (``soc config check``); returns the names of the plug-ins that would run."""
    return [f"{p.section}.{p.name}" for p, options in configured(settings) if options.enabled]


def build_observers(settings: Settings) -> list[Observer]:
    """The observers of every enabled plug-in, in run order (analyzers before the detectors of their events)."""
    context = PluginContext(settings)
    observers = []
    for plugin, options in configured(settings):
        if options.enabled:
            observer = plugin.factory(options, context)
            if observer is not None:
                observers.append(observer)
    return observers
