"""A customer answers the survey on a phone, in Vietnamese, in a real browser (Chromium via Playwright)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from survey.extensions import db
from survey.models import Response

from .conftest import PAGES, expected_index, snapshot

CHROMIUM = "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser_page(app) -> Iterator[object]:
    """A Chromium page with a phone's viewport (390×844), Vietnamese locale."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser test needs Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test needs Playwright (requirements-dev)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN", is_mobile=True,
                                      has_touch=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app served over HTTP from a thread, on the test database."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_customer_answers_on_a_phone_in_vietnamese(live_server, browser_page, link):
    page = browser_page
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    db.session.commit()  # leave no transaction open while the server thread writes

    page.goto(live_server + link.url)
    assert page.locator("html").get_attribute("lang") == "vi"
    page.get_by_role("link", name="Bắt đầu khảo sát").click()

    # First, "Continue" without answering: the error summary lists the questions, nothing is saved.
    page.wait_for_url(f"**{link.page_url(1)}")
    assert page.get_by_role("heading", level=1).inner_text() == "Cung cấp điện"
    assert "Phần 1 / 7" in page.locator(".survey-progress").inner_text()
    page.get_by_role("button", name="Tiếp tục", exact=True).click()
    summary = page.locator(".error-summary")
    assert "Vui lòng kiểm tra lại câu trả lời" in summary.inner_text()
    assert summary.get_by_role("link").count() == len(PAGES[0][1])
    assert snapshot(link).draft_answers is None

    chosen: dict[str, int | None] = {}
    for number, (_, items) in enumerate(PAGES, start=1):
        assert f"Phần {number} / {len(PAGES)}" in page.locator(".survey-progress").inner_text()
        assert page.locator("progress").get_attribute("value") == str(number)
        for position, code in enumerate(items):
            value = (number + 2 * position) % 10 + 1
            if number == 1 and position == 1:
                # Not applicable, chosen by its label.
                page.get_by_role("group", name=page.locator(f"#{code} legend").inner_text()).get_by_label(
                    "Không áp dụng"
                ).check()
                chosen[code] = None
            elif position == 0:
                # Keyboard: focus the first radio, Space selects 1, each arrow key moves one step up the scale.
                page.focus(f"#{code}-0")
                page.keyboard.press("Space")
                for _ in range(value - 1):
                    page.keyboard.press("ArrowRight")
                chosen[code] = value
            else:
                page.click(f'label[for="{code}-{value - 1}"]')
                chosen[code] = value
            expected = "na" if chosen[code] is None else str(chosen[code])
            assert page.locator(f'input[name="{code}"]:checked').get_attribute("value") == expected
        # Nothing on the phone page is wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        button = "Gửi câu trả lời" if number == len(PAGES) else "Tiếp tục"
        page.get_by_role("button", name=button, exact=True).click()

    page.wait_for_url(f"**{link.url}/thanks")
    assert "Cảm ơn quý khách!" in page.get_by_role("heading", level=1).inner_text()
    page.reload()
    assert "Cảm ơn quý khách!" in page.get_by_role("heading", level=1).inner_text()
    assert not [text for text in problems if "Content Security Policy" in text], problems

    db.session.expire_all()
    rows = db.session.scalars(sa.select(Response)).all()
    assert len(rows) == 1
    assert rows[0].answers == chosen
    assert rows[0].respondent_index == pytest.approx(expected_index(chosen))
