"""soc.yaml: one validated configuration, with errors that name the file, the key and the line.

Relative paths in the file (rules, playbooks, the SQLite store, the spool) are relative to the file itself.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from soc.core.errors import ConfigError
from soc.core.yamlfile import data_path, line_of, read_yaml, validate, validation_error

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InformationSystem(_Strict):
    """One system of the inventory (Decree 85/2016 security levels 1-5)."""

    name: str = Field(min_length=1)
    owner: str = Field(min_length=1, description="the owning department or person (user name of the owner)")
    contact: str | None = Field(None, description="the owner's e-mail address, for notifications")
    security_level: int = Field(ge=1, le=5)
    addresses: list[IpNetwork] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    description: str = ""
    approved_by: str | None = None
    approved_on: date | None = None
    last_assessment: date | None = None
    retention_days: int | None = Field(None, ge=1)


class ElasticsearchSettings(_Strict):
    index_prefix: str = Field("soc", pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                              description="indices are PREFIX-alerts-YYYY.MM and PREFIX-events-YYYY.MM")
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = Field(10.0, gt=0)
    max_retries: int = Field(3, ge=0)


class StoreSettings(_Strict):
    url: str = Field("sqlite:///soc.db", description="sqlite:///PATH or http(s)://HOST:PORT of Elasticsearch")
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    spool_dir: str = Field(".soc-spool", description="where alerts wait while the store is down")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "http://", "https://")):
            raise ValueError("store url must start with sqlite://, http:// or https://")
        return url


class PacketCollectorSettings(_Strict):
    interfaces: list[str] = Field(default_factory=list)
    chunk_packets: int = Field(16384, ge=1024, description="packets per batch; ~16k keeps a batch's frames in cache")


class FlowSettings(_Strict):
    idle_timeout: float = Field(120.0, gt=0)
    active_timeout: float = Field(1800.0, gt=0)
    max_flows: int = Field(1 << 19, ge=1024, description="flows held in memory; past it the oldest are evicted")


class CollectorSettings(_Strict):
    packets: PacketCollectorSettings = Field(default_factory=PacketCollectorSettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    logs: list[dict[str, Any]] = Field(default_factory=list, description="log sources (see collectors/logs)")


class GroupingRule(_Strict):
    """Alerts of ``rule`` (an id or glob) of ``ruleset`` with equal ``group_by`` fields within ``window_seconds``
    are one alert with a count. Without ``group_by``, the detector's own grouping key and window are kept and
    only the repeats are counted."""

    rule: str = "*"
    ruleset: str | None = None
    group_by: list[str] | None = Field(None, min_length=1, description="ECS fields, e.g. [source.ip]")
    window_seconds: float = Field(3600.0, gt=0)


def _default_grouping() -> list[GroupingRule]:
    # Sigma rules fire once per matching event: count the repeats. Windowed detectors count for themselves.
    return [GroupingRule(ruleset="sigma")]


class AlertSettings(_Strict):
    grouping: list[GroupingRule] = Field(default_factory=_default_grouping)
    unknown_system_level: int = Field(3, ge=1, le=5, description="security level assumed outside the inventory")
    max_open_groups: int = Field(10000, ge=100, description="groups kept in memory; older ones are re-read")


class SmtpSettings(_Strict):
    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str = "soc@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = Field(10.0, gt=0)


class ContainmentSettings(_Strict):
    enabled: bool = Field(False, description="run nft for real (still only after a recorded approval)")
    nft_table: str = "inet soc"
    nft_set: str = "blocked"


class ResponseSettings(_Strict):
    auto_run: bool = Field(False, description="start the matching playbooks on every new alert")
    smtp: SmtpSettings | None = None
    webhook_timeout: float = Field(10.0, gt=0)
    containment: ContainmentSettings = Field(default_factory=ContainmentSettings)
    reporting_organisation: str = Field("", description="who signs Circular 20/2017 incident reports")
    profile: str = Field("vn-decree85-2016", description="regulation profile for reporting deadlines")


class ScheduledSigma(_Strict):
    """Sigma rules run as Lucene queries inside Elasticsearch on a schedule."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    rules: list[str] = Field(min_length=1, description="rule files or folders")
    pipeline: str | None = Field(None, description="pySigma pipeline name (default: soc's own field mapping)")
    every_minutes: int = Field(5, ge=1, le=1440)
    lookback_minutes: int = Field(15, ge=1, description="longer than every_minutes: runs overlap")
    window_seconds: int = Field(3600, ge=60, description="matches of a rule on one subject within it are one alert")


class SigmaSettings(_Strict):
    rules: list[str] = Field(default_factory=lambda: ["rules"], description="rules run in-process on the stream")
    pipeline: str | None = None
    scheduled: list[ScheduledSigma] = Field(default_factory=list)


class SchedulerSettings(_Strict):
    daily_summary: str = Field("0 7 * * *", description="cron (minute hour day month weekday), local time")
    weekly_report: str = Field("0 7 * * mon", description="cron of the weekly report to each owner")
    retention: str = Field("30 2 * * *", description="cron of the retention job")
    default_retention_days: int = Field(365, ge=1, description="for systems without retention_days")
    archive_dir: str = Field("archive", description="alerts past retention are archived here before deletion")
    timezone: str = "Asia/Ho_Chi_Minh"


class Settings(_Strict):
    inventory: list[InformationSystem] = Field(default_factory=list)
    store: StoreSettings = Field(default_factory=StoreSettings)
    collectors: CollectorSettings = Field(default_factory=CollectorSettings)
    # Plug-in sections: one mapping per plug-in name, validated by the plug-in's own settings model when the engine
    # starts (Settings.plugin_settings); the foundation does not know the plug-ins.
    analyzers: dict[str, dict[str, Any]] = Field(default_factory=dict, description="protocol analyzers")
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict, description="network and log detectors")
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    response: ResponseSettings = Field(default_factory=ResponseSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    sigma: SigmaSettings = Field(default_factory=SigmaSettings)
    rules: list[str] = Field(default_factory=lambda: ["rules"])
    playbooks: list[str] = Field(default_factory=lambda: ["playbooks"])
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("inventory")
    @classmethod
    def _unique_names(cls, systems: list[InformationSystem]) -> list[InformationSystem]:
        names = [s.name for s in systems]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"system names must be unique: {', '.join(duplicated)}")
        return systems

    # where the settings came from (file, its parsed data and node tree), for errors found after loading
    _source: tuple[Path, Any, yaml.Node | None] | None = PrivateAttr(None)
    _plugins: dict[tuple[str, str], BaseModel] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _protocols_moved(cls, data: Any) -> Any:
        """``collectors.protocols`` of earlier versions is ``analyzers.protocols`` now."""
        if isinstance(data, dict) and isinstance(data.get("collectors"), dict) and "protocols" in data["collectors"]:
            collectors = dict(data["collectors"])
            analyzers = dict(data.get("analyzers") or {})
            analyzers.setdefault("protocols", collectors.pop("protocols") or {})
            data = {**data, "collectors": collectors, "analyzers": analyzers}
        return data

    def plugin_settings(self, section: str, name: str, model: type[M]) -> M:
        """The ``section.name`` mapping of soc.yaml validated by the plug-in's ``model`` (its defaults where the
        file says nothing); an invalid value is a ConfigError naming the key and the line."""
        known = self._plugins.get((section, name))
        if isinstance(known, model):
            return known
        raw = getattr(self, section).get(name)
        try:
            value = model.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            data = self._source[1] if self._source else {section: {name: raw}}
            raise validation_error(exc, data, self._source[2] if self._source else None,
                                   self._source[0] if self._source else None, ConfigError,
                                   prefix=(section, name)) from None
        self._plugins[(section, name)] = value
        return value

    def config_error(self, message: str, *key: str | int) -> ConfigError:
        """A ConfigError about ``key`` (e.g. ``"detectors", "portscan"``), with the file and line it is on."""
        if self._source is None:
            return ConfigError(message, key=".".join(map(str, key)) or None)
        path, data, root = self._source
        loc = data_path(data, key)
        return ConfigError(message, path=str(path), line=line_of(root, loc), key=".".join(map(str, key)) or None)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def system_named(self, name: str) -> InformationSystem | None:
        return next((s for s in self.inventory if s.name == name), None)

    def system_for_host(self, host: str) -> InformationSystem | None:
        """The inventory system listing ``host`` (case-insensitive; ``*.domain`` entries match subdomains)."""
        host = host.lower().rstrip(".")
        for system in self.inventory:
            for entry in system.hosts:
                entry = entry.lower()
                if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
                    return system
        return None

    def system_for_ip(self, address: str) -> InformationSystem | None:
        """The inventory system whose ranges hold ``address`` (the most specific range wins)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        best: tuple[int, InformationSystem] | None = None
        for system in self.inventory:
            for network in system.addresses:
                if ip.version == network.version and ip in network and (best is None or network.prefixlen > best[0]):
                    best = (network.prefixlen, system)
        return best[1] if best else None


def load_settings(path: str | Path | None = None) -> Settings:
    """Load and validate ``path``; with None, ``./soc.yaml`` if it exists, else the defaults."""
    if path is None:
        default = Path("soc.yaml")
        if not default.exists():
            return Settings()
        path = default
    path = Path(path)
    data, root = read_yaml(path, ConfigError)
    data = {} if data is None else data
    settings = validate(Settings, data, root, path, ConfigError, extra={"base_dir": path.resolve().parent})
    settings._source = (path, data, root)
    return settings
