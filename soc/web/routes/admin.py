"""The admins' pages: console users (list and add) and the inventory of systems."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from soc.core.errors import SocError
from soc.web.deps import Admin, Form, Services, back, flash, page, text
from soc.web.users import Role

router = APIRouter(prefix="/admin")


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, console: Services, user: Admin) -> Response:
    return page(request, user, "users.html", users=console.users.all(), roles=[r.value for r in Role],
                systems=[s.name for s in console.settings.inventory])


@router.post("/users")
def add_user(request: Request, console: Services, user: Admin, form: Form) -> Response:
    name, role = text(form, "name"), text(form, "role")
    try:
        added = console.users.add(name, Role(role), str(form.get("password") or ""),
                                  [str(s) for s in form.getlist("systems")], text(form, "language") or "vi")
        console.record(user.name, "user.added", f"user:{added.name}", {"role": role})
        flash(request, f"user {name} added")
    except (SocError, ValueError) as exc:
        flash(request, str(exc))
    return back("/admin/users")


@router.get("/inventory", response_class=HTMLResponse)
def inventory(request: Request, console: Services, user: Admin) -> Response:
    return page(request, user, "inventory.html", systems=console.settings.inventory)
