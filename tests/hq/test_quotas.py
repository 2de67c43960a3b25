"""Per-unit quotas: the sample-size helper against statsmodels, all-or-nothing saving, and the assignments' share."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sqlalchemy as sa
from statsmodels.stats.power import TTestIndPower

from survey.extensions import db
from survey.models import Assignment, Campaign, CampaignUnitQuota, Channel, CustomerGroup, Source, Unit
from survey.services.assignments import create_assignments
from survey.services.quotas import split_quota
from survey.services.responses import submit_response

from .conftest import count, events


def independent_n(difference: float, sd: float, power: float, alpha: float, consultant_n: int) -> int:
    """The smallest n whose two-sided t-test power reaches ``power`` against ``consultant_n``, by direct search."""
    analysis = TTestIndPower()
    for n in range(2, 20000):
        if analysis.power(effect_size=difference / sd, nobs1=n, alpha=alpha, ratio=consultant_n / n) >= power:
            return n
    raise AssertionError("not reached")


def units(n: int | None = None) -> list[Unit]:
    return list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))[:n]


def quota_fields(values: dict[str, tuple[object, object]]) -> dict[str, str]:
    return {f"{kind}-{code}": str(v) for code, pair in values.items() for kind, v in zip(("consultant", "cross"), pair)}


def stored_quotas(campaign: Campaign) -> dict[str, tuple[int, int]]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Unit.code, CampaignUnitQuota.consultant_quota, CampaignUnitQuota.cross_quota)
        .join(Unit, Unit.id == CampaignUnitQuota.unit_id)
        .where(CampaignUnitQuota.campaign_id == campaign.id)
    )
    return {code: (c, x) for code, c, x in rows}


def add_consultant(campaign: Campaign, unit: Unit, respondent: str, value: int) -> None:
    submit_response(campaign=campaign, unit=unit, source=Source.CONSULTANT, channel=Channel.IMPORT,
                    customer_group=CustomerGroup.HOUSEHOLD, respondent_id=respondent,
                    answers={item.code: value for item in campaign.questionnaire.items}, actor="cli")


def test_the_helper_uses_the_assumed_spread_and_agrees_with_statsmodels(hq, make_campaign):
    make_campaign(code="2017", units=3)
    page = hq.get("/hq/campaigns/2017/quotas?lang=en")
    assert page.status_code == 200
    expected = independent_n(0.3, 1.2, 0.8, 0.05, 380)
    assert f"{expected} cross interviews per unit" in page.text
    assert "Respondent standard deviation 1.20, assumed" in page.text
    page = hq.get("/hq/campaigns/2017/quotas?lang=en&difference=0.5&power=0.9&alpha=0.01&consultant_n=300")
    assert f"{independent_n(0.5, 1.2, 0.9, 0.01, 300)} cross interviews per unit" in page.text


def test_the_helper_uses_this_campaigns_consultant_spread_else_the_previous_ones(hq, make_campaign):
    previous = make_campaign(code="2016", units=2)
    campaign = make_campaign(code="2017", units=0, previous_campaign_id=previous.id)
    a, b = units()
    rng = np.random.default_rng(3)
    values = {a.id: rng.integers(5, 11, 25), b.id: rng.integers(3, 9, 25)}
    for unit in (a, b):
        for number, value in enumerate(values[unit.id]):
            add_consultant(previous, unit, f"{unit.code}-{number}", int(value))
    db.session.commit()
    # Pooled within-unit SD (the units' means differ; that is not respondent spread).
    pooled = math.sqrt(sum(((v - v.mean()) ** 2).sum() for v in values.values()) / (50 - 2))
    page = hq.get("/hq/campaigns/2017/quotas?lang=en")
    assert f"Respondent standard deviation {pooled:.2f}, observed in the previous campaign 2016 (50" in page.text
    assert f"{independent_n(0.3, pooled, 0.8, 0.05, 380)} cross interviews per unit" in page.text
    for number in range(30):
        add_consultant(campaign, a if number % 2 else b, f"own-{number}", 4 + number % 4)
    db.session.commit()
    page = hq.get("/hq/campaigns/2017/quotas?lang=en")
    assert "observed in this campaign's consultant data (30 respondents)" in page.text


def test_fill_puts_the_helper_value_in_every_unit_and_saving_spreads_cross_quotas(hq, make_campaign):
    campaign = make_campaign(code="2017", units=5)
    create_assignments(campaign, 2, 3, seed=7)
    expected = independent_n(0.3, 1.2, 0.8, 0.05, 380)
    page = hq.get("/hq/campaigns/2017/quotas?difference=0.3&power=0.8&alpha=0.05&consultant_n=380&fill=1")
    codes = [u.code for u in units()]
    for code in codes:
        assert re.search(f'name="cross-{code}"[^>]* value="{expected}"', page.text)
        assert re.search(f'name="consultant-{code}"[^>]* value="380"', page.text)
    assert count(CampaignUnitQuota) == 0, "filling shows values; only saving stores them"
    values = {code: (380, expected) for code in codes} | {codes[0]: (400, 61)}
    response = hq.post("/hq/campaigns/2017/quotas", quota_fields(values))
    assert response.status_code == 303
    assert stored_quotas(campaign) == values
    db.session.expire_all()
    for unit in units():
        quotas = list(db.session.scalars(sa.select(Assignment.quota).where(Assignment.ratee_unit_id == unit.id)
                                         .order_by(Assignment.id)))
        assert quotas == split_quota(values[unit.code][1], 2) and sum(quotas) == values[unit.code][1]
    assert split_quota(61, 2) == [31, 30] and split_quota(7, 3) == [3, 2, 2] and split_quota(5, 0) == []
    assert len(events("campaign_unit_quota")) == 5
    # Saving the same values again changes nothing and records nothing.
    assert hq.post("/hq/campaigns/2017/quotas", quota_fields(values)).status_code == 303
    assert len(events("campaign_unit_quota")) == 5


@pytest.mark.parametrize("bad", ["-1", "2.5", "abc", "", "9" * 30, "20001"])
def test_a_bad_value_refuses_every_row(hq, make_campaign, bad):
    campaign = make_campaign(code="2017", units=3)
    create_assignments(campaign, 1, 3, seed=1)
    codes = [u.code for u in units()]
    values = {code: (100, 10) for code in codes} | {codes[2]: (bad, 10)}
    response = hq.post("/hq/campaigns/2017/quotas?lang=en", quota_fields(values))
    assert response.status_code == 400
    assert "Nothing was saved" in response.text and 'class="field-error"' in response.text
    assert count(CampaignUnitQuota) == 0
    db.session.expire_all()
    assert set(db.session.scalars(sa.select(Assignment.quota))) == {3}


def test_a_started_assignment_keeps_its_quota_and_nothing_is_saved(hq, make_campaign):
    from tests.crossscoring.conftest import add_cross_response

    campaign = make_campaign(code="2017", units=4)
    assignments = create_assignments(campaign, 1, 3, seed=1)
    add_cross_response(campaign, assignments[0], "R1")
    codes = [u.code for u in units()]
    started_ratee = assignments[0].ratee_unit.code
    values = {code: (50, 3) for code in codes} | {codes[0]: (60, 3), started_ratee: (50, 9)}
    response = hq.post("/hq/campaigns/2017/quotas?lang=en", quota_fields(values))
    assert response.status_code == 409 and "has started" in response.text
    assert count(CampaignUnitQuota) == 0


def test_without_assignments_the_page_says_so_and_keeps_the_quotas(hq, make_campaign):
    campaign = make_campaign(code="2017", units=2)
    page = hq.get("/hq/campaigns/2017/quotas?lang=en")
    assert "has no assignments yet" in page.text
    codes = [u.code for u in units()]
    assert hq.post("/hq/campaigns/2017/quotas", quota_fields({c: (380, 60) for c in codes})).status_code == 303
    assert stored_quotas(campaign) == {c: (380, 60) for c in codes}


@pytest.mark.parametrize("query", ["difference=-1", "power=2", "alpha=x", "consultant_n=1", "difference=nan"])
def test_bad_helper_values_are_explained(hq, make_campaign, query):
    make_campaign(code="2017", units=1)
    page = hq.get(f"/hq/campaigns/2017/quotas?{query}")
    assert page.status_code == 400 and 'class="field-error"' in page.text and "sample-size" not in page.text


def test_saving_untouched_cross_quotas_keeps_the_assignments_quotas(hq, make_campaign):
    campaign = make_campaign(code="2017", units=5)
    assignments = create_assignments(campaign, 2, 30, seed=4)
    first = assignments[0]
    first.quota = 25  # changed on the assignments page
    db.session.commit()
    page = hq.get("/hq/campaigns/2017/quotas")
    ratee = first.ratee_unit.code
    assert re.search(f'name="cross-{ratee}"[^>]* value="55"', page.text)
    codes = [u.code for u in units()]
    values = {code: (380, 55 if code == ratee else 60) for code in codes}
    assert hq.post("/hq/campaigns/2017/quotas", quota_fields(values)).status_code == 303
    db.session.expire_all()
    assert sorted(db.session.scalars(sa.select(Assignment.quota))) == [25] + [30] * 9
    assert [e for e in events("assignment") if e.action == "edit"] == []
