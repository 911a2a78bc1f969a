"""End to end in a real browser (Debian's headless Chromium, driven by Playwright) against uvicorn on a free
port: the analyst triages the alert of a replayed capture and approves a playbook step, the owner reads the
posture of the system it hit, the auditor exports the history with the chain verified, the admin sees users.
Screenshots are kept in tests/web/artifacts/."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.audit import AuditLog
from soc.store.sqlite import SqliteStore
from soc.web import create_app

from .conftest import OWN, PASSWORD, World, serving

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

playwright_sync = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture
def console_url(world: World) -> Iterator[str]:
    with serving(create_app(world.settings, SqliteStore(world.folder / "soc.db"), "browser-test-key")) as url:
        yield url


def test_each_role_in_a_real_browser(world: World, console_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # Playwright starts its driver with asyncio subprocesses: an event loop closed by an earlier test (aiosmtpd,
    # the syslog listener) can leave the process without an active child watcher, so give it a fresh one.
    asyncio.set_child_watcher(asyncio.ThreadedChildWatcher())
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(accept_downloads=True)

            def log_in(name: str) -> None:
                page.context.clear_cookies()
                page.goto(f"{console_url}/login")
                page.fill("input[name=name]", name)
                page.fill("input[name=password]", PASSWORD)
                page.click("#login")
                page.wait_for_load_state()

            # analyst: the alert of the capture is in the queue; run its playbook, acknowledge, approve the block
            log_in("analyst")
            assert page.url == f"{console_url}/alerts"
            page.get_by_text("172.16.0.8 probed 997 port(s)").click()
            assert page.locator("#status").inner_text() == "new"
            page.screenshot(path=str(ARTIFACTS / "analyst-alert.png"), full_page=True)
            page.click("#do-acknowledge")
            assert page.locator("#status").inner_text() == "acknowledged"
            page.click("#do-playbooks")
            assert "playbook--port-scan: waiting_approval" in page.locator(".flash").inner_text()
            page.goto(f"{console_url}/playbooks")
            page.click("button.approve")
            assert page.locator(".run-status").first.inner_text() == "done"
            page.screenshot(path=str(ARTIFACTS / "analyst-playbooks.png"), full_page=True)
            page.goto(f"{console_url}/alerts/{world.own_alert}")
            page.select_option("form[action$='/close'] select[name=verdict]", "true_positive")
            page.fill("form[action$='/close'] input[name=reason]", "scanner blocked")
            page.click("#do-close")
            assert page.locator("#status").inner_text() == "closed (true_positive)"

            # owner: posture of its own system, with the reasons
            log_in("owner")
            assert page.url == f"{console_url}/posture"
            page.click(f"a[href='/posture/{OWN}']")
            assert page.locator("#score").inner_text().startswith("Score:")
            reasons = page.locator("ul.reasons").inner_text()
            assert "C2 Security level fits the system: an online public service" in reasons
            assert page.locator("svg.chart").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "owner-posture.png"), full_page=True)

            # auditor: history with the chain verified, export it
            log_in("auditor")
            assert page.locator("#chain").inner_text() == "verified"
            page.select_option("select[name=fmt]", "html")
            with page.expect_download() as download:
                page.click("#export")
            exported = Path(download.value.path()).read_text(encoding="utf-8")
            assert "Audit chain: <strong class='ok'>verified</strong>" in exported
            page.screenshot(path=str(ARTIFACTS / "auditor-history.png"), full_page=True)

            # admin: users and inventory, in Vietnamese
            log_in("admin")
            assert page.locator("h1").inner_text() == "Người dùng"
            page.goto(f"{console_url}/admin/inventory")
            assert OWN in page.content()
            page.screenshot(path=str(ARTIFACTS / "admin-inventory.png"), full_page=True)
        finally:
            browser.close()
    log = AuditLog(SqliteStore(world.folder / "soc.db"))
    assert log.verify().ok
    actions = {(r["actor"], r["action"]) for r in log.records()}
    assert {("analyst", "playbook.approved"), ("analyst", "alert.closed"), ("auditor", "audit.exported"),
            ("owner", "login.succeeded"), ("admin", "login.succeeded")} <= actions
