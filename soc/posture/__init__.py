"""Security-level posture of the information systems, from a regulation profile (YAML data) and what the
engine sees: checks with reasons, open alerts, incidents, response times, coverage, score and trend."""

from soc.posture.evaluate import SCORE_KIND, PostureEvaluator, SystemPosture
from soc.posture.profile import PostureError, Profile, load_profile, profile_names
from soc.posture.report import REPORT_KIND, render_report, weekly_posture_reports

__all__ = ["REPORT_KIND", "SCORE_KIND", "PostureError", "PostureEvaluator", "Profile", "SystemPosture",
           "load_profile", "profile_names", "render_report", "weekly_posture_reports"]
