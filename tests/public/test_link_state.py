"""The link's state carried from a survey page to its POST (survey/public/link_state.py).

On PostgreSQL the POST trusts the state only when it is signed for its link, and even then writes
only if the invitation row and its campaign are as the page read them. Whatever the state says,
what is stored is what the database holds plus the customer's answers to the page.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import Campaign, CampaignStatus, CustomerGroup, Invitation, Response, Source, utcnow
from survey.public import link_state
from survey.services.invitations import OpenLink
from survey.services.audit import verify_chain

from .conftest import (
    PAGES,
    Link,
    answer_page,
    form_values,
    full_answers,
    page_answers,
    page_fields,
    snapshot,
    watch_links,
)

LAST = len(PAGES)


def _link(**changes) -> OpenLink:
    values = dict(
        id=7, campaign_id=3, unit_id=5, customer_group=CustomerGroup.HOUSEHOLD, web_source=Source.CONSULTANT,
        questionnaire_id=2, questionnaire_checksum="c" * 64, draft={"q1": 4, "q2": None}, draft_page=2,
        expires_at=utcnow() + dt.timedelta(days=3), version="812",
    )
    return OpenLink(**{**values, **changes})


def _reencoded(value: str, change) -> str:
    """``value`` with its payload changed by ``change`` and its signature kept."""
    payload, signature = value.rsplit(".", 1)
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    change(fields)
    return f"{base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip('=')}.{signature}"


# --- Sealing and unsealing -------------------------------------------------------------------------

@pytest.mark.parametrize("draft", [{}, {"q1": 4}, {"q1": 4, "q2": None}, {f"q{n}": n % 10 + 1 for n in range(40)}])
def test_a_sealed_link_comes_back_as_it_was(app, draft):
    link = _link(draft=draft)
    value = link_state.seal("token-a", link)
    assert value is not None and link_state.unseal("token-a", value) == link
    # Posted as it is: URL-safe ASCII without "%" escapes or padding (the form checks' quick path).
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[0-9a-f]{64}", value)


@pytest.mark.parametrize("case", ["other link", "payload changed", "signature changed", "no signature", "empty",
                                  "missing", "not base64", "too long", "other key"])
def test_a_state_not_signed_for_its_link_is_not_trusted(app, monkeypatch, case):
    value = link_state.seal("token-a", _link())
    assert value is not None
    token = "token-a"
    if case == "other link":
        token = "token-b"
    elif case == "payload changed":
        value = _reencoded(value, lambda fields: fields.__setitem__(2, 6))  # another unit
    elif case == "signature changed":
        value = value[:-1] + ("0" if value[-1] != "0" else "1")
    elif case == "no signature":
        value = value.rsplit(".", 1)[0]
    elif case == "empty":
        value = ""
    elif case == "missing":
        value = None
    elif case == "not base64":
        value = "%%%." + value.rsplit(".", 1)[1]
    elif case == "too long":
        value = value + "0" * link_state.MAX_LENGTH
    elif case == "other key":
        monkeypatch.setattr(app, "secret_key", "another deployment's key")
        monkeypatch.setitem(app.extensions, "survey_derived_keys", {})
    assert link_state.unseal(token, value) is None


def test_a_state_whose_link_expired_since_is_left_to_the_read(app):
    value = link_state.seal("token-a", _link(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert value is not None and link_state.unseal("token-a", value) is None


def test_a_link_without_a_row_version_is_not_sealed(app):
    assert link_state.seal("token-a", _link(version=None)) is None


def test_sqlite_pages_carry_no_state(client, link, backend):
    if backend != "sqlite":
        pytest.skip("PostgreSQL pages carry the state (tested below)")
    page = client.get(link.page_url(1)).get_data(as_text=True)
    assert "csrf_token" in page and "link_state" not in page


# --- PostgreSQL: what a POST does with the state -----------------------------------------------------

@pytest.fixture
def pg(backend):
    if backend != "postgresql":
        pytest.skip("the link's state is PostgreSQL's (SQLite has no row versions)")


def _to_last_page(client, link: Link, answers) -> dict[str, str]:
    for number in range(1, LAST):
        assert answer_page(client, link, number, page_answers(answers, number)).status_code == 303
    page = client.get(link.page_url(LAST))
    assert page.status_code == 200
    fields = page_fields(page.get_data(as_text=True))
    assert "link_state" in fields
    return {**fields, "_action": "next", **form_values(page_answers(answers, LAST))}


def test_a_trusted_state_saves_the_page_without_reading_the_link(pg, client, link, monkeypatch):
    known = watch_links(monkeypatch)
    answers = full_answers(seed=3)
    for number in range(1, LAST + 1):
        assert answer_page(client, link, number, page_answers(answers, number)).status_code == 303
    assert known == ["carried"] * LAST
    stored = db.session.scalars(sa.select(Response)).all()
    assert len(stored) == 1 and stored[0].answers == answers and stored[0].invitation_id == link.invitation_id
    assert verify_chain().ok


def test_a_tampered_state_is_not_trusted_and_stores_what_the_database_holds(pg, client, link, monkeypatch):
    answers = full_answers(seed=4)
    data = _to_last_page(client, link, answers)
    first = PAGES[0][1][0]
    forged = answers[first] % 10 + 1

    def forge(fields):
        fields[7][first] = forged  # an earlier page's answer
        fields[2] += 1  # another unit

    data["link_state"] = _reencoded(data["link_state"], forge)
    known = watch_links(monkeypatch)
    reply = client.post(link.page_url(LAST), data=data)
    assert reply.status_code == 303 and reply.headers["Location"].endswith("/thanks")
    assert known == ["read"]
    stored = db.session.scalars(sa.select(Response)).one()
    invitation = db.session.get(Invitation, link.invitation_id)
    assert stored.answers == answers and stored.answers[first] != forged
    assert stored.unit_id == invitation.unit_id


def test_another_links_state_is_not_trusted(pg, new_client, make_campaign, make_invitation, monkeypatch):
    campaign = make_campaign()
    links = [Link(token, invitation.id, campaign.id)
             for invitation, token in (make_invitation(campaign) for _ in range(2))]
    own, other = new_client(), new_client()
    answers = full_answers(seed=5)
    data = _to_last_page(own, links[0], answers)
    other_page = other.get(links[1].page_url(1)).get_data(as_text=True)
    data["link_state"] = page_fields(other_page)["link_state"]
    before = snapshot(links[1])
    known = watch_links(monkeypatch)
    assert own.post(links[0].page_url(LAST), data=data).status_code == 303
    assert known == ["read"]
    stored = db.session.scalars(sa.select(Response)).one()
    assert stored.invitation_id == links[0].invitation_id and stored.answers == answers
    after = snapshot(links[1])
    assert after.responses == before.responses + 1
    assert after == dataclasses.replace(before, responses=after.responses)  # the other link is untouched, still open


@pytest.mark.parametrize("action", ["next", "save"])
def test_a_campaign_closed_after_the_page_was_shown_refuses_the_post(pg, client, link, monkeypatch, action):
    answers = full_answers(seed=6)
    data = {**_to_last_page(client, link, answers), "_action": action}
    db.session.execute(sa.update(Campaign).where(Campaign.id == link.campaign_id)
                       .values(status=CampaignStatus.CLOSED))
    db.session.commit()
    before = snapshot(link)
    known = watch_links(monkeypatch)
    reply = client.post(link.page_url(LAST), data=data)
    assert reply.status_code == 410 and "Đợt khảo sát này đã kết thúc" in reply.get_data(as_text=True)
    assert known == ["carried"]  # the state was trusted; its write found the campaign closed, and the read said why
    assert snapshot(link) == before and before.responses == 0


def test_a_link_expired_after_the_page_was_shown_refuses_the_post(pg, client, link, monkeypatch):
    answers = full_answers(seed=7)
    data = _to_last_page(client, link, answers)
    before = snapshot(link)
    expires_at = db.session.get(Invitation, link.invitation_id).expires_at
    later = expires_at + dt.timedelta(seconds=1)
    from survey.services import invitations

    monkeypatch.setattr(link_state, "utcnow", lambda: later)
    monkeypatch.setattr(invitations, "utcnow", lambda: later)
    reply = client.post(link.page_url(LAST), data=data)
    assert reply.status_code == 410 and "Đường dẫn này đã hết hạn" in reply.get_data(as_text=True)
    assert snapshot(link) == before and before.responses == 0


def test_a_link_extended_after_its_page_said_it_expired_is_answered(pg, client, link, monkeypatch):
    answers = full_answers(seed=8)
    data = _to_last_page(client, link, answers)
    invitation = db.session.get(Invitation, link.invitation_id)
    later = invitation.expires_at + dt.timedelta(seconds=1)
    invitation.expires_at = later + dt.timedelta(days=30)
    db.session.commit()
    monkeypatch.setattr(link_state, "utcnow", lambda: later)
    known = watch_links(monkeypatch)
    reply = client.post(link.page_url(LAST), data=data)
    assert reply.status_code == 303 and known == ["read"]
    assert db.session.scalars(sa.select(Response)).one().answers == answers
