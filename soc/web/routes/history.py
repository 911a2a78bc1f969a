"""The auditors' incident history with the audit chain verified, and its export (itself audited)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from soc.audit.export import export_history, incident_timeline
from soc.web.deps import Auditor, Services, page

router = APIRouter()

EXPORT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


@router.get("/history", response_class=HTMLResponse)
def history(request: Request, console: Services, user: Auditor) -> Response:
    trail = console.audit.records()
    timelines = [incident_timeline(i, console.incidents, trail) for i in console.incidents.all()]
    return page(request, user, "history.html", verification=console.audit.verify(), timelines=timelines,
                formats=list(EXPORT_TYPES))


@router.get("/history/export")
def history_export(console: Services, user: Auditor, fmt: str = "html", start: str | None = None,
                   end: str | None = None) -> Response:
    if fmt not in EXPORT_TYPES:
        raise HTTPException(400, f"unknown format {fmt!r}")
    with console.writes:  # the export appends its own audit record
        body = export_history(console.incidents, console.audit, start or None, end or None, fmt, user.name)
    return Response(body, media_type=EXPORT_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="incident-history.{fmt}"'})
