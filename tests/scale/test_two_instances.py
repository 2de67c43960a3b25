"""Beyond one machine: two gunicorn instances sharing PostgreSQL and Redis behave as one site.

Each test talks to real servers over HTTP (tests/scale/conftest.py starts them). They need
TEST_DATABASE_URL and TEST_REDIS_URL and are skipped, saying so, without either.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bench.client import Browser
from survey.extensions import db
from survey.models import Invitation, Response, Role

from tests.public.conftest import PAGES, expected_index, form_values, full_answers
from .conftest import PASSWORD, Instances, on, run

pytestmark = [
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
    pytest.mark.postgresql_only,
    pytest.mark.slow,
]


async def page_form(browser: Browser, token: str, number: int, answers: dict) -> dict[str, str]:
    """Open one page and fill in its form: the page's hidden fields, the answers, "next"."""
    page = await browser.get(f"/s/{token}/{number}")
    assert page.status == 200, page.status
    codes = PAGES[number - 1][1]
    data = {**page.survey_fields(), "_action": "next", **form_values({c: answers[c] for c in codes})}
    return data


def stored_for(invitation_id: int) -> list[Response]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Response).where(Response.invitation_id == invitation_id)))


def test_customer_starts_on_one_instance_and_finishes_on_the_other(instances: Instances, make_campaign,
                                                                   make_invitation):
    campaign = make_campaign()
    invitation, token = make_invitation(campaign)
    answers = full_answers(seed=3)
    browser = instances.browser()

    async def survey() -> None:
        intro = await on(browser, instances.a).get(f"/s/{token}")
        assert intro.status == 200
        for number in range(1, len(PAGES) + 1):
            # Each page is opened on one host and sent to the other: the session cookie and the
            # CSRF token made by one must be accepted by the other, and the draft saved by one
            # must be what the other reads.
            first, second = (instances.a, instances.b) if number % 2 else (instances.b, instances.a)
            data = await page_form(on(browser, first), token, number, answers)
            sent = await on(browser, second).post_form(f"/s/{token}/{number}", data)
            assert sent.status == 303, (number, sent.status)
            expected = "/thanks" if number == len(PAGES) else f"/{number + 1}"
            assert sent.location.endswith(expected)
        thanks = await on(browser, instances.b).get(f"/s/{token}/thanks")
        assert thanks.status == 200

    run(survey())
    stored = stored_for(invitation.id)
    assert len(stored) == 1
    assert stored[0].answers == answers
    assert stored[0].respondent_index == pytest.approx(expected_index(answers))
    assert db.session.get(Invitation, invitation.id).used_at is not None
    # And the link is used up on both hosts.
    again = run(on(instances.browser(), instances.a).get(f"/s/{token}"))
    assert again.status == 410


def test_login_rate_limit_is_counted_across_instances(instances: Instances, make_user):
    make_user("guard@example.vn", Role.HQ)
    browser = instances.browser()

    async def attempts() -> list[int]:
        page = await on(browser, instances.a).get("/login")
        token = page.csrf_token()
        statuses = []
        # Ten wrong passwords, alternating between the hosts: five each.
        for attempt in range(10):
            host = instances.a if attempt % 2 == 0 else instances.b
            reply = await on(browser, host).post_form(
                "/login", {"csrf_token": token, "email": "guard@example.vn", "password": f"wrong {attempt}"})
            statuses.append(reply.status)
        # The eleventh within the minute is refused, on either host, even with the right password.
        for host in (instances.a, instances.b):
            reply = await on(browser, host).post_form(
                "/login", {"csrf_token": token, "email": "guard@example.vn", "password": PASSWORD})
            statuses.append(reply.status)
        return statuses

    statuses = run(attempts())
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


def test_same_link_sent_to_both_instances_at_once_stores_one_response(instances: Instances, make_campaign,
                                                                      make_invitation):
    campaign = make_campaign()
    links = [make_invitation(campaign) for _ in range(4)]
    answers = full_answers(seed=5)
    last = len(PAGES)

    async def race(token: str) -> list[tuple[int, str]]:
        browser = instances.browser()
        for number in range(1, last):
            data = await page_form(on(browser, instances.a), token, number, answers)
            assert (await browser.post_form(f"/s/{token}/{number}", data)).status == 303
        data = await page_form(browser, token, last, answers)
        # The same final page, sent to both hosts at the same moment (a double tap, a retry through the balancer).
        copy = Browser("127.0.0.1", instances.b.port, dict(browser.cookies))
        one, other = await asyncio.gather(
            on(browser, instances.a).post_form(f"/s/{token}/{last}", data),
            copy.post_form(f"/s/{token}/{last}", data),
        )
        return [(one.status, one.location), (other.status, other.location)]

    for invitation, token in links:
        replies = run(race(token))
        accepted = [r for r in replies if r[0] == 303 and r[1].endswith("/thanks")]
        assert len(accepted) >= 1, replies
        # The other request either came second and found the link used (410), or saw the
        # answers already sent and was led to the thanks page too; never a second response.
        assert all(r in accepted or r[0] == 410 for r in replies), replies
        stored = stored_for(invitation.id)
        assert len(stored) == 1
        assert stored[0].answers == answers
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Response))
    assert total == len(links)
