"""The customer survey at /s/<token>: pages, progress, save-and-resume, language, the stored response."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Channel, CustomerGroup, Response, Source

from .conftest import PAGES, Link, answer_page, expected_index, full_answers, page_answers, snapshot


def checked_values(html: str, code: str) -> list[str]:
    """The values of the checked radios of one item."""
    return re.findall(rf'<input checked id="{code}-\d+" name="{code}" type="radio" value="([^"]+)"', html)


def test_intro_is_vietnamese_and_explains_the_survey(client, link):
    response = client.get(link.url)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="vi">' in html
    assert "Chiến dịch test-2017" in html
    assert "Khoảng 3 phút: 7 phần ngắn" in html
    assert "được bảo mật" in html
    assert f'href="/s/{link.token}/1"' in html
    assert response.headers["Cache-Control"] == "no-store"


def test_page_has_real_labelled_radios_and_progress(client, link):
    html = client.get(link.page_url(1)).get_data(as_text=True)
    assert "<h1>Cung cấp điện</h1>" in html
    assert "Phần 1 / 7" in html
    assert '<progress max="7" value="1" aria-labelledby="progress-text">' in html
    for code in PAGES[0][1]:
        fieldset = re.search(rf'<fieldset class="item" id="{code}">(.*?)</fieldset>', html, re.S)
        assert fieldset, code
        body = fieldset.group(1)
        assert re.search(r"<legend>[^<]+</legend>", body)
        radios = re.findall(rf'<input id="({code}-\d+)" name="{code}" type="radio" value="([^"]+)">', body)
        assert [value for _, value in radios] == [str(v) for v in range(1, 11)] + ["na"]
        for radio_id, _ in radios:
            assert f'<label for="{radio_id}">' in body
        assert "Rất không hài lòng" in body and "Rất hài lòng" in body and "Không áp dụng" in body
    assert "style=" not in html and "<script" not in html


def test_customer_completes_the_survey_and_one_response_is_stored(client, link):
    answers = full_answers()
    for number in range(1, len(PAGES) + 1):
        page = client.get(link.page_url(number)).get_data(as_text=True)
        assert f"Phần {number} / {len(PAGES)}" in page
        if number == len(PAGES):
            assert "Gửi câu trả lời" in page
        response = answer_page(client, link, number, page_answers(answers, number))
        assert response.status_code == 303
        if number < len(PAGES):
            assert response.headers["Location"] == link.page_url(number + 1)
    assert response.headers["Location"] == f"{link.url}/thanks"

    for _ in range(2):  # the thank-you page survives a reload
        thanks = client.get(f"{link.url}/thanks")
        assert thanks.status_code == 200
        assert "Cảm ơn quý khách!" in thanks.get_data(as_text=True)

    stored = db.session.scalars(sa.select(Response)).all()
    assert len(stored) == 1
    response_row = stored[0]
    assert response_row.answers == answers
    assert response_row.respondent_index == pytest.approx(expected_index(answers))
    assert response_row.answered_dimensions == len(PAGES)
    assert response_row.invitation_id == link.invitation_id
    assert response_row.channel == Channel.WEB
    assert response_row.source == Source.CONSULTANT
    assert response_row.customer_group == CustomerGroup.HOUSEHOLD
    assert response_row.idempotency_key == f"invitation-{link.invitation_id}"
    assert f"invitation-{link.invitation_id}" not in response_row.respondent_id  # pseudonymised
    state = snapshot(link)
    assert state.used_at is not None and state.draft_answers is None
    audit = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.actor == "customer"))
    assert audit == 1

    again = client.get(link.url)
    assert again.status_code == 410
    assert "Đường dẫn này đã được sử dụng" in again.get_data(as_text=True)


def test_not_applicable_everywhere_in_a_dimension_leaves_it_unanswered(client, link):
    answers = full_answers(seed=3)
    for code in PAGES[2][1]:
        answers[code] = None
    for number in range(1, len(PAGES) + 1):
        assert answer_page(client, link, number, page_answers(answers, number)).status_code == 303
    row = db.session.scalar(sa.select(Response))
    assert row.answered_dimensions == len(PAGES) - 1
    assert row.respondent_index == pytest.approx(expected_index(answers))


def test_save_and_resume_through_the_same_link(new_client, client, link):
    answers = full_answers(seed=1)
    for number in (1, 2):
        assert answer_page(client, link, number, page_answers(answers, number)).status_code == 303
    state = snapshot(link)
    assert state.draft_page == 3 and state.draft_saved_at is not None
    assert state.draft_answers == {**page_answers(answers, 1), **page_answers(answers, 2)}

    later = new_client()  # the customer comes back later, in a new browser session
    reopened = later.get(link.url)
    assert reopened.status_code == 302
    assert reopened.headers["Location"] == link.page_url(3)
    page3 = later.get(link.page_url(3)).get_data(as_text=True)
    assert "Phần 3 / 7" in page3 and "Hóa đơn tiền điện" in page3
    page1 = later.get(link.page_url(1)).get_data(as_text=True)
    for code, value in page_answers(answers, 1).items():
        assert checked_values(page1, code) == ["na" if value is None else str(value)]
    assert snapshot(link).responses == 0


def test_save_and_continue_later_keeps_a_partly_answered_page(new_client, client, link):
    answers = full_answers()
    for number in (1, 2):
        answer_page(client, link, number, page_answers(answers, number))
    partial = dict(list(page_answers(answers, 3).items())[:2])
    saved = answer_page(client, link, 3, partial, action="save")
    assert saved.status_code == 303 and saved.headers["Location"] == link.page_url(3)
    assert "đã được lưu" in client.get(link.page_url(3)).get_data(as_text=True)
    state = snapshot(link)
    assert state.draft_page == 3
    assert {code: state.draft_answers[code] for code in partial} == partial

    later = new_client()
    assert later.get(link.url).headers["Location"] == link.page_url(3)
    page3 = later.get(link.page_url(3)).get_data(as_text=True)
    for code, value in partial.items():
        assert checked_values(page3, code) == [str(value)]
    missing = PAGES[2][1][2]
    assert checked_values(page3, missing) == []
    # A later page stays closed until this one is complete.
    assert later.get(link.page_url(4)).headers["Location"] == link.page_url(3)


def test_back_button_keeps_answers(client, link):
    answers = full_answers(seed=2)
    answer_page(client, link, 1, page_answers(answers, 1))
    partial = dict(list(page_answers(answers, 2).items())[:1])
    back = answer_page(client, link, 2, partial, action="back")
    assert back.status_code == 303 and back.headers["Location"] == link.page_url(1)
    page1 = client.get(link.page_url(1)).get_data(as_text=True)
    for code, value in page_answers(answers, 1).items():
        assert checked_values(page1, code) == ["na" if value is None else str(value)]
    page2 = client.get(link.page_url(2)).get_data(as_text=True)
    (code, value), = partial.items()
    assert checked_values(page2, code) == [str(value)]
    # Back from the first page leads to the introduction.
    to_intro = answer_page(client, link, 1, {}, action="back")
    assert to_intro.headers["Location"] == link.url
    assert client.get(link.url).status_code == 200


def test_later_pages_cannot_be_skipped_to(client, link):
    response = client.get(link.page_url(5))
    assert response.status_code == 302 and response.headers["Location"] == link.page_url(1)
    before = snapshot(link)
    posted = client.post(link.page_url(5), data={"csrf_token": "x"})
    assert posted.status_code == 400  # the form token is checked first
    assert snapshot(link) == before


def test_english_switch_keeps_the_customers_place(client, link):
    answers = full_answers()
    for number in (1, 2):
        answer_page(client, link, number, page_answers(answers, number))
    english = client.get(link.page_url(3) + "?lang=en")
    html = english.get_data(as_text=True)
    assert english.status_code == 200
    assert '<html lang="en">' in html
    assert "Part 3 / 7" in html and "<h1>Electricity bill</h1>" in html and "Not applicable" in html
    assert "Continue" in html and "Tiếp tục" not in html
    # The choice is remembered: reopening the link resumes on page 3, still in English.
    assert client.get(link.url).headers["Location"] == link.page_url(3)
    assert "Part 3 / 7" in client.get(link.page_url(3)).get_data(as_text=True)
    # The switch link on the page keeps the place too.
    assert f'href="/s/{link.token}/3?lang=vi"' in html
    assert "Phần 3 / 7" in client.get(link.page_url(3) + "?lang=vi").get_data(as_text=True)


def test_thanks_page_before_answering_leads_to_the_survey(client, link):
    response = client.get(f"{link.url}/thanks")
    assert response.status_code == 302 and response.headers["Location"] == link.url


def test_web_source_and_customer_group_follow_the_campaign_and_invitation(client, make_campaign, make_invitation):
    campaign = make_campaign(web_source=Source.CROSS)
    invitation, token = make_invitation(campaign, group=CustomerGroup.BUSINESS)
    link = Link(token, invitation.id, campaign.id)
    answers = full_answers()
    for number in range(1, len(PAGES) + 1):
        answer_page(client, link, number, page_answers(answers, number))
    row = db.session.scalar(sa.select(Response))
    assert row.source == Source.CROSS and row.customer_group == CustomerGroup.BUSINESS
    assert snapshot(link).used_at is not None
