"""soc: security-monitoring engine. Collectors -> detectors -> alerts -> stores, triage, response and audit."""

__version__ = "0.1.0"
