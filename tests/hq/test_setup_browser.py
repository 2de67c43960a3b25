"""In a real browser (Playwright driving Chromium), in Vietnamese: HQ creates a campaign, fills its quotas from the
sample-size helper and saves them, has a consultant file with a bad row refused, then imports a good one."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import CampaignUnitQuota, Role, Unit
from tests.browser_fixtures import sign_in as browser_sign_in

from .conftest import answers, campaign_by_code, consultant_header, csv_bytes, responses
from .test_quotas import independent_n

pytestmark = pytest.mark.browser

#: The respondent standard deviation the helper assumes while no campaign has consultant data.
ASSUMED_SD = 1.2


def submit(page: Any, form: str) -> Any:
    """Click the submit button of the form matching ``form``; the response of the page it leads to."""
    with page.expect_navigation() as navigation:
        page.click(f"{form} button[type=submit]")
    return navigation.value


def upload(page: Any, name: str, data: bytes) -> Any:
    """Choose ``data`` as the consultant file of the import form and send it."""
    page.check("input[name=kind][value=consultant]")
    page.set_input_files("input[name=file]", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    return submit(page, "form:has(input[name=file])")


def tab(page: Any, suffix: str) -> Any:
    """Follow the campaign tab whose address ends with ``suffix``."""
    with page.expect_navigation() as navigation:
        page.click(f"nav.hq-tabs a[href$='{suffix}']")
    return navigation.value


def test_hq_sets_up_a_campaign_its_quotas_and_imports_consultant_data(app, make_units, make_user, live_server,
                                                                      browser_page):
    page = browser_page
    a, b, c = (unit.code for unit in make_units(3))
    hq = make_user("hq@evnnpc.vn", Role.HQ)
    browser_sign_in(page, live_server, hq.email)

    # 1. A new campaign on the default questionnaire, from the HQ home page.
    assert page.goto(f"{live_server}/hq/").status == 200
    with page.expect_navigation():
        page.click("a[href='/hq/campaigns/new']")
    assert page.url == f"{live_server}/hq/campaigns/new"
    page.fill("#code", "2019")
    page.fill("#name_vi", "Khảo sát mức độ hài lòng khách hàng 2019")
    page.fill("#name_en", "Customer satisfaction survey 2019")
    page.check("input[name=questionnaire][value=default]")
    page.fill("#target", "8")
    page.fill("#margin", "0.4")
    page.fill("#starts_on", "2019-03-01")
    page.fill("#ends_on", "2019-06-30")
    response = submit(page, "form:has(#code)")
    assert response.status == 200 and page.url == f"{live_server}/hq/campaigns/2019/quotas"
    assert "Đã tạo chiến dịch 2019" in page.locator(".flash").first.inner_text()
    current = page.locator("nav.hq-tabs a[aria-current=page]")
    assert current.count() == 1 and current.get_attribute("href") == "/hq/campaigns/2019/quotas"
    assert page.locator("nav.hq-tabs a").count() == 7
    campaign = campaign_by_code("2019")
    assert campaign is not None
    assert (campaign.name_vi, campaign.target_score, campaign.margin) == (
        "Khảo sát mức độ hài lòng khách hàng 2019", 8.0, 0.4)
    assert (str(campaign.starts_on), str(campaign.ends_on)) == ("2019-03-01", "2019-06-30")

    # 2. The sample-size helper fills every unit's quotas; saving stores them.
    assert tab(page, "/quotas").status == 200
    assert float(page.input_value("#difference")) == 0.4, "the helper starts from the campaign's margin"
    page.fill("#power", "0.9")
    page.fill("#alpha", "0.05")
    page.fill("#consultant_n", "250")
    with page.expect_navigation():
        page.click("button[name=fill]")
    assert "fill=1" in page.url
    advice = page.locator("#sample-size strong").inner_text()
    match = re.fullmatch(r"(\d+) phỏng vấn chấm chéo mỗi đơn vị", advice.strip())
    assert match, advice
    shown = int(match.group(1))
    assert "1.20" in page.locator("#sd-basis").inner_text()
    assert shown == independent_n(0.4, ASSUMED_SD, 0.9, 0.05, 250)
    for code in (a, b, c):
        assert int(page.input_value(f"input[name='cross-{code}']")) == shown
        assert int(page.input_value(f"input[name='consultant-{code}']")) == 250
    response = submit(page, "form:has(input[name^='cross-'])")
    assert response.status == 200 and page.url == f"{live_server}/hq/campaigns/2019/quotas"
    db.session.rollback()  # a fresh look at what the server committed
    stored = db.session.execute(
        sa.select(Unit.code, CampaignUnitQuota.consultant_quota, CampaignUnitQuota.cross_quota)
        .join(Unit, Unit.id == CampaignUnitQuota.unit_id)
        .where(CampaignUnitQuota.campaign_id == campaign.id)
    ).all()
    assert {code: (consultant, cross) for code, consultant, cross in stored} == dict.fromkeys((a, b, c), (250, shown))

    # 3. A file with one score off the scale is refused whole, the reason in Vietnamese; a good one is imported.
    assert tab(page, "/import").status == 200
    scale = campaign.questionnaire
    items = [item.code for item in scale.items]
    header = consultant_header(campaign)
    bad = [answers(campaign) for _ in range(3)]
    bad[1][2] = 11
    rows = [[unit, f"KH{n:03d}", "household", *values] for n, (unit, values) in enumerate(zip((a, b, c), bad))]
    response = upload(page, "tuvan-loi.csv", csv_bytes(header, rows))
    assert response.status == 422
    assert page.locator("#import-problems").is_visible()
    problems = page.locator("#import-problems table.problems tbody tr")
    assert problems.count() == 1
    cells = [cell.strip() for cell in problems.first.locator("td").all_inner_texts()]
    assert cells == ["3", items[2], f"11 nằm ngoài khoảng {scale.scale_min}–{scale.scale_max}"]
    assert responses(campaign) == 0

    counts = {a: 2, b: 3, c: 1}
    rows = [[unit, f"KH{unit}{n}", "household" if n % 2 else "business", *answers(campaign, 5 + n)]
            for unit, k in counts.items() for n in range(k)]
    response = upload(page, "tuvan.csv", csv_bytes(header, rows))
    assert response.status == 200 and page.url == f"{live_server}/hq/campaigns/2019/progress"
    assert "tuvan.csv" in page.locator(".flash").first.inner_text()
    assert responses(campaign) == 6
    for unit, k in counts.items():
        row = page.locator(f"#programmes tr[data-unit='{unit}']")
        assert row.locator("[data-col=imported]").inner_text().strip() == str(k)
        assert row.locator("[data-col=consultant-done]").inner_text().strip() == str(k)
        assert row.locator("[data-col=web]").inner_text().strip() == "0"
        assert row.locator("[data-col=consultant-quota]").inner_text().strip() == "250"
        assert row.locator("[data-col=cross-quota]").inner_text().strip() == str(shown)
