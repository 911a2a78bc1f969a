"""Security-level posture: owners see their own systems, analysts every system; the page, the kept report and
the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from soc.posture import REPORT_KIND, PostureEvaluator, SystemPosture
from soc.posture.report import charts, render_report
from soc.web.deps import AnalystOrOwner, Console, Services, page, visible_system
from soc.web.users import User

router = APIRouter()


def postures(console: Console, user: User, names: list[str] | None) -> list[SystemPosture]:
    if names is None:
        names = [s.name for s in console.settings.inventory if user.may_see(s.name)]
    return PostureEvaluator(console.settings, console.store).evaluate(names)


@router.get("/posture", response_class=HTMLResponse)
def posture_list(request: Request, console: Services, user: AnalystOrOwner) -> Response:
    return page(request, user, "posture_list.html", postures=postures(console, user, None))


@router.get("/posture/{system}", response_class=HTMLResponse)
def posture_page(request: Request, system: str, console: Services, user: AnalystOrOwner) -> Response:
    [posture] = postures(console, user, [visible_system(console, user, system)])
    return page(request, user, "posture.html", p=posture, charts=charts(posture))


@router.get("/posture/{system}/report", response_class=HTMLResponse)
def posture_report(system: str, console: Services, user: AnalystOrOwner) -> Response:
    name = visible_system(console, user, system)
    kept = [r for r in console.store.list_records(REPORT_KIND) if r.get("system") == name]
    if kept:
        return HTMLResponse(max(kept, key=lambda r: r["created_at"])["html"])
    return HTMLResponse(render_report(postures(console, user, [name])[0]))


@router.get("/api/posture/{system}")
def api_posture(system: str, console: Services, user: AnalystOrOwner) -> JSONResponse:
    return JSONResponse(postures(console, user, [visible_system(console, user, system)])[0].to_dict())
