"""Progress of both programmes per unit against the quotas, counted in SQL, with units behind marked in words."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from survey.extensions import db
from survey.models import Channel, CustomerGroup, ReviewState, Source, Unit
from survey.services.assignments import create_assignments
from survey.services.progress import elapsed_share, local_today, programmes_progress
from survey.services.quotas import save_quotas
from survey.services.responses import submit_response
from survey.services.review import review_response
from tests.crossscoring.conftest import add_cross_response


def cells(page: str, unit_code: str) -> dict[str, str]:
    row = re.search(rf'<tr class="[^"]*" data-unit="{unit_code}">(.*?)</tr>', page, re.S)
    assert row, unit_code
    return {col: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", value)).strip()
            for col, value in re.findall(r'data-col="([^"]+)">(.*?)</td>', row.group(1), re.S)}


def consultant(campaign, unit, respondent, *, web_invitation=None):
    answers = {item.code: 8 for item in campaign.questionnaire.items}
    if web_invitation is None:
        submit_response(campaign=campaign, unit=unit, source=Source.CONSULTANT, channel=Channel.IMPORT,
                        customer_group=CustomerGroup.HOUSEHOLD, respondent_id=respondent, answers=answers, actor="cli")
    else:
        submit_response(campaign=campaign, unit=unit, source=Source.CONSULTANT, channel=Channel.WEB,
                        customer_group=CustomerGroup.HOUSEHOLD, respondent_id=f"invitation-{web_invitation.id}",
                        answers=answers, idempotency_key=f"invitation-{web_invitation.id}",
                        invitation=web_invitation, actor="customer")


def test_both_programmes_per_unit_with_the_right_numbers(hq, make_campaign, make_invitation):
    today = local_today()
    campaign = make_campaign(code="2017", units=3, starts_on=today - dt.timedelta(days=9),
                             ends_on=today + dt.timedelta(days=10))
    a, b, c = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    assignments = create_assignments(campaign, 1, 3, seed=2)
    save_quotas(campaign, {a.id: (10, 4), b.id: (4, 6), c.id: (0, 0)})
    # Unit a: 2 imported + 1 web answer of 3 invitations; cross: 2 entered, one rejected.
    consultant(campaign, a, "K1")
    consultant(campaign, a, "K2")
    invitation, _token = make_invitation(campaign, a)
    make_invitation(campaign, a)
    make_invitation(campaign, a)
    consultant(campaign, a, None, web_invitation=invitation)
    # Unit b: 4 imported (quota reached).
    for n in range(4):
        consultant(campaign, b, f"B{n}")
    to_a = next(x for x in assignments if x.ratee_unit_id == a.id)
    to_b = next(x for x in assignments if x.ratee_unit_id == b.id)
    add_cross_response(campaign, to_a, "X1")
    rejected = add_cross_response(campaign, to_a, "X2")
    review_response(rejected, ReviewState.REJECTED, "Phiếu không hợp lệ", None)
    for n in range(6):
        add_cross_response(campaign, to_b, f"Y{n}")
    db.session.commit()

    page = hq.get("/hq/campaigns/2017/progress?lang=en")
    assert page.status_code == 200
    assert "Both programmes per unit" in page.text
    assert cells(page.text, a.code) == {
        "consultant-done": "3", "web": "1", "imported": "2", "consultant-quota": "10", "invitations": "1 / 3",
        "consultant-percent": "30% 30% behind: 5 expected by now",
        "cross-done": "1", "cross-quota": "4", "assignment-quota": "4", "cross-percent": "25% 25% behind: 2 expected by now",
    }
    assert cells(page.text, b.code)["consultant-percent"] == "100% 100%"
    assert cells(page.text, b.code)["cross-done"] == "6" and cells(page.text, b.code)["assignment-quota"] == "6"
    # Behind is said in words, not by colour alone, and behind units come first.
    row_a = re.search(rf'data-unit="{a.code}">\s*<th scope="row">(.*?)</th>', page.text, re.S).group(1)
    assert "behind" in row_a
    assert page.text.index(f'data-unit="{a.code}"') < page.text.index(f'data-unit="{b.code}"')
    assert "50% of the campaign period has passed" in page.text, re.findall(r".{30}of the campaign period.{20}", page.text)
    # The cross-scoring tables are still there.
    assert "Per assignment" in page.text and "Per scored unit" in page.text


def test_elapsed_share_and_campaigns_without_dates():
    class Dated:
        starts_on = dt.date(2017, 3, 1)
        ends_on = dt.date(2017, 3, 10)

    assert elapsed_share(Dated, dt.date(2017, 2, 1)) == 0.0
    assert elapsed_share(Dated, dt.date(2017, 3, 5)) == 0.5
    assert elapsed_share(Dated, dt.date(2018, 1, 1)) == 1.0

    class Undated:
        starts_on = None
        ends_on = None

    assert elapsed_share(Undated, dt.date(2017, 3, 5)) is None


def test_counts_are_made_in_sql_with_a_fixed_number_of_queries(make_campaign):
    campaign = make_campaign(code="2017", units=3)
    units = db.session.scalars(sa.select(Unit)).all()
    for n in range(30):
        consultant(campaign, units[n % 3], f"K{n}")
    db.session.commit()
    assert campaign.starts_on is None  # loads the campaign's row before counting statements
    statements: list[str] = []

    def count_statement(*args, **kwargs):
        statements.append(args[2] if len(args) > 2 else "")

    sa.event.listen(db.engine, "before_cursor_execute", count_statement)
    try:
        progress = programmes_progress(campaign)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count_statement)
    assert len(statements) == 1 and "GROUP BY" in statements[0].upper()
    assert sorted(u.consultant.done for u in progress.units) == [10, 10, 10]
    assert progress.elapsed is None and all(u.consultant.quota == 0 and not u.behind for u in progress.units)
