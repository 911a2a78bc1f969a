"""`soc lab generate|replay|eval` and `soc model train` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from soc.cli.main import app

runner = CliRunner()


def test_generate_replay_eval_and_train(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lab", "generate", "syn_scan", "baseline", "--out", str(tmp_path), "--seed", "4",
                                 "--duration", "60"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "syn_scan.pcap").exists() and (tmp_path / "syn_scan.labels.json").exists()

    result = runner.invoke(app, ["lab", "replay", str(tmp_path / "syn_scan.pcap"), "--store",
                                 f"sqlite:///{tmp_path / 'alerts.db'}"])
    assert result.exit_code == 0, result.output
    assert "soc-net-portscan" in result.output and "198.51.100.7" in result.output

    result = runner.invoke(app, ["model", "train", "--baseline", str(tmp_path / "baseline.pcap"), "--out",
                                 str(tmp_path / "model.skops")])
    assert result.exit_code == 0, result.output
    assert "feature set flow-host-v1" in result.output

    report = tmp_path / "scores.json"
    result = runner.invoke(app, ["lab", "eval", "--pcaps", str(tmp_path), "--labels",
                                 str(tmp_path / "syn_scan.labels.json"), "--model", str(tmp_path / "model.skops"),
                                 "--json", str(report), "--strict"])
    assert result.exit_code == 0, result.output
    [capture] = json.loads(report.read_text())
    scores = {d["detector"]: d for d in capture["detectors"]}
    assert scores["soc-net-portscan"]["recall"] == 1.0 and scores["soc-net-portscan"]["precision"] == 1.0
    assert capture["missed"] == [] and capture["auc"]["flows"] > 0.8


def test_errors_go_to_stderr_with_a_non_zero_exit(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lab", "generate", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown scenario" in result.output
    result = runner.invoke(app, ["lab", "eval", "--pcaps", str(tmp_path), "--labels", str(tmp_path / "none.yaml"),
                                 "--no-anomaly"])
    assert result.exit_code == 1 and "cannot read labels" in result.output
    result = runner.invoke(app, ["lab", "eval", "--pcaps", str(tmp_path), "--no-anomaly"])
    assert result.exit_code != 0 and "--pcaps needs --labels" in result.output
