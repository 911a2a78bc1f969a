"""The CLI split by area: each area's commands load only when one of them runs, the read-only commands import
none of the heavy stacks, and the triage, incident and audit commands work end to end on a real SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.cli.main import LAZY, app
from soc.core.config import StoreSettings
from soc.store import open_store

from .conftest import REPO, make_alert

HEAVY = ("fastapi", "uvicorn", "numba", "sklearn", "sigma", "elasticsearch", "argon2")
# soc.core.model imports numpy at top level for PacketBatch/FlowBatch, and every command that reads alerts needs
# the Alert class: the foundation's to change (bench/RESULTS.md, "CLI start-up"), then this mark goes.
NUMPY_FROM_CORE = pytest.mark.xfail(strict=True, reason="soc.core.model imports numpy at top level")

# Runs a command in this interpreter as the console script does, then writes the imported modules to argv[1].
PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from soc.cli.main import main
sys.argv[0] = "soc"
main()
"""

runner = CliRunner()


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """Top-level packages imported by `soc ARGS...` run in a fresh process (in an empty folder: no soc.yaml)."""
    listing = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(listing), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr  # `alerts show` of a missing id exits 1
    return {name.split(".")[0] for name in json.loads(listing.read_text())}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    with open_store(StoreSettings(url=url)) as store:
        store.write([make_alert(n) for n in range(3)])
    return url


def test_import_of_the_cli_loads_no_heavy_stack(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import json, sys, soc.cli.main; print(json.dumps(sorted("
                           "sys.modules)))"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert loaded.isdisjoint({*HEAVY, "numpy", "pydantic"}), sorted(loaded & {*HEAVY, "numpy", "pydantic"})


READ_ONLY = [["--help"], ["alerts", "list"], ["alerts", "show", "no-such-alert"], ["audit", "verify"]]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_load_no_heavy_stack(tmp_path: Path, store_url: str, command: list[str]) -> None:
    args = command if command == ["--help"] else [*command, "--store", store_url]
    loaded = imported_by(tmp_path, *args)
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("command", [["alerts", "list"], ["audit", "verify"]], ids=" ".join)
@NUMPY_FROM_CORE
def test_read_only_commands_load_no_numpy(tmp_path: Path, store_url: str, command: list[str]) -> None:
    assert "numpy" not in imported_by(tmp_path, *command, "--store", store_url)


def test_help_needs_no_numpy(tmp_path: Path) -> None:
    assert "numpy" not in imported_by(tmp_path, "--help")


@pytest.mark.parametrize("name", list(LAZY))
def test_listed_help_is_the_commands_own(name: str) -> None:
    """`soc --help` lists each area from the table in main.py: it must say what the command itself says."""
    command = LAZY[name].load(name)
    assert LAZY[name].help == " ".join((command.help or "").split("\n\n")[0].split())
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output


def test_top_level_help_lists_every_area_in_order() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│ ") and line[2] not in " -"]
    listed = [row.split()[1] for row in rows]  # a row's name is at its left edge; wrapped help is indented
    assert listed == ["replay", "run", "ingest", "serve", "posture", "alerts", "config", "incidents", "audit",
                      "playbooks", "jobs", "lab", "model", "users", "sigma", "rules"]
    assert "Read alerts from the store." in result.output


def test_a_mistyped_command_is_suggested_among_all_areas() -> None:
    result = runner.invoke(app, ["incidnets", "list"])
    assert result.exit_code == 2
    assert "No such command 'incidnets'. Did you mean 'incidents'?" in result.output


def test_triage_incident_and_audit_commands_end_to_end(tmp_path: Path, store_url: str) -> None:
    first, second, _ = (make_alert(n).id for n in range(3))
    store = ["--store", store_url]

    def soc(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, *store], env={"SOC_USER": "lan"})
        assert result.exit_code == code, result.output
        return result.stdout

    assert f"{first}: acknowledged" in soc("alerts", "ack", first)
    assert "minh" in soc("alerts", "assign", first, second, "--to", "minh")
    soc("alerts", "note", first, "looked at the scanner")
    soc("alerts", "close", second, "--verdict", "false_positive", "--reason", "our scanner")
    assert "no-such-alert" in runner.invoke(app, ["alerts", "ack", "no-such-alert", *store]).output
    soc("alerts", "ack", "no-such-alert", code=1)
    shown = json.loads(soc("alerts", "show", first, "--json"))
    assert (shown["soc"]["alert"]["status"], shown["soc"]["alert"]["assignee"]) == ("acknowledged", "minh")
    suppression = soc("alerts", "suppress", "source.ip=10.0.0.2", "--reason", "lab host", "--days", "1")
    assert suppression.startswith("suppression ")
    assert "lab host" in soc("alerts", "suppressions")

    opened = soc("incidents", "open", "scan of the portal", first)
    incident_id = opened.split(":")[0]
    assert "(1 alerts)" in opened
    assert "Contain recorded" in soc("incidents", "phase", incident_id, "contain", "--note", "blocked")
    assert incident_id in soc("incidents", "list")
    assert json.loads(soc("incidents", "show", incident_id))["id"] == incident_id

    assert "chain intact" in soc("audit", "verify")
    records = [json.loads(line) for line in soc("audit", "log", "--subject", f"alert:{first}").splitlines()]
    assert records and all(r["actor"] == "lan" for r in records)
    checked = runner.invoke(app, ["playbooks", "check", str(REPO / "playbooks")])
    assert checked.exit_code == 0 and " steps (" in checked.stdout, checked.output
