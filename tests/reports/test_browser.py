"""In a real browser (Playwright driving Chromium): HQ sorts the reconciliation and downloads the CSV; a manager
sees only their own unit."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.browser_fixtures import sign_in

from .test_exports import DESIGN_COLUMNS

pytestmark = pytest.mark.browser


def table_statuses(page: Any) -> list[str]:
    """The status of each row of the unit table, top to bottom."""
    return page.locator("#unit-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")


def test_hq_sorts_by_status_and_downloads_the_csv(staff, seeded, live_server, browser_page, tmp_path):
    page = browser_page
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server, staff.hq.email)
    response = page.goto(f"{live_server}/hq/campaigns/c2017/report")
    assert response.status == 200
    assert page.locator("#unit-table tbody tr").count() == 6

    with page.expect_navigation():
        page.click("a[data-sort=status]")
    assert "sort=status" in page.url
    order = {"inconsistent": 0, "inconclusive": 1, "consistent": 2}
    found = [order[s] for s in table_statuses(page)]
    assert found == sorted(found) and len(found) == 6
    with page.expect_navigation():
        page.click("a[data-sort=status]")
    found = [order[s] for s in table_statuses(page)]
    assert found == sorted(found, reverse=True)

    # The charts load as images (the page's policy allows them).
    for image in page.locator("figure.chart img").all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    with page.expect_download() as info:
        page.click("a[href$='report.csv']")
    download = info.value
    assert download.suggested_filename == "report-c2017.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))
    assert rows[0] == DESIGN_COLUMNS and len(rows) == 7
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_manager_sees_only_their_unit(staff, seeded, live_server, browser_page):
    page = browser_page
    sign_in(page, live_server, staff.manager.email)
    assert page.url.endswith("/unit/bac-giang")
    assert "Bắc Giang" in page.locator("h1").inner_text()
    assert page.locator("#dimension-table tbody tr").count() == 7
    response = page.goto(f"{live_server}/unit/bac-kan")
    assert response.status == 403
    response = page.goto(f"{live_server}/hq/campaigns/c2017/report")
    assert response.status == 403
