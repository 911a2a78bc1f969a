"""Sigma's errors are the project's errors: a SocError that names the rule file, and the line or field when known."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from detectors.sigma import RuleParseError, RuleSet, SigmaEngineError, UnsupportedFeature, compile_rule, load_rules
from detectors.sigma.pipelines import get_pipeline
from soc.cli.sigma import register
from soc.core.errors import SocError

PLACEHOLDER_RULE = """\
title: Logon from an admin workstation
id: 5b0f4f4e-6f0c-4d43-9a51-0a4b1c9d2e11
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4624
        WorkstationName|expand: '%Admin_Workstations%'
    condition: selection
level: low
"""

BROKEN_YAML = """\
title: Broken
logsource:
    product: windows
detection:
    selection:
        EventID: [4624
    condition: selection
"""


def test_engine_error_is_a_soc_error_naming_the_rule_file(tmp_path: Path) -> None:
    path = tmp_path / "admin_logon.yml"
    path.write_text(PLACEHOLDER_RULE)
    (rule,) = load_rules([path]).rules
    with pytest.raises(SocError) as info:
        compile_rule(rule)
    error = info.value
    assert isinstance(error, UnsupportedFeature) and isinstance(error, SigmaEngineError)
    assert error.reason == "placeholder"
    assert error.path == str(path) and error.rule == "5b0f4f4e-6f0c-4d43-9a51-0a4b1c9d2e11"
    assert error.key == "WorkstationName"  # the field whose value needs the placeholder
    assert str(error).startswith(f"{path}: 5b0f4f4e-6f0c-4d43-9a51-0a4b1c9d2e11: key 'WorkstationName': ")
    assert "%Admin_Workstations%" in str(error)


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BROKEN_YAML)
    report = load_rules([path])
    (problem,) = report.problems
    assert problem.reason == "yaml" and problem.path == str(path)
    assert problem.line is not None and 6 <= problem.line <= 8  # the unclosed list: PyYAML notices it a line late
    assert str(problem).startswith(f"{path}:{problem.line}: [yaml] ")


def test_rule_parse_error_keeps_its_reason_and_message() -> None:
    error = RuleParseError("condition", "unknown identifier 'sel2'", "rules/x.yml", "x", line=12)
    assert isinstance(error, SocError)
    assert (error.reason, error.message, error.path, error.line) == ("condition", "unknown identifier 'sel2'",
                                                                    "rules/x.yml", 12)
    assert str(error) == "rules/x.yml:12: x: unknown identifier 'sel2'"
    assert str(SigmaEngineError("no path")) == "no path"


def test_rules_check_prints_where(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text(BROKEN_YAML)
    (tmp_path / "admin_logon.yml").write_text(PLACEHOLDER_RULE)
    ruleset = RuleSet.from_paths([tmp_path])
    assert sorted(p.reason for p in ruleset.report.problems) == ["placeholder", "yaml"]
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    stderr = result.stderr.replace("\n", "")
    assert f"{tmp_path / 'broken.yml'}:" in stderr
    assert "key 'winlog.event_data.WorkstationName'" in stderr  # the field as the pipeline mapped it


def test_unknown_pipeline_is_a_soc_error_and_still_a_key_error() -> None:
    with pytest.raises(SocError) as info:
        get_pipeline(["soc", "nope"])
    assert isinstance(info.value, KeyError)  # callers that look a pipeline up catch KeyError
    assert str(info.value).startswith("unknown pipeline 'nope': use one of ")
