"""The web console: analysts' triage queue, system owners' posture, auditors' incident history, admins' users."""

from soc.web.app import create_app

__all__ = ["create_app"]
