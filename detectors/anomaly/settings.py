"""Settings of the anomaly detector (``detectors.anomaly`` in soc.yaml) and its plug-in declaration, importable
without scikit-learn."""

from __future__ import annotations

from pydantic import Field

from detectors.network.timewindows import WindowSettings
from soc.core.plugins import Observer, PluginContext, plugin


class AnomalySettings(WindowSettings):
    model_path: str | None = Field(None, description="skops file from `soc model train`; none: detector off")
    window_seconds: float = Field(300.0, gt=0, description="ignored: the model's own host window is used")
    score_margin: float = Field(0.03, ge=0, description="a flow is anomalous above the highest training score "
                                "plus this")
    min_flows: int = Field(3, ge=1, description="anomalous flows of one host in a window that are reported")
    host_min_deviation: float = Field(8.0, gt=0, description="standard deviations from the host's baseline")
    host_min_flows: int = Field(10, ge=1, description="flows a host window needs before its baseline is compared")
    retrain_cron: str = Field("0 3 * * 0", description="crontab of the retraining job (minute hour dom month dow)")
    baseline_pcaps: list[str] = Field(default_factory=list, description="captures of normal traffic to learn from")


@plugin("anomaly", settings=AnomalySettings)
def anomaly_detector(settings: AnomalySettings, context: PluginContext) -> Observer | None:
    """The configured detector, or none when no model file is set."""
    if settings.model_path is None:
        return None
    from detectors.anomaly.detector import AnomalyDetector  # scikit-learn is loaded only when a model is used
    from detectors.anomaly.model import AnomalyModel

    return AnomalyDetector(AnomalyModel.load(context.resolve(settings.model_path)), settings)
