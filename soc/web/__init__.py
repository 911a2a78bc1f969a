"""The web console: analysts' triage queue, system owners' posture, auditors' incident history, admins' users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soc.web.app import create_app


def __getattr__(name: str) -> Any:
    # imported on first use: `soc users` and the other commands that only need soc.web.users skip FastAPI
    if name == "create_app":
        from soc.web.app import create_app
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
