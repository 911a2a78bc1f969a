"""The analysts' alert queue, one alert's page and triage (owners read their own systems' alerts, never act), and
the alerts' JSON API under the same rules."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from soc.core.errors import SocError
from soc.core.model import Alert, AlertStatus, Severity, Verdict, get_field
from soc.store.base import AlertQuery
from soc.triage import Outcome
from soc.web.deps import (
    Analyst,
    AnalystOrOwner,
    Console,
    Form,
    Services,
    back,
    flash,
    page,
    text,
    visible_alert,
    visible_system,
)
from soc.web.routes.playbooks import waiting_steps
from soc.web.users import Role, User

router = APIRouter()

# --- triage actions: one small function per action, shared by the alert page and the bulk form ---------------

TriageAction = Callable[[Console, list[str], FormData, str], list[Outcome]]


def _close(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    try:
        verdict = Verdict(text(form, "verdict"))
    except ValueError:
        raise SocError(f"choose a verdict: {', '.join(v.value for v in Verdict)}") from None
    return console.triage.close(ids, verdict, actor, text(form, "reason"))


def _note(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    return [console.triage.note(i, text(form, "text"), actor) for i in ids]


def _assign(console: Console, ids: list[str], form: FormData, actor: str) -> list[Outcome]:
    assignee = text(form, "assignee")
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
    "reopen": lambda c, ids, form, actor: c.triage.reopen(ids, actor, text(form, "reason") or "reopened"),
    "playbooks": _run_playbooks,
}


def run_action(request: Request, console: Console, name: str, ids: list[str], form: FormData, user: User) -> None:
    action = ACTIONS.get(name)
    if action is None:
        raise HTTPException(400, f"unknown action {name!r}")
    if not ids:
        flash(request, "no alert selected")
        return
    try:
        with console.writes:
            outcomes = action(console, ids, form, user.name)
    except SocError as exc:
        flash(request, exc.message)
        return
    for outcome in outcomes:
        flash(request, f"{outcome.alert_id[:12]}: {outcome.message}")


def query_alerts(console: Console, user: User, severity: str | None, status: str | None, system: str | None,
                 rule: str | None, since: str | None, until: str | None) -> list[Alert]:
    try:
        query = AlertQuery(min_severity=Severity.parse(severity) if severity else None,
                           status=AlertStatus(status) if status else None, rule_id=rule or None,
                           system=system or None, limit=5000)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if user.role == Role.OWNER:
        if system:
            visible_system(console, user, system)
        query.systems = list(user.systems)
    alerts = console.store.search(query)
    return [a for a in alerts if (not since or a.first_seen[: len(since)] >= since)
            and (not until or a.first_seen[: len(until)] <= until)]


# --- pages ---


@router.get("/alerts", response_class=HTMLResponse)
def alert_queue(request: Request, console: Services, user: AnalystOrOwner, severity: str | None = None,
                status: str | None = None, system: str | None = None, rule: str | None = None,
                since: str | None = None, until: str | None = None, group: str = "none") -> Response:
    alerts = query_alerts(console, user, severity, status, system, rule, since, until)
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


@router.post("/alerts/bulk")
def bulk(request: Request, console: Services, user: Analyst, form: Form) -> Response:
    ids = [str(i) for i in form.getlist("ids")]
    run_action(request, console, text(form, "action"), ids, form, user)
    return back("/alerts")


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: str, console: Services, user: AnalystOrOwner) -> Response:
    alert = visible_alert(console, user, alert_id)
    doc = alert.to_ecs()
    addresses = sorted({str(a) for a in (get_field(doc, "source.ip"), get_field(doc, "destination.ip")) if a})
    query = AlertQuery(include_suppressed=True, limit=2000,
                       systems=list(user.systems) if user.role == Role.OWNER else None)
    related = [a for a in console.store.search(query) if a.id != alert.id and set(addresses)
               & {str(get_field(a.ecs, "source.ip")), str(get_field(a.ecs, "destination.ip"))}][:20]
    flows = [e for address in addresses for e in console.store.events_for_address(address, limit=10)]
    if user.role == Role.OWNER:  # events are not tagged with a system: an owner sees the alert's own only
        flows = []
    system = console.settings.system_named(alert.system) if alert.system else None
    runs = [r for r in console.playbooks.runs() if r["alert_id"] == alert.id]
    return page(request, user, "alert.html", alert=alert, doc=doc, related=related, flows=flows, system=system,
                runs=runs, waiting=waiting_steps(console, runs), verdicts=[v.value for v in Verdict],
                suppress_fields={f: get_field(doc, f) for f in ("rule.id", "source.ip", "destination.ip")
                                 if get_field(doc, f) is not None})


@router.post("/alerts/{alert_id}/suppress")
def suppress(request: Request, alert_id: str, console: Services, user: Analyst, form: Form) -> Response:
    alert = visible_alert(console, user, alert_id)
    doc = alert.to_ecs()
    fields = {str(f): str(get_field(doc, str(f))) for f in form.getlist("fields") if get_field(doc, str(f)) is not None}
    days = text(form, "days")
    try:
        with console.writes:
            rule = console.triage.suppress(fields, text(form, "reason"), user.name, float(days) if days else None)
        flash(request, f"suppression {rule.id} created")
    except (SocError, ValueError) as exc:
        flash(request, str(exc))
    return back(f"/alerts/{alert.id}")


@router.post("/alerts/{alert_id}/{action}")
def alert_action(request: Request, alert_id: str, action: str, console: Services, user: Analyst,
                 form: Form) -> Response:
    alert = visible_alert(console, user, alert_id)
    run_action(request, console, action, [alert.id], form, user)
    return back(f"/alerts/{alert.id}")


# --- JSON API ---


@router.get("/api/alerts")
def api_alerts(console: Services, user: AnalystOrOwner, severity: str | None = None, status: str | None = None,
               system: str | None = None, rule: str | None = None, since: str | None = None,
               until: str | None = None) -> JSONResponse:
    alerts = query_alerts(console, user, severity, status, system, rule, since, until)
    return JSONResponse([a.to_ecs() for a in alerts])


@router.get("/api/alerts/{alert_id}")
def api_alert(alert_id: str, console: Services, user: AnalystOrOwner) -> JSONResponse:
    return JSONResponse(visible_alert(console, user, alert_id).to_ecs())
