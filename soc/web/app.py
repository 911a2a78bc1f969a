"""The web console (FastAPI, server-rendered Jinja2): the analysts' alert queue and triage, system owners'
posture of their own systems, auditors' incident history and exports, admins' users and inventory.

Security lives on the server: every route declares the roles it serves (``need``), owners are limited to their
systems on every page, API and export, every POST carries the session's CSRF token, templates escape every
value, and failed logins are rate-limited and audited. The routes live in ``soc.web.routes``, one router per
area; they are plain functions, so their store I/O runs in FastAPI's thread pool and never stalls the event loop.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from soc.core.config import Settings
from soc.store.base import AlertStore
from soc.web.deps import HERE, Console, LoginRequired, back, page, session_user
from soc.web.routes import ROUTERS
from soc.web.users import LoginLimiter

__all__ = ["Console", "create_app"]


async def _login_required(request: Request, exc: LoginRequired) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "login required"}, status_code=401)
    return back("/login")


def _http_error(request: Request, exc: HTTPException) -> Response:
    """Plain def: Starlette runs it in the thread pool, and reading the session's user is store I/O."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    key = {403: "forbidden", 404: "not_found"}.get(exc.status_code)
    return page(request, session_user(request), "error.html", exc.status_code, key=key, detail=str(exc.detail))


def create_app(settings: Settings, store: AlertStore, secret_key: str, https_only: bool = False,
               limiter: LoginLimiter | None = None) -> FastAPI:
    """The console over ``store``. ``secret_key`` signs the session cookies (keep it across restarts)."""
    app = FastAPI(title="soc console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = Console.open(settings, store, limiter)
    app.add_middleware(SessionMiddleware, secret_key=secret_key, session_cookie="soc_session", max_age=8 * 3600,
                       same_site="strict", https_only=https_only)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.exception_handler(LoginRequired)(_login_required)
    app.exception_handler(HTTPException)(_http_error)
    for router in ROUTERS:
        app.include_router(router)
    return app
