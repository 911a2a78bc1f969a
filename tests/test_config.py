"""soc.yaml validation: the shipped example is valid; errors name the file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.network.portscan import PortScanSettings
from soc.core.config import load_settings
from soc.core.errors import ConfigError
from soc.engine.plugins import check_plugins

from .conftest import REPO


def test_example_config_is_valid_and_complete() -> None:
    settings = load_settings(REPO / "soc.example.yaml")
    assert [s.name for s in settings.inventory][:2] == ["dich-vu-cong", "quan-ly-van-ban"]
    assert settings.store.url == "sqlite:///soc.db"
    assert settings.plugin_settings("detectors", "portscan", PortScanSettings).min_ports == 20
    assert settings.system_for_ip("10.10.3.7").name == "thu-dien-tu-sso"  # type: ignore[union-attr]
    assert settings.system_for_ip("2001:db8:10:1::5").name == "dich-vu-cong"  # type: ignore[union-attr]
    assert settings.system_for_ip("192.0.2.1") is None
    assert settings.resolve("rules") == REPO / "rules"


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("inventory:\n  - name: a\n    owner: b\n    security_level: 7\n", 4, "inventory.0.security_level",
         "less than or equal to 5"),
        ("store:\n  url: mysql://x\n", 2, "store.url", "must start with sqlite://"),
        ("detectors:\n  portscan:\n    min_port: 3\n", 3, "detectors.portscan.min_port", "Extra inputs"),
        ("inventory:\n  - name: a\n    owner: b\n    security_level: 2\n    addresses: [10.0.0.0/33]\n", 5,
         "inventory.0.addresses.0", "network"),
    ],
)
def test_invalid_config_names_file_key_and_line(tmp_path: Path, text: str, line: int, key: str, message: str) -> None:
    path = tmp_path / "soc.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        check_plugins(load_settings(path))  # plug-in sections are validated by their plug-ins' own models
    error = caught.value
    assert (error.path, error.line, error.key) == (str(path), line, key)
    assert message in str(error)
    assert f"{path}:{line}" in str(error)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "soc.yaml"
    path.write_text("store:\n  url: [unclosed\n  other: 1\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_settings(path)
    assert caught.value.line == 3


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yaml")


def test_duplicate_system_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "soc.yaml"
    path.write_text("inventory:\n  - {name: a, owner: o, security_level: 1}\n"
                    "  - {name: a, owner: o, security_level: 2}\n")
    with pytest.raises(ConfigError, match="unique: a"):
        load_settings(path)
