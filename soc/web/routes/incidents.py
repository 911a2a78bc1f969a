"""The analysts' incidents: the list, and one incident with its phases, reporting deadlines and alerts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from soc.core.errors import SocError
from soc.incidents import PHASES
from soc.web.deps import Analyst, Services, page

router = APIRouter()


@router.get("/incidents", response_class=HTMLResponse)
def incident_list(request: Request, console: Services, user: Analyst) -> Response:
    return page(request, user, "incidents.html", incidents=console.incidents.all())


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: str, console: Services, user: Analyst) -> Response:
    try:
        incident = console.incidents.get(incident_id)
    except SocError:
        raise HTTPException(404, "no such incident") from None
    return page(request, user, "incident.html", incident=incident, phases=PHASES,
                deadlines=console.incidents.deadlines(incident), alerts=console.incidents.alerts_of(incident))
