"""Every route of the console as every role: status codes, what an owner may never see, CSRF, escaping, login
rate limit and audit, languages, triage through the console, exports."""

from __future__ import annotations

import inspect
import json
import re

from fastapi.testclient import TestClient

from soc.audit import AuditLog
from soc.core.model import AlertStatus
from soc.store.sqlite import SqliteStore
from soc.triage import Triage
from soc.web import create_app
from soc.web.deps import RoleCheck, checked_form
from soc.web.users import LoginLimiter, Role

from .conftest import OTHER, OWN, PASSWORD, XSS, World, csrf_of, endpoints, login

ANALYST, OWNER, AUDITOR, ADMIN = "analyst", "owner", "auditor", "admin"
ROLES = (ANALYST, OWNER, AUDITOR, ADMIN)


def allowed(roles: tuple[str, ...], *routes: str) -> dict[tuple[str, str], dict[str, int]]:
    """``routes`` ("GET /path") answer ``roles`` (200 for a page, 303 for a form's redirect), 403 for the others."""
    table = {}
    for route in routes:
        method, path = route.split()
        ok = 200 if method == "GET" else 303
        table[(method, path)] = {role: ok if role in roles else 403 for role in ROLES}
    return table


# (method, route) -> {role: status}; a route with {target} is requested for OWN's and OTHER's objects: an owner
# gets 404 for OTHER's (it cannot even learn they exist), 200 for its own.
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/login"): dict.fromkeys(ROLES, 200),
    ("GET", "/"): dict.fromkeys(ROLES, 303),
    **allowed(ROLES, "POST /me/language"),
    **allowed((ANALYST, OWNER), "GET /alerts", "GET /alerts/{alert_id}", "GET /posture", "GET /posture/{system}",
              "GET /posture/{system}/report", "GET /api/alerts", "GET /api/alerts/{alert_id}",
              "GET /api/posture/{system}"),
    **allowed((ANALYST,), "POST /alerts/bulk", "POST /alerts/{alert_id}/suppress", "POST /alerts/{alert_id}/{action}",
              "GET /incidents", "GET /incidents/{incident_id}", "GET /playbooks", "POST /playbooks/{run_id}/approve"),
    **allowed((AUDITOR,), "GET /history", "GET /history/export"),
    **allowed((ADMIN,), "GET /admin/users", "POST /admin/users", "GET /admin/inventory"),
}
SPECIAL = {("POST", "/login"), ("POST", "/logout")}  # tested on their own below
PUBLIC = {("GET", "/login"), ("POST", "/login")}  # the only routes without a role check


def routes(client: TestClient) -> list[tuple[str, str]]:
    return sorted((e.method, e.path) for e in endpoints(client.app)[0])  # type: ignore[arg-type]


def test_every_route_declares_its_roles_and_posts_check_csrf(client: TestClient) -> None:
    """Walks the app's routes: a role check on each (the roles the table above allows), the CSRF-checked form on
    each POST, a plain function as handler (FastAPI runs it in its thread pool: store I/O never blocks the event
    loop); nothing else is served but the static files."""
    found, others = endpoints(client.app)  # type: ignore[arg-type]
    assert [getattr(r, "path", None) for r in others] == ["/static"]
    for e in found:
        calls = [d.call for d in e.route.dependant.dependencies]
        checks = [c for c in calls if isinstance(c, RoleCheck)]
        if (e.method, e.path) in PUBLIC:
            assert checks == [], e
        else:
            statuses = EXPECTED.get((e.method, e.path), dict.fromkeys(ROLES, 303))  # /logout: everyone
            want = frozenset(Role(role) for role, status in statuses.items() if status in (200, 303))
            assert [c.roles for c in checks] == [want], e
        assert (checked_form in calls) == (e.method == "POST"), e
        assert not inspect.iscoroutinefunction(e.route.endpoint), f"{e.method} {e.path} runs on the event loop"


def concrete(path: str, world: World, mine: bool) -> str:
    return path.format(alert_id=world.own_alert if mine else world.other_alert, system=OWN if mine else OTHER,
                       action="acknowledge", incident_id=world.incident, run_id="no-such-run")


def request(client: TestClient, method: str, path: str, csrf: str) -> tuple[int, str]:
    if method == "GET":
        answer = client.get(path)
    else:
        answer = client.post(path, data={"csrf": csrf, "language": "en", "text": "x", "step": "x",
                                           "action": "acknowledge"})
    return answer.status_code, answer.text


def test_every_route_as_every_role(world: World, client: TestClient) -> None:
    assert set(routes(client)) == set(EXPECTED) | SPECIAL, "a new route needs its expected access here"
    for role in ROLES:
        client.cookies.clear()
        csrf = login(client, role)
        for (method, path), expected in EXPECTED.items():
            for mine in (True, False) if "{" in path else (True,):
                url = concrete(path, world, mine)
                status, body = request(client, method, url, csrf)
                want = expected[role]
                if role == OWNER and not mine and want in (200, 303):
                    want = 404  # another system's alert, posture or report
                assert status == want, f"{role} {method} {url}: {status}, expected {want}"
                if role == OWNER:
                    assert world.other_alert not in body and OTHER not in body, url


def test_without_login_pages_redirect_and_the_api_refuses(world: World, client: TestClient) -> None:
    for method, path in EXPECTED:
        if path == "/login":
            continue
        url = concrete(path, world, True)
        answer = client.get(url) if method == "GET" else client.post(url, data={})
        if path.startswith("/api/"):
            assert (answer.status_code, answer.json()) == (401, {"error": "login required"}), url
        else:
            assert (answer.status_code, answer.headers["location"]) == (303, "/login"), url


def test_an_owner_sees_only_its_systems_alerts(world: World, client: TestClient) -> None:
    login(client, OWNER)
    ids = {doc["event"]["id"] for doc in client.get("/api/alerts").json()}
    assert ids == {world.own_alert, world.own_hostile}
    assert client.get("/api/alerts", params={"system": OTHER}).status_code == 404
    assert client.get(f"/alerts?system={OTHER}").status_code == 404
    page = client.get("/alerts").text
    assert world.own_alert in page and world.other_alert not in page
    detail = client.get(f"/alerts/{world.own_hostile}").text  # related alerts of OTHER share no address: none
    assert world.other_alert not in detail and "do-acknowledge" not in detail  # read-only for owners


def test_every_post_needs_the_csrf_token(world: World, client: TestClient) -> None:
    assert client.post("/login", data={"name": ADMIN, "password": PASSWORD}).status_code == 403
    for role, allowed in ((ANALYST, ANALYST), (ADMIN, ADMIN)):
        client.cookies.clear()
        login(client, role)
        for method, path in EXPECTED:
            if method == "POST" and (allowed in EXPECTED[(method, path)] and EXPECTED[(method, path)][allowed] == 303):
                for data in ({}, {"csrf": "forged"}):
                    answer = client.post(concrete(path, world, True), data=data)
                    assert answer.status_code == 403, (role, path, data)
    stored = SqliteStore(world.folder / "soc.db").get(world.own_alert)
    assert stored is not None and stored.status == AlertStatus.NEW  # nothing happened


def test_values_from_logs_and_packets_are_escaped(world: World, client: TestClient) -> None:
    login(client, ANALYST)
    pages = ["/alerts", "/alerts?group=rule", f"/alerts/{world.other_alert}", f"/alerts/{world.own_hostile}",
             "/incidents", f"/incidents/{world.incident}"]
    csrf = csrf_of(client.get("/alerts").text)
    client.post(f"/alerts/{world.other_alert}/note", data={"csrf": csrf, "text": XSS})
    client.post(f"/alerts/{world.other_alert}/assign", data={"csrf": csrf, "assignee": XSS})
    for url in pages:
        body = client.get(url).text
        assert "<script>" not in body and "<img" not in body, url
        assert "&lt;script&gt;" in body, url
    client.cookies.clear()
    login(client, AUDITOR)
    body = client.get("/history").text
    assert "<script>" not in body and "Case &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
    client.cookies.clear()
    login(client, OWNER)
    for url in ("/alerts", f"/alerts/{world.own_hostile}", f"/posture/{OWN}", f"/posture/{OWN}/report"):
        body = client.get(url).text
        assert "<script>" not in body and "<img" not in body, url


def test_logins_are_rate_limited_and_audited(world: World) -> None:
    store = SqliteStore(world.folder / "soc.db")
    client = TestClient(create_app(world.settings, store, "k", limiter=LoginLimiter(max_failures=3, window=600)),
                        follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    for _ in range(3):
        answer = client.post("/login", data={"name": OWNER, "password": "wrong password", "csrf": token})
        assert answer.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu." in answer.text
    answer = client.post("/login", data={"name": OWNER, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 429  # even the right password waits now
    assert client.post("/login", data={"name": "nobody", "password": "x", "csrf": token}).status_code == 429  # per IP
    actions = [(r["actor"], r["action"]) for r in AuditLog(store).records(f"user:{OWNER}")]
    assert actions == [(OWNER, "login.failed")] * 3 + [(OWNER, "login.rate_limited")]
    ok = TestClient(create_app(world.settings, store, "k"), follow_redirects=False)
    login(ok, ANALYST)
    assert AuditLog(store).records(f"user:{ANALYST}")[-1]["action"] == "login.succeeded"
    assert AuditLog(store).verify().ok


def test_language_per_user(world: World, client: TestClient) -> None:
    csrf = login(client, ADMIN)  # admin's language is Vietnamese
    assert "<h1>Người dùng</h1>" in client.get("/admin/users").text
    client.post("/me/language", data={"csrf": csrf, "language": "en"})
    assert "<h1>Users</h1>" in client.get("/admin/users").text
    assert client.post("/admin/users", data={"csrf": csrf, "name": "o2", "password": PASSWORD, "role": "owner",
                                             "systems": OTHER, "language": "vi"}).status_code == 303
    client.cookies.clear()
    csrf = login(client, "o2")
    assert "<h1>Tình trạng an toàn</h1>" in client.get("/posture").text
    assert client.post("/logout", data={}).status_code == 403  # logging out needs the token too
    answer = client.post("/logout", data={"csrf": csrf})
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert client.get("/posture").headers["location"] == "/login"


def test_triage_through_the_console(world: World, client: TestClient) -> None:
    csrf = login(client, ANALYST)
    alert = world.own_alert
    client.post("/alerts/bulk", data={"csrf": csrf, "action": "acknowledge", "ids": [alert, world.other_alert]})
    client.post(f"/alerts/{alert}/assign", data={"csrf": csrf, "assignee": "minh"})
    client.post(f"/alerts/{alert}/close", data={"csrf": csrf, "verdict": "true_positive", "reason": "scan"})
    client.post(f"/alerts/{alert}/suppress", data={"csrf": csrf, "fields": ["source.ip"], "reason": "lab scanner"})
    store = SqliteStore(world.folder / "soc.db")
    stored = store.get(alert)
    assert stored is not None
    assert (stored.status.value, stored.assignee, stored.verdict.value if stored.verdict else None) == (
        "closed", "minh", "true_positive")
    assert [n["text"] for n in stored.notes] == ["closed: scan"]
    assert [s.fields for s in Triage(store).suppressions()] == [
        {"source.ip": "172.16.0.8"}]
    actions = [(r["actor"], r["action"]) for r in AuditLog(store).records(f"alert:{alert}")]
    assert actions == [(ANALYST, "alert.acknowledged"), (ANALYST, "alert.assigned"), (ANALYST, "alert.closed"),
                       (ANALYST, "alert.noted")]


def test_auditor_exports_history_with_the_chain_verified(world: World, client: TestClient) -> None:
    login(client, AUDITOR)
    page = client.get("/history").text
    assert '<strong class="ok" id="chain">verified</strong>' in page and world.incident in page
    answer = client.get("/history/export", params={"fmt": "json"})
    assert answer.headers["content-disposition"] == 'attachment; filename="incident-history.json"'
    exported = json.loads(answer.text)
    assert exported["audit_chain"]["verified"] is True
    assert [t["incident"] for t in exported["incidents"]] == [world.incident]
    assert client.get("/history/export", params={"fmt": "exe"}).status_code == 400
    store = SqliteStore(world.folder / "soc.db")
    last = AuditLog(store).records("audit:history")[-1]
    assert (last["actor"], last["action"], last["details"]["format"]) == (AUDITOR, "audit.exported", "json")


def test_a_damaged_user_record_is_left_out(world: World) -> None:
    store = SqliteStore(world.folder / "soc.db")
    store.put_record("user", "broken", {"name": "broken", "role": "superuser", "password_hash": "x"})
    client = TestClient(create_app(world.settings, store, "k"), follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    assert client.post("/login", data={"name": "broken", "password": "x", "csrf": token}).status_code == 401
    login(client, ADMIN)
    page = client.get("/admin/users").text
    assert "<td>owner</td>" in page and "broken" not in page


def test_a_playbook_step_is_approved_from_the_alert(world: World, client: TestClient) -> None:
    csrf = login(client, ANALYST)
    client.post(f"/alerts/{world.own_alert}/playbooks", data={"csrf": csrf})
    page = client.get(f"/alerts/{world.own_alert}").text
    assert "playbook--port-scan: waiting_approval" in page
    assert '<input type="hidden" name="step" value="block-scanner">' in page
    run_id = re.search(r'action="/playbooks/([0-9a-f]+)/approve"', page).group(1)  # type: ignore[union-attr]
    client.post(f"/playbooks/{run_id}/approve", data={"csrf": csrf, "step": "block-scanner"})
    assert "playbook--port-scan: done" in client.get(f"/alerts/{world.own_alert}").text
    client.cookies.clear()
    login(client, OWNER)  # the owner sees the run, but no approve button
    page = client.get(f"/alerts/{world.own_alert}").text
    assert "playbook--port-scan: done" in page and "approve" not in page
