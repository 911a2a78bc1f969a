"""soc.yaml: one validated configuration, with errors that name the file, the key and the line.

Relative paths in the file (rules, playbooks, the SQLite store, the spool) are relative to the file itself.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detectors.network.portscan import PortScanSettings
from soc.errors import ConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InformationSystem(_Strict):
    """One system of the inventory (Decree 85/2016 security levels 1-5)."""

    name: str = Field(min_length=1)
    owner: str = Field(min_length=1, description="the owning department or person (user name of the owner)")
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
    chunk_packets: int = Field(65536, ge=1024)


class FlowSettings(_Strict):
    idle_timeout: float = Field(120.0, gt=0)
    active_timeout: float = Field(1800.0, gt=0)


class CollectorSettings(_Strict):
    packets: PacketCollectorSettings = Field(default_factory=PacketCollectorSettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    logs: list[dict[str, Any]] = Field(default_factory=list, description="log sources (see collectors/logs)")


class DetectorSettings(_Strict):
    portscan: PortScanSettings = Field(default_factory=PortScanSettings)


class Settings(_Strict):
    inventory: list[InformationSystem] = Field(default_factory=list)
    store: StoreSettings = Field(default_factory=StoreSettings)
    collectors: CollectorSettings = Field(default_factory=CollectorSettings)
    detectors: DetectorSettings = Field(default_factory=DetectorSettings)
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

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("configuration file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration: {exc}", path=str(path)) from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=str(path),
                          line=mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys", path=str(path), line=1)
    try:
        return Settings.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = _data_path(data, tuple(first["loc"]))
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{first['msg']}{more}", path=str(path), line=_line_of(root, loc),
                          key=".".join(str(p) for p in loc)) from None


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a pydantic error location that exists in the file (unions add validator names after it);
    a missing key itself is kept, as the last part."""
    path: list[Any] = []
    node = data
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if present:
            node = node[part]
        else:
            if isinstance(node, dict):
                path.append(part)
            break
        path.append(part)
    return tuple(path)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node along ``loc`` that exists in the document."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    child, line = value_node, key_node.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


