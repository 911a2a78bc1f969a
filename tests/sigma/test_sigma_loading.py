"""Loading the SigmaHQ rule set: what share loads (and compiles), and that everything else is reported by reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from detectors.sigma import RuleSet, load_rules
from detectors.sigma.loader import rule_files

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SIGMAHQ = SHARED / "sigma" / "rules"

# folders the issue names, with the SigmaHQ folder that holds them
FOLDERS = {
    "windows": SIGMAHQ / "windows",
    "linux": SIGMAHQ / "linux",
    "web": SIGMAHQ / "web",
    "network": SIGMAHQ / "network",
    "proxy": SIGMAHQ / "web" / "proxy_generic",
    "dns": SIGMAHQ / "network" / "dns",
    "firewall": SIGMAHQ / "network" / "firewall",
}


def _under(path: str, folder: Path) -> bool:
    return str(Path(path).resolve()).startswith(str(folder.resolve()) + "/")


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_share_that_loads(sigmahq: RuleSet, name: str) -> None:
    folder = FOLDERS[name]
    files = list(rule_files([folder]))
    loaded = sum(1 for r in sigmahq.rules if _under(r.path, folder))
    problems = [p for p in sigmahq.report.problems if _under(p.path, folder)]
    assert len(files) > 0
    assert loaded + len(problems) == len(files)  # one rule per SigmaHQ file: each loads or is reported
    assert loaded / len(files) >= 0.999, [str(p) for p in problems]


def test_every_sigmahq_rule_loads(sigmahq: RuleSet) -> None:
    """Measured: all 3,141 rule files of SigmaHQ ``rules/`` load and compile; nothing is reported."""
    assert sigmahq.report.files == 3141
    assert len(sigmahq.rules) == 3141
    assert sigmahq.report.problems == []


def test_placeholder_rules_are_reported_by_reason() -> None:
    ruleset = RuleSet.from_paths([SHARED / "sigma" / "rules-placeholder"])
    reasons = ruleset.report.by_reason()
    assert reasons == Counter({"placeholder": 23})
    assert len(ruleset.rules) + 23 == ruleset.report.files
    first = ruleset.report.problems[0]
    assert first.path.endswith(".yml") and first.rule and "no value for placeholder %" in first.message


def test_placeholders_given_values_load() -> None:
    ruleset = RuleSet.from_paths(
        [SHARED / "sigma" / "rules-placeholder" / "windows" / "builtin" / "security" / "win_security_admin_logon.yml"],
        placeholders={"Admins_Workstations": ["ADMIN-PC*"]},
    )
    assert ruleset.report.problems == [] and len(ruleset.rules) == 1


def test_broken_files_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "bad_yaml.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "dup.yml").write_text("title: a\ntitle: b\n")
    (tmp_path / "bad_condition.yml").write_text(
        "title: c\nlogsource: {product: windows}\ndetection:\n  sel: {a: 1}\n  condition: sel and and\n"
    )
    (tmp_path / "no_detection.yml").write_text("title: d\nlogsource: {product: windows}\n")
    (tmp_path / "not_a_rule.yml").write_text("- just\n- a list\n")
    (tmp_path / "good.yml").write_text(
        "title: ok\nlogsource: {product: windows}\ndetection:\n  sel: {a: 1}\n  condition: sel\n"
    )
    ruleset = RuleSet.from_paths([tmp_path])
    assert [r.title for r in ruleset.rules] == ["ok"]
    by_file = {Path(p.path).name: p.reason for p in ruleset.report.problems}
    assert by_file == {
        "bad_yaml.yml": "yaml",
        "dup.yml": "yaml",
        "bad_condition.yml": "condition",
        "no_detection.yml": "detection",
        "not_a_rule.yml": "not_a_rule",
    }


def test_loader_reads_yaml_like_pysigma() -> None:
    """Our C-accelerated YAML path gives the same rules as pySigma's own ``load_ruleset`` on a folder."""
    from sigma.collection import SigmaCollection

    folder = SIGMAHQ / "windows" / "registry" / "registry_delete"
    ours = load_rules([folder])
    theirs = SigmaCollection.load_ruleset([folder])
    assert sorted(str(r.id) for r in ours.rules) == sorted(str(r.id) for r in theirs.rules)
    assert [r.to_dict() for r in sorted(ours.rules, key=lambda r: str(r.id))] == [
        r.to_dict() for r in sorted(theirs.rules, key=lambda r: str(r.id))
    ]
