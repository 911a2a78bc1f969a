"""The web console (FastAPI, server-rendered Jinja2): the analysts' alert queue and triage, system owners'
posture of their own systems, auditors' incident history and exports, admins' users and inventory.

Security lives on the server: every route declares the roles it serves (``need``), owners are limited to their
systems on every page, API and export, every POST carries the session's CSRF token, templates escape every
value, and failed logins are rate-limited and audited.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware

from soc.audit import AuditLog
from soc.audit.export import export_history, incident_timeline
from soc.core.config import Settings
from soc.core.errors import SocError
from soc.core.model import Alert, AlertStatus, Severity, Verdict, get_field
from soc.incidents import PHASES, Incidents
from soc.posture import REPORT_KIND, PostureEvaluator
from soc.posture.report import charts, render_report
from soc.response import PlaybookEngine, load_playbooks
from soc.store.base import AlertQuery, AlertStore
from soc.triage import Outcome, Triage
from soc.web.i18n import translator
from soc.web.users import LANGUAGES, LoginLimiter, Role, User, Users, password_matches

HERE = Path(__file__).resolve().parent
ALL_ROLES = tuple(Role)
EXPORT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}
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

    @classmethod
    def open(cls, settings: Settings, store: AlertStore, limiter: LoginLimiter | None = None) -> Console:
        audit = AuditLog(store)
        paths = [p for p in (settings.resolve(p) for p in settings.playbooks) if p.exists()]
        return cls(settings, store, audit, Triage(store, audit), Incidents(store, settings, audit),
                   PlaybookEngine(settings, store, load_playbooks(paths), audit),
                   Users(store, [s.name for s in settings.inventory]), limiter or LoginLimiter())


# --- sessions, roles and CSRF ----------------------------------------------------------------------------------


def session_user(request: Request) -> User | None:
    name = request.session.get("user")
    if not name:
        return None
    console: Console = request.app.state.console
    return console.users.get(name)  # read each time: a changed role or a removed user applies at once


def need(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, User]]:
    """Dependency: the logged-in user, who must have one of ``roles``."""
    async def check(request: Request) -> User:
        user = session_user(request)
        if user is None:
            raise LoginRequired()
        if user.role not in roles:
            raise HTTPException(403, "forbidden")
        return user
    return check


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
Anyone = Annotated[User, Depends(need(*ALL_ROLES))]


def flash(request: Request, message: str) -> None:
    request.session["flash"] = [*request.session.get("flash", []), message][-10:]


def back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- triage actions: one small function per action, shared by the alert page and the bulk form ---------------

TriageAction = Callable[[Console, list[str], FormData, str], list[Outcome]]


def _close(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    try:
        verdict = Verdict(_text(form, "verdict"))
    except ValueError:
        raise SocError(f"choose a verdict: {', '.join(v.value for v in Verdict)}") from None
    return console.triage.close(ids, verdict, actor, _text(form, "reason"))


def _note(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    return [console.triage.note(i, _text(form, "text"), actor) for i in ids]


def _assign(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    assignee = _text(form, "assignee")
    if not assignee:
        raise SocError("name the assignee")
    return console.triage.assign(ids, assignee, actor)


def _run_playbooks(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    outcomes = []
    for alert_id in ids:
        alert = console.store.get(alert_id)
        runs = console.playbooks.start_all(alert, actor) if alert else []
        outcomes.append(Outcome(alert_id, alert is not None,
                                ", ".join(f"{r['playbook']}: {r['status']}" for r in runs) or "no playbook matches"))
    return outcomes


ACTIONS: dict[str, TriageAction] = {
    "acknowledge": lambda c, ids, form, actor: c.triage.acknowledge(ids, actor),
    "start": lambda c, ids, form, actor: c.triage.start(ids, actor),
    "assign": _assign,
    "note": _note,
    "close": _close,
    "reopen": lambda c, ids, form, actor: c.triage.reopen(ids, actor, _text(form, "reason") or "reopened"),
    "playbooks": _run_playbooks,
}


# --- the application ---------------------------------------------------------------------------------------------


def create_app(settings: Settings, store: AlertStore, secret_key: str, https_only: bool = False,
               limiter: LoginLimiter | None = None) -> FastAPI:
    """The console over ``store``. ``secret_key`` signs the session cookies (keep it across restarts)."""
    console = Console.open(settings, store, limiter)
    app = FastAPI(title="soc console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.add_middleware(SessionMiddleware, secret_key=secret_key, session_cookie="soc_session", max_age=8 * 3600,
                       same_site="strict", https_only=https_only)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    # plain text, escaped by the template like every other value (tojson's \u003c would show in a <pre>)
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    templates = Jinja2Templates(env=env)

    def page(request: Request, user: User | None, name: str, status_code: int = 200,
             **context: Any) -> HTMLResponse:
        language = user.language if user else request.session.get("language", "vi")
        return templates.TemplateResponse(request, name, {
            "t": translator(language), "lang": language, "user": user, "csrf": csrf_token(request),
            "flashes": request.session.pop("flash", []), "home": HOME, "Role": Role, "languages": LANGUAGES,
            **context}, status_code=status_code)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "login required"}, status_code=401)
        return back("/login")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        key = {403: "forbidden", 404: "not_found"}.get(exc.status_code)
        return page(request, session_user(request), "error.html", exc.status_code, key=key, detail=str(exc.detail))

    def waiting_steps(runs: list[dict[str, Any]]) -> dict[str, str]:
        """Run id -> the step it waits to have approved."""
        waiting = {}
        for run in runs:
            playbook = console.playbooks.playbooks.get(run["playbook"])
            if run["status"] == "waiting_approval" and playbook is not None:
                waiting[run["id"]] = playbook.steps[run["next_step"]].id
        return waiting

    def visible_alert(user: User, alert_id: str) -> Alert:
        """The alert, when this user may see it; 404 otherwise (an owner cannot tell others' alerts exist)."""
        alert = console.store.get(alert_id)
        if alert is None or not user.may_see(alert.system):
            raise HTTPException(404, "no such alert")
        return alert

    def visible_system(user: User, name: str) -> str:
        if console.settings.system_named(name) is None or not user.may_see(name):
            raise HTTPException(404, "no such system")
        return name

    def query_alerts(user: User, severity: str | None, status: str | None, system: str | None, rule: str | None,
                     since: str | None, until: str | None) -> list[Alert]:
        try:
            query = AlertQuery(min_severity=Severity.parse(severity) if severity else None,
                               status=AlertStatus(status) if status else None, rule_id=rule or None,
                               system=system or None, limit=5000)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        if user.role == Role.OWNER:
            if system:
                visible_system(user, system)
            query.systems = list(user.systems)
        alerts = console.store.search(query)
        return [a for a in alerts if (not since or a.first_seen[: len(since)] >= since)
                and (not until or a.first_seen[: len(until)] <= until)]

    # --- login ---

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        return page(request, None, "login.html")

    @app.post("/login")
    async def login(request: Request, form: Form) -> Response:
        name, password = _text(form, "name"), str(form.get("password") or "")
        address = request.client.host if request.client else "unknown"
        keys = (f"user:{name}", f"ip:{address}")
        if console.limiter.blocked(*keys):
            console.audit.append(name or "-", "login.rate_limited", f"user:{name}", {"address": address})
            return page(request, None, "login.html", 429, error="login_limited")
        user = console.users.get(name)
        # hashing takes a while: off the event loop, so other requests are served meanwhile
        if not await run_in_threadpool(password_matches, user, password) or user is None:
            console.limiter.failed(*keys)
            console.audit.append(name or "-", "login.failed", f"user:{name}", {"address": address})
            return page(request, None, "login.html", 401, error="login_failed")
        console.limiter.succeeded(keys[0])
        console.audit.append(user.name, "login.succeeded", f"user:{user.name}", {"address": address})
        request.session.clear()  # a new session on login: no fixation
        request.session.update(user=user.name, csrf=secrets.token_urlsafe(32))
        return back(HOME[user.role])

    @app.post("/logout")
    async def logout(request: Request, user: Anyone, form: Form) -> Response:
        console.audit.append(user.name, "logout", f"user:{user.name}", {})
        request.session.clear()
        return back("/login")

    @app.get("/")
    async def home(request: Request) -> Response:
        user = session_user(request)
        return back(HOME[user.role] if user else "/login")

    @app.post("/me/language")
    async def set_language(request: Request, user: Anyone, form: Form) -> Response:
        try:
            console.users.set_language(user, _text(form, "language"))
        except SocError as exc:
            flash(request, exc.message)
        return back(HOME[user.role])

    # --- analysts (and owners, read-only, limited to their systems) ---

    @app.get("/alerts", response_class=HTMLResponse)
    async def alert_queue(request: Request, user: AnalystOrOwner, severity: str | None = None,
                          status: str | None = None, system: str | None = None, rule: str | None = None,
                          since: str | None = None, until: str | None = None, group: str = "none") -> Response:
        alerts = query_alerts(user, severity, status, system, rule, since, until)
        groups: dict[str, list[Alert]] = {}
        for alert in alerts:
            key = {"rule": alert.rule.name, "system": alert.system or "-"}.get(group, "")
            groups.setdefault(key, []).append(alert)
        systems = [s.name for s in console.settings.inventory if user.may_see(s.name)]
        return page(request, user, "alerts.html", groups=groups, total=len(alerts), systems=systems,
                    filters={"severity": severity or "", "status": status or "", "system": system or "",
                             "rule": rule or "", "since": since or "", "until": until or "", "group": group},
                    severities=[s.label for s in Severity], statuses=[s.value for s in AlertStatus],
                    verdicts=[v.value for v in Verdict])

    @app.post("/alerts/bulk")
    async def bulk(request: Request, user: Analyst, form: Form) -> Response:
        ids = [str(i) for i in form.getlist("ids")]
        run_action(request, _text(form, "action"), ids, form, user)
        return back("/alerts")

    def run_action(request: Request, name: str, ids: list[str], form: FormData, user: User) -> None:
        action = ACTIONS.get(name)
        if action is None:
            raise HTTPException(400, f"unknown action {name!r}")
        if not ids:
            flash(request, "no alert selected")
            return
        try:
            for outcome in action(console, ids, form, user.name):
                flash(request, f"{outcome.alert_id[:12]}: {outcome.message}")
        except SocError as exc:
            flash(request, exc.message)

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_page(request: Request, alert_id: str, user: AnalystOrOwner) -> Response:
        alert = visible_alert(user, alert_id)
        addresses = sorted({str(a) for a in (get_field(alert.ecs, "source.ip"), get_field(alert.ecs, "destination.ip"))
                            if a})
        query = AlertQuery(include_suppressed=True, limit=2000,
                           systems=list(user.systems) if user.role == Role.OWNER else None)
        related = [a for a in console.store.search(query) if a.id != alert.id and set(addresses)
                   & {str(get_field(a.ecs, "source.ip")), str(get_field(a.ecs, "destination.ip"))}][:20]
        flows = [e for address in addresses for e in console.store.events_for_address(address, limit=10)]
        if user.role == Role.OWNER:  # events are not tagged with a system: an owner sees the alert's own only
            flows = []
        system = console.settings.system_named(alert.system) if alert.system else None
        runs = [r for r in console.playbooks.runs() if r["alert_id"] == alert.id]
        return page(request, user, "alert.html", alert=alert, doc=alert.to_ecs(), related=related, flows=flows,
                    system=system, runs=runs, waiting=waiting_steps(runs), verdicts=[v.value for v in Verdict],
                    suppress_fields={f: get_field(alert.to_ecs(), f) for f in ("rule.id", "source.ip",
                                                                                 "destination.ip")
                                     if get_field(alert.to_ecs(), f) is not None})

    @app.post("/alerts/{alert_id}/suppress")
    async def suppress(request: Request, alert_id: str, user: Analyst, form: Form) -> Response:
        alert = visible_alert(user, alert_id)
        doc = alert.to_ecs()
        fields = {str(f): str(get_field(doc, str(f))) for f in form.getlist("fields")
                  if get_field(doc, str(f)) is not None}
        days = _text(form, "days")
        try:
            rule = console.triage.suppress(fields, _text(form, "reason"), user.name, float(days) if days else None)
            flash(request, f"suppression {rule.id} created")
        except (SocError, ValueError) as exc:
            flash(request, str(exc))
        return back(f"/alerts/{alert.id}")

    @app.post("/alerts/{alert_id}/{action}")
    async def alert_action(request: Request, alert_id: str, action: str, user: Analyst, form: Form) -> Response:
        alert = visible_alert(user, alert_id)
        run_action(request, action, [alert.id], form, user)
        return back(f"/alerts/{alert.id}")

    @app.get("/incidents", response_class=HTMLResponse)
    async def incident_list(request: Request, user: Analyst) -> Response:
        return page(request, user, "incidents.html", incidents=console.incidents.all())

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse)
    async def incident_page(request: Request, incident_id: str, user: Analyst) -> Response:
        try:
            incident = console.incidents.get(incident_id)
        except SocError:
            raise HTTPException(404, "no such incident") from None
        return page(request, user, "incident.html", incident=incident, phases=PHASES,
                    deadlines=console.incidents.deadlines(incident), alerts=console.incidents.alerts_of(incident))

    @app.get("/playbooks", response_class=HTMLResponse)
    async def playbook_runs(request: Request, user: Analyst) -> Response:
        runs = console.playbooks.runs()
        return page(request, user, "playbooks.html", runs=runs, waiting=waiting_steps(runs))

    @app.post("/playbooks/{run_id}/approve")
    async def approve(request: Request, run_id: str, user: Analyst, form: Form) -> Response:
        try:
            run = console.playbooks.approve(run_id, _text(form, "step"), user.name)
            flash(request, f"{run_id}: {run['status']}")
        except SocError as exc:
            flash(request, exc.message)
        return back("/playbooks")

    # --- system owners (analysts see every system) ---

    def postures(user: User, names: list[str] | None) -> list[Any]:
        if names is None:
            names = [s.name for s in console.settings.inventory if user.may_see(s.name)]
        return PostureEvaluator(console.settings, console.store).evaluate(names)

    @app.get("/posture", response_class=HTMLResponse)
    async def posture_list(request: Request, user: AnalystOrOwner) -> Response:
        return page(request, user, "posture_list.html", postures=postures(user, None))

    @app.get("/posture/{system}", response_class=HTMLResponse)
    async def posture_page(request: Request, system: str, user: AnalystOrOwner) -> Response:
        [posture] = postures(user, [visible_system(user, system)])
        return page(request, user, "posture.html", p=posture, charts=charts(posture))

    @app.get("/posture/{system}/report", response_class=HTMLResponse)
    async def posture_report(request: Request, system: str, user: AnalystOrOwner) -> Response:
        name = visible_system(user, system)
        kept = [r for r in console.store.list_records(REPORT_KIND) if r.get("system") == name]
        if kept:
            return HTMLResponse(max(kept, key=lambda r: r["created_at"])["html"])
        return HTMLResponse(render_report(postures(user, [name])[0]))

    # --- auditors ---

    @app.get("/history", response_class=HTMLResponse)
    async def history(request: Request, user: Auditor) -> Response:
        trail = console.audit.records()
        timelines = [incident_timeline(i, console.incidents, trail) for i in console.incidents.all()]
        return page(request, user, "history.html", verification=console.audit.verify(), timelines=timelines,
                    formats=list(EXPORT_TYPES))

    @app.get("/history/export")
    async def history_export(user: Auditor, fmt: str = "html", start: str | None = None,
                             end: str | None = None) -> Response:
        if fmt not in EXPORT_TYPES:
            raise HTTPException(400, f"unknown format {fmt!r}")
        body = export_history(console.incidents, console.audit, start or None, end or None, fmt, user.name)
        return Response(body, media_type=EXPORT_TYPES[fmt],
                        headers={"Content-Disposition": f'attachment; filename="incident-history.{fmt}"'})

    # --- admins ---

    @app.get("/admin/users", response_class=HTMLResponse)
    async def users_page(request: Request, user: Admin) -> Response:
        return page(request, user, "users.html", users=console.users.all(), roles=[r.value for r in Role],
                    systems=[s.name for s in console.settings.inventory])

    @app.post("/admin/users")
    async def add_user(request: Request, user: Admin, form: Form) -> Response:
        name = _text(form, "name")
        try:
            console.users.add(name, Role(_text(form, "role")), str(form.get("password") or ""),
                              [str(s) for s in form.getlist("systems")], _text(form, "language") or "vi")
            console.audit.append(user.name, "user.added", f"user:{name}", {"role": _text(form, "role")})
            flash(request, f"user {name} added")
        except (SocError, ValueError) as exc:
            flash(request, str(exc))
        return back("/admin/users")

    @app.get("/admin/inventory", response_class=HTMLResponse)
    async def inventory(request: Request, user: Admin) -> Response:
        return page(request, user, "inventory.html", systems=console.settings.inventory)

    # --- JSON API (the same rules as the pages) ---

    @app.get("/api/alerts")
    async def api_alerts(user: AnalystOrOwner, severity: str | None = None, status: str | None = None,
                         system: str | None = None, rule: str | None = None, since: str | None = None,
                         until: str | None = None) -> JSONResponse:
        alerts = query_alerts(user, severity, status, system, rule, since, until)
        return JSONResponse([a.to_ecs() for a in alerts])

    @app.get("/api/alerts/{alert_id}")
    async def api_alert(alert_id: str, user: AnalystOrOwner) -> JSONResponse:
        return JSONResponse(visible_alert(user, alert_id).to_ecs())

    @app.get("/api/posture/{system}")
    async def api_posture(system: str, user: AnalystOrOwner) -> JSONResponse:
        return JSONResponse(postures(user, [visible_system(user, system)])[0].to_dict())

    return app
