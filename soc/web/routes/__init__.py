"""The console's routers, one per area, in the order the application includes them."""

from soc.web.routes import admin, alerts, auth, history, incidents, playbooks, posture

ROUTERS = [auth.router, alerts.router, incidents.router, playbooks.router, posture.router, history.router,
           admin.router]

__all__ = ["ROUTERS"]
