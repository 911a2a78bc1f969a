"""``soc lab generate|replay|eval`` (labelled scenarios, replay, precision and recall) and ``soc model train``.

Two typer apps, ``lab_app`` and ``model_app``; :func:`register` adds both to the main CLI.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from soc.cli.common import ConfigOption, StoreOption, fail, load_config, open_configured_store, out, say
from soc.core.errors import SocError

lab_app = typer.Typer(help="Attack scenarios: generate labelled captures, replay them, score the detectors.",
                      no_args_is_help=True, add_completion=False)
model_app = typer.Typer(help="Anomaly models of normal traffic.", no_args_is_help=True, add_completion=False)

REAL_LABELS = Path(__file__).resolve().parents[2] / "lab" / "labels" / "attacks.yaml"


def register(app: typer.Typer) -> None:
    """Add ``soc lab ...`` and ``soc model ...`` to the main CLI."""
    app.add_typer(lab_app, name="lab")
    app.add_typer(model_app, name="model")


def _scenarios(names: list[str]) -> list[str]:
    from lab.scenarios import SCENARIOS

    if not names or names == ["all"]:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise typer.BadParameter(f"unknown scenario(s) {', '.join(unknown)}: use {', '.join(SCENARIOS)} or all")
    return names


@lab_app.command("generate")
def generate_command(
    scenario: Annotated[list[str], typer.Argument(help="scenario name(s), or all")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="folder for SCENARIO.pcap and SCENARIO.labels.json")],
    seed: Annotated[int, typer.Option(help="random seed: the same seed writes the same bytes")] = 1,
    duration: Annotated[float, typer.Option(help="seconds of traffic", min=30)] = 300.0,
) -> None:
    """Write labelled captures of the lab data center with one attack each (or none: baseline)."""
    from lab.scenarios import generate

    table = Table("scenario", "pcap", "frames", "attack flows", "attacker", title=f"lab scenarios (seed {seed})")
    for name in _scenarios(scenario):
        pcap, labels = generate(name, out_dir, seed=seed, duration=duration)
        attack = labels.attacks[0] if labels.attacks else None
        frames = _frames(pcap)
        table.add_row(name, str(pcap), str(frames), str(len(labels.attack_flow_keys())),
                      attack.attacker if attack else "-")
    out.print(table)


def _frames(pcap: Path) -> int:
    from collectors.packets import CaptureReader

    reader = CaptureReader(pcap)
    for _ in reader:
        pass
    return reader.stats.packets


@lab_app.command("replay")
def replay_command(
    pcaps: Annotated[list[Path], typer.Argument(help="captures, replayed as one stream", exists=True)],
    speed: Annotated[float | None, typer.Option(help="pace at capture time × SPEED (1 = real time); "
                                                      "default: as fast as possible")] = None,
    interface: Annotated[str | None, typer.Option(help="send the frames out of this interface instead (a veth in "
                                                       "a test namespace), for live-capture tests")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Replay captures through the whole pipeline (flow and packet detectors) into the store."""
    if speed is not None and speed <= 0:
        raise typer.BadParameter("must be above 0", param_hint="--speed")
    if interface:
        from lab.replay import replay_onto_interface

        try:
            sent = sum(replay_onto_interface(p, interface, speed or 1.0) for p in pcaps)
        except (OSError, PermissionError) as exc:
            fail(f"cannot send on {interface}: {exc}")
        out.print(f"sent {sent} frames on {interface}")
        return
    from lab.replay import replay

    settings, alert_store = open_configured_store(config, store)
    try:
        lab = replay(pcaps, settings, alert_store, speed=speed)
    except SocError as exc:
        fail(exc)
    finally:
        alert_store.close()
    for error in lab.report.errors:
        say(error, "warning")
    table = Table("rule", "severity", "subject", "first seen", "message", title=f"{len(lab.raw_alerts)} alert(s)")
    for alert in lab.raw_alerts:
        table.add_row(alert.rule.id, alert.severity.label, alert.group_key, alert.first_seen, alert.message)
    _console().print(table)
    out.print(f"{sum(f.packets for f in lab.report.files)} packets, {lab.report.flows} flows")


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


@lab_app.command("eval")
def eval_command(
    scenario: Annotated[list[str] | None, typer.Argument(help="lab scenarios to generate and score (default: all)")]
    = None,
    pcaps: Annotated[Path | None, typer.Option(help="score the captures in this folder instead")] = None,
    labels: Annotated[Path | None, typer.Option(help="labels of --pcaps (YAML list or JSON)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the generated scenarios")] = 1,
    duration: Annotated[float, typer.Option(help="seconds of traffic per scenario", min=30)] = 300.0,
    model: Annotated[Path | None, typer.Option(help="anomaly model to score with (default: learn one from a "
                                                    "baseline scenario with another seed)")] = None,
    anomaly: Annotated[bool, typer.Option(help="score the anomaly model too")] = True,
    work: Annotated[Path | None, typer.Option(help="keep generated captures here (default: a temporary folder)")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the scores as JSON")] = None,
    strict: Annotated[bool, typer.Option(help="exit 1 when an attack is missed")] = False,
    config: ConfigOption = None,
) -> None:
    """Run captures through the pipeline and print precision, recall, false positives and time to detect."""
    from detectors.anomaly.model import AnomalyModel
    from lab.evaluate import evaluate_capture
    from lab.labels import CaptureLabels, load_labels
    from lab.scenarios import generate

    settings = load_config(config)
    with tempfile.TemporaryDirectory(prefix="soc-lab-eval-") as tmp:
        folder = work or Path(tmp)
        jobs: list[tuple[Path, CaptureLabels]] = []
        try:
            if pcaps is not None:
                if labels is None:
                    raise typer.BadParameter("--pcaps needs --labels", param_hint="--labels")
                for record in load_labels(labels):
                    path = pcaps / record.capture
                    if not path.exists():
                        say(f"{labels}: capture {record.capture} not found in {pcaps}", "warning")
                        continue
                    jobs.append((path, record))
            else:
                for name in _scenarios(scenario or []):
                    jobs.append(generate(name, folder, seed=seed, duration=duration))
            learned = None
            if anomaly:
                if model is not None:
                    learned = AnomalyModel.load(model)
                else:
                    from detectors.anomaly.train import train

                    baseline, _ = generate("baseline", folder / "training", seed=seed + 1000, duration=900.0)
                    learned = train([baseline], folder / "training" / "model.skops")
            results = [evaluate_capture(path, record, settings, learned) for path, record in jobs]
        except SocError as exc:
            fail(exc)
    _print_results(results)
    if json_out is not None:
        json_out.write_text(json.dumps(_as_json(results), indent=1) + "\n", encoding="utf-8")
    missed = [(r.labels.capture, a.attack) for r in results for a in r.missed]
    for capture, attack in missed:
        say(f"{capture}: {attack} not detected", "warning")
    if strict and missed:
        raise typer.Exit(1)


def _console() -> Console:
    return out if out.is_terminal else Console(width=170)  # a report piped to a file keeps its columns


def _print_results(results: list) -> None:  # list[CaptureResult]
    console = _console()
    table = Table("capture", "detector", "attacks", "recall", "alerts", "precision", "FP flows", "FP rate",
                  "time to detect", "AUC flows", "AUC hosts", title="detections per capture")
    for result in results:
        for n, score in enumerate(result.scores):
            table.add_row(
                result.labels.scenario if n == 0 else "", score.detector, str(score.attacks), _pct(score.recall, 0),
                str(score.alerts), _pct(score.precision, 0),
                "-" if score.background_flows is None else f"{score.fp_flows}/{score.background_flows}",
                _pct(score.fp_rate, 3), _num(score.ttd_seconds, "{:.0f} s"),
                _num(result.auc.get("flows")) if n == 0 else "", _num(result.auc.get("hosts")) if n == 0 else "")
        if not result.scores:
            table.add_row(result.labels.scenario, "(no alerts)", "0", "-", "0", "-", "-", "-", "-",
                          _num(result.auc.get("flows")), _num(result.auc.get("hosts")))
    console.print(table)
    summary = Table("detector", "attacks", "recall", "alerts", "precision", "FP flows / background", "FP rate",
                    title="per detector, all captures")
    for detector in sorted({s.detector for r in results for s in r.scores}):
        rows = [s for r in results for s in r.scores if s.detector == detector]
        attacks, detected = sum(s.attacks for s in rows), sum(s.detected for s in rows)
        alerts, true = sum(s.alerts for s in rows), sum(s.true_alerts for s in rows)
        fp = sum(s.fp_flows for s in rows if s.background_flows is not None)
        background = sum(s.background_flows or 0 for s in rows)
        summary.add_row(detector, str(attacks), _pct(detected / attacks if attacks else None, 0), str(alerts),
                        _pct(true / alerts if alerts else None, 0), f"{fp}/{background}" if background else "-",
                        _pct(fp / background if background else None, 3))
    console.print(summary)


def _as_json(results: list) -> list[dict[str, object]]:
    return [{"capture": r.labels.capture, "scenario": r.labels.scenario, "flows": r.flows, "auc": r.auc,
             "missed": [a.attack for a in r.missed],
             "detectors": [{"detector": s.detector, "attacks": s.attacks, "detected": s.detected, "alerts": s.alerts,
                            "true_alerts": s.true_alerts, "recall": s.recall, "precision": s.precision,
                            "fp_flows": s.fp_flows, "background_flows": s.background_flows, "fp_rate": s.fp_rate,
                            "time_to_detect_seconds": s.ttd_seconds} for s in r.scores]}
            for r in results]


@model_app.command("train")
def train_command(
    baseline: Annotated[list[Path], typer.Option("--baseline", "-b", help="capture(s) of normal traffic",
                                                 exists=True)],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="model file to write (skops)")] = Path(
        "anomaly-model.skops"),
    window: Annotated[float, typer.Option(help="host window in seconds", min=10)] = 300.0,
    seed: Annotated[int, typer.Option(help="random state of the IsolationForest")] = 0,
) -> None:
    """Learn the anomaly model (IsolationForest on flows, per-host baseline) from normal traffic."""
    from detectors.anomaly.features import FEATURE_SET_VERSION
    from detectors.anomaly.model import AnomalyModel
    from detectors.anomaly.train import train

    try:
        model = train(baseline, out_path, AnomalyModel(window_seconds=window, random_state=seed))
    except SocError as exc:
        fail(exc)
    out.print(f"learned from {model.n_flows_} flows and {len(model.host_keys_)} hosts; "
              f"feature set {FEATURE_SET_VERSION}; saved to {out_path}")
