"""Logging in and out, the home redirect and the user's language. Failed logins are rate-limited and audited."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from soc.core.errors import SocError
from soc.web.deps import HOME, Anyone, Form, Services, back, flash, page, text
from soc.web.users import password_matches

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return page(request, None, "login.html")


@router.post("/login")
def login(request: Request, console: Services, form: Form) -> Response:
    name, password = text(form, "name"), str(form.get("password") or "")
    address = request.client.host if request.client else "unknown"
    keys = (f"user:{name}", f"ip:{address}")
    if console.limiter.blocked(*keys):
        console.record(name or "-", "login.rate_limited", f"user:{name}", {"address": address})
        return page(request, None, "login.html", 429, error="login_limited")
    user = console.users.get(name)
    # argon2 is slow on purpose; this runs in the thread pool, outside the write lock, so others go on meanwhile
    if not password_matches(user, password) or user is None:
        console.limiter.failed(*keys)
        console.record(name or "-", "login.failed", f"user:{name}", {"address": address})
        return page(request, None, "login.html", 401, error="login_failed")
    console.limiter.succeeded(keys[0])
    console.record(user.name, "login.succeeded", f"user:{user.name}", {"address": address})
    request.session.clear()  # a new session on login: no fixation
    request.session.update(user=user.name, csrf=secrets.token_urlsafe(32))
    return back(HOME[user.role])


@router.post("/logout")
def logout(request: Request, console: Services, user: Anyone, form: Form) -> Response:
    console.record(user.name, "logout", f"user:{user.name}", {})
    request.session.clear()
    return back("/login")


@router.get("/")
def home(user: Anyone) -> Response:
    """Each role's first page; without a session the role check sends the browser to the login form."""
    return back(HOME[user.role])


@router.post("/me/language")
def set_language(request: Request, console: Services, user: Anyone, form: Form) -> Response:
    try:
        with console.writes:
            console.users.set_language(user, text(form, "language"))
    except SocError as exc:
        flash(request, exc.message)
    return back(HOME[user.role])
