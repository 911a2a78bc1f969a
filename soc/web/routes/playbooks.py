"""Playbook runs and the approval of a step that waits for an analyst."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from soc.core.errors import SocError
from soc.web.deps import Analyst, Console, Form, Services, back, flash, page, text

router = APIRouter()


def waiting_steps(console: Console, runs: list[dict[str, Any]]) -> dict[str, str]:
    """Run id -> the step it waits to have approved."""
    waiting = {}
    for run in runs:
        playbook = console.playbooks.playbooks.get(run["playbook"])
        if run["status"] == "waiting_approval" and playbook is not None:
            waiting[run["id"]] = playbook.steps[run["next_step"]].id
    return waiting


@router.get("/playbooks", response_class=HTMLResponse)
def playbook_runs(request: Request, console: Services, user: Analyst) -> Response:
    runs = console.playbooks.runs()
    return page(request, user, "playbooks.html", runs=runs, waiting=waiting_steps(console, runs))


@router.post("/playbooks/{run_id}/approve")
def approve(request: Request, run_id: str, console: Services, user: Analyst, form: Form) -> Response:
    try:
        with console.writes:
            run = console.playbooks.approve(run_id, text(form, "step"), user.name)
        flash(request, f"{run_id}: {run['status']}")
    except SocError as exc:
        flash(request, exc.message)
    return back("/playbooks")
