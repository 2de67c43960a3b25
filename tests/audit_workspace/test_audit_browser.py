"""In Chromium on a phone-sized screen: an auditor enters an interview while offline, comes back online,
sees it sent (stored exactly once), and submits the assignment."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from audit_helpers import PASSWORD

from survey.extensions import db
from survey.models import Assignment, AssignmentStatus, Response

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser

#: Resolves once the service worker controls the page (a function, since the CSP forbids eval of strings).
SERVICE_WORKER_IN_CONTROL = """async () => {
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => {
      navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
    });
  }
  return true;
}"""


def _playwright() -> Any:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser test needs Chromium at {CHROMIUM}; it is not installed here")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test needs the playwright package (pip install -r requirements-dev.txt)")
    return sync_playwright


class LiveServer:
    """The test's app served over HTTP in a thread, counting the paths it is asked for."""

    def __init__(self, app: Any):
        from werkzeug.serving import make_server

        self.paths: list[str] = []

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            self.paths.append(environ.get("PATH_INFO", ""))
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, counting, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def browser_page(app: Any) -> Iterator[tuple[Any, Any, LiveServer]]:
    sync_playwright = _playwright()
    with LiveServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, service_workers="allow"
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        try:
            yield context, page, server
        finally:
            context.close()
            browser.close()
        # An error in our scripts or a CSP violation is a failure even if the flow happened to work.
        assert [e for e in errors if "Failed to load resource" not in e and "ERR_INTERNET_DISCONNECTED" not in e] \
            == [], errors


def _rows() -> list[Response]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Response)))


def test_offline_interview_is_queued_sent_once_and_assignment_submitted(world, browser_page):
    context, page, server = browser_page
    assignment_id = world.a_scores_b.id

    page.goto(server.url + "/login")
    page.fill('input[name="email"]', world.auditor_a.email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(server.url + "/audit/")
    # The service worker takes over the workspace; pages opened from now on are kept for offline use.
    page.evaluate(SERVICE_WORKER_IN_CONTROL)

    page.click(f'[data-assignment-id="{assignment_id}"] a')
    page.wait_for_url(f"{server.url}/audit/assignments/{assignment_id}")
    page.click("#new-interview")
    page.wait_for_url(f"{server.url}/audit/assignments/{assignment_id}/interviews/new")
    page.wait_for_selector("#outbox:not([hidden])")

    # The connection drops. The entry page still opens: from the service worker's cache, not the server.
    context.set_offline(True)
    asked_before = len(server.paths)
    page.reload()
    page.wait_for_selector("#outbox:not([hidden])")
    assert f"/audit/assignments/{assignment_id}/interviews/new" not in server.paths[asked_before:]
    assert page.get_attribute("#outbox-connection", "data-online") == "false"

    # One interviewed customer, entered offline.
    page.fill('input[name="respondent_id"]', "PA05HH0123456")
    page.click('label[for="customer_group-0"]')  # household
    for position, item in enumerate(world.campaign.questionnaire.items):
        choice = 10 if position == 3 else position % 10  # value position % 10 + 1; position 3: not applicable
        page.click(f'label[for="{item.code}-{choice}"]')
    interview_id = page.input_value('input[name="interview_id"]')
    page.click("#save-interview")

    status = page.locator("#outbox-status")
    page.wait_for_selector('#outbox-status[data-waiting="1"]')
    waiting_text = page.get_attribute("#outbox", "data-text-waiting-one")
    assert waiting_text in status.inner_text()
    assert page.locator(f'.outbox-entry[data-interview-id="{interview_id}"][data-status="waiting"]').count() == 1
    assert _rows() == []
    # The form is ready for the next customer, with a new device UUID.
    assert page.input_value('input[name="respondent_id"]') == ""
    assert page.input_value('input[name="interview_id"]') not in ("", interview_id)

    # Back online: the queue sends by itself.
    context.set_offline(False)
    page.wait_for_selector('#outbox-status[data-waiting="0"][data-sent="1"]', timeout=45_000)
    assert page.get_attribute("#outbox", "data-text-sent-one") in status.inner_text()
    assert page.locator(f'.outbox-entry[data-interview-id="{interview_id}"][data-status="sent"]').count() == 1
    rows = _rows()
    assert len(rows) == 1
    assert rows[0].idempotency_key == interview_id and rows[0].assignment_id == assignment_id
    assert rows[0].answers[world.campaign.questionnaire.items[3].code] is None

    # Another page load sends the queue again: the interview is not stored twice.
    page.reload()
    page.wait_for_selector('#outbox-status[data-sent="1"]')
    assert len(_rows()) == 1

    page.goto(f"{server.url}/audit/assignments/{assignment_id}")
    assert page.locator("table.interviews tbody tr").count() == 1
    page.click("#submit-assignment")
    page.wait_for_url(f"{server.url}/audit/assignments/{assignment_id}/submit")
    page.wait_for_selector("#outbox:not([hidden])")
    page.click("#confirm-submit")
    page.wait_for_url(f"{server.url}/audit/assignments/{assignment_id}")
    db.session.expire_all()
    assert db.session.get(Assignment, assignment_id).status == AssignmentStatus.SUBMITTED
    assert page.locator("#new-interview").count() == 0
