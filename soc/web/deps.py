"""What every router of the console shares: the Console services, the session's user and its roles (``need``),
the CSRF-checked form, flash messages and page rendering, and the owner's limits on alerts and systems.

Dependencies that touch the store are plain functions: FastAPI runs them in its thread pool, off the event loop.
Only the form reader is ``async``, because reading the body is awaited.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import FormData

from soc.audit import AuditLog
from soc.core.config import Settings
from soc.core.model import Alert
from soc.incidents import Incidents
from soc.response import PlaybookEngine, load_playbooks
from soc.store.base import AlertStore
from soc.triage import Triage
from soc.web.i18n import translator
from soc.web.users import LANGUAGES, LoginLimiter, Role, User, Users

HERE = Path(__file__).resolve().parent
HOME = {Role.ANALYST: "/alerts", Role.OWNER: "/posture", Role.AUDITOR: "/history", Role.ADMIN: "/admin/users"}


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


@dataclass(slots=True)
class Console:
    """What the routes work with: the engine's own services, never the store written directly."""

    settings: Settings
    store: AlertStore
    audit: AuditLog
    triage: Triage
    incidents: Incidents
    playbooks: PlaybookEngine
    users: Users
    limiter: LoginLimiter
    # Requests run in a thread pool: a change that reads records and writes them back (a playbook run, an
    # incident, a user's language) holds this, so two requests never interleave theirs. Reading pages do not.
    writes: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, store: AlertStore, limiter: LoginLimiter | None = None) -> Console:
        audit = AuditLog(store)
        paths = [p for p in (settings.resolve(p) for p in settings.playbooks) if p.exists()]
        return cls(settings, store, audit, Triage(store, audit), Incidents(store, settings, audit),
                   PlaybookEngine(settings, store, load_playbooks(paths), audit),
                   Users(store, [s.name for s in settings.inventory]), limiter or LoginLimiter())

    def record(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """One audit record, appended under the write lock."""
        with self.writes:
            self.audit.append(actor, action, subject, details)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def _services(request: Request) -> Console:  # no I/O: no need for a thread
    return console_of(request)


Services = Annotated[Console, Depends(_services)]


# --- sessions, roles and CSRF ----------------------------------------------------------------------------------


def session_user(request: Request) -> User | None:
    name = request.session.get("user")
    if not name:
        return None
    return console_of(request).users.get(name)  # read each time: a changed role or a removed user applies at once


class RoleCheck:
    """Dependency: the logged-in user, who must have one of ``roles`` (kept on the object, so tests can check
    that every route declares its roles)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(self, request: Request) -> User:  # plain def: reading the user is store I/O
        user = session_user(request)
        if user is None:
            raise LoginRequired()
        if user.role not in self.roles:
            raise HTTPException(403, "forbidden")
        return user


def need(*roles: Role) -> RoleCheck:
    return RoleCheck(*roles)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


async def checked_form(request: Request) -> FormData:
    """Dependency of every POST: the form, once its CSRF token matches the session's."""
    form = await request.form()
    sent, kept = str(form.get("csrf") or ""), str(request.session.get("csrf") or "")
    if not kept or not hmac.compare_digest(sent, kept):
        raise HTTPException(403, "missing or wrong CSRF token")
    return form


Form = Annotated[FormData, Depends(checked_form)]
Analyst = Annotated[User, Depends(need(Role.ANALYST))]
AnalystOrOwner = Annotated[User, Depends(need(Role.ANALYST, Role.OWNER))]
Auditor = Annotated[User, Depends(need(Role.AUDITOR))]
Admin = Annotated[User, Depends(need(Role.ADMIN))]
Anyone = Annotated[User, Depends(need(*Role))]


def flash(request: Request, message: str) -> None:
    request.session["flash"] = [*request.session.get("flash", []), message][-10:]


def back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- pages -------------------------------------------------------------------------------------------------------

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
# plain text, escaped by the template like every other value (tojson's \u003c would show in a <pre>)
_env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
templates = Jinja2Templates(env=_env)


def page(request: Request, user: User | None, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    language = user.language if user else request.session.get("language", "vi")
    return templates.TemplateResponse(request, name, {
        "t": translator(language), "lang": language, "user": user, "csrf": csrf_token(request),
        "flashes": request.session.pop("flash", []), "home": HOME, "Role": Role, "languages": LANGUAGES,
        **context}, status_code=status_code)


# --- what an owner may see ---------------------------------------------------------------------------------------


def visible_alert(console: Console, user: User, alert_id: str) -> Alert:
    """The alert, when this user may see it; 404 otherwise (an owner cannot tell others' alerts exist)."""
    alert = console.store.get(alert_id)
    if alert is None or not user.may_see(alert.system):
        raise HTTPException(404, "no such alert")
    return alert


def visible_system(console: Console, user: User, name: str) -> str:
    if console.settings.system_named(name) is None or not user.may_see(name):
        raise HTTPException(404, "no such system")
    return name
