"""Bad input to the survey: every case gets a 4xx page with a message, and nothing is stored or changed."""

from __future__ import annotations

import datetime as dt

import pytest
from werkzeug.datastructures import MultiDict

from survey.extensions import db
from survey.models import CampaignStatus, Invitation, utcnow

from .conftest import PAGES, answer_page, csrf_from, full_answers, page_answers, snapshot

PAGE1 = PAGES[0][1]


@pytest.fixture
def started(client, link):
    """A link whose first page is answered, so a draft exists that bad input must not change."""
    assert answer_page(client, link, 1, page_answers(full_answers(), 1)).status_code == 303
    return link


def post_page2(client, link, values, action="next", csrf=True):
    page = client.get(link.page_url(2)).get_data(as_text=True)
    data = dict(values)
    if csrf:
        data["csrf_token"] = csrf_from(page)
    if action is not None:
        data["_action"] = action
    return client.post(link.page_url(2), data=data)


def valid_page2() -> dict[str, str]:
    return {code: "5" for code in PAGES[1][1]}


@pytest.mark.parametrize("bad", ["0", "11", "-1", "abc", "7.5", "", " 5", "1e1", "na5"])
def test_values_off_the_scale_are_refused(client, started, bad):
    before = snapshot(started)
    values = valid_page2()
    first = PAGES[1][1][0]
    values[first] = bad
    response = post_page2(client, started, values)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'class="error-summary"' in html
    assert f'href="#{first}-0"' in html
    assert "không nằm trong thang điểm" in html
    assert snapshot(started) == before


@pytest.mark.parametrize("action", ["next", "back", "save"])
def test_a_bad_value_is_refused_whatever_button_was_pressed(client, started, action):
    before = snapshot(started)
    values = valid_page2()
    values[PAGES[1][1][1]] = "11"
    assert post_page2(client, started, values, action=action).status_code == 422
    assert snapshot(started) == before


def test_two_values_for_one_item_are_refused(client, started):
    before = snapshot(started)
    page = client.get(started.page_url(2)).get_data(as_text=True)
    first = PAGES[1][1][0]
    body = [("csrf_token", csrf_from(page)), ("_action", "next"), (first, "3"), (first, "9")]
    body += [(code, "5") for code in PAGES[1][1][1:]]
    assert client.post(started.page_url(2), data=MultiDict(body)).status_code == 422
    assert snapshot(started) == before


def test_every_item_needs_a_choice_to_go_on(client, started):
    before = snapshot(started)
    values = valid_page2()
    missing = PAGES[1][1][-1]
    del values[missing]
    response = post_page2(client, started, values)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Vui lòng chọn một câu trả lời" in html
    assert f'href="#{missing}-0"' in html and f'aria-describedby="{missing}-error"' in html
    # The choices made are kept on the re-rendered page.
    kept = PAGES[1][1][0]
    assert f'<input checked id="{kept}-4" name="{kept}" type="radio" value="5">' in html
    assert snapshot(started) == before


@pytest.mark.parametrize(
    "extra",
    [{"unknown_field": "5"}, {PAGE1[0]: "5"}, {"_action": "delete"}],
    ids=["unknown field", "item of another page", "unknown button"],
)
def test_unexpected_fields_are_refused(client, started, extra):
    before = snapshot(started)
    page = client.get(started.page_url(2)).get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "_action": "next", **valid_page2(), **extra}
    response = client.post(started.page_url(2), data=data)
    assert response.status_code == 422
    assert 'class="error-summary"' in response.get_data(as_text=True)
    assert snapshot(started) == before


@pytest.mark.parametrize("csrf", [None, "", "forged-token"], ids=["missing", "empty", "wrong"])
def test_missing_or_wrong_csrf_token_asks_to_reload(client, started, csrf):
    before = snapshot(started)
    data = {**valid_page2(), "_action": "next"}
    if csrf is not None:
        data["csrf_token"] = csrf
    response = client.post(started.page_url(2), data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Trang này đã hết hiệu lực" in html
    assert f'href="{started.page_url(2)}"' in html
    assert snapshot(started) == before


def test_a_token_from_another_session_is_refused(new_client, client, started):
    other = new_client()
    token = csrf_from(other.get(started.page_url(2)).get_data(as_text=True))
    before = snapshot(started)
    response = client.post(started.page_url(2), data={**valid_page2(), "_action": "next", "csrf_token": token})
    assert response.status_code == 400
    assert snapshot(started) == before


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t[:-3], lambda t: t + "x", lambda t: "x" * 150],
    ids=["one character changed", "shortened", "lengthened", "very long"],
)
def test_tampered_or_unknown_tokens_get_a_friendly_404(client, started, mangle):
    before = snapshot(started)
    token = mangle(started.token)
    for url in (f"/s/{token}", f"/s/{token}/1", f"/s/{token}/thanks"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Không tìm thấy đường dẫn khảo sát này" in response.get_data(as_text=True)
    page = client.get(started.page_url(2)).get_data(as_text=True)
    posted = client.post(f"/s/{token}/2", data={**valid_page2(), "csrf_token": csrf_from(page)})
    assert posted.status_code == 404
    assert snapshot(started) == before


def test_expired_link_gets_a_410_that_says_so(client, started):
    page = client.get(started.page_url(2)).get_data(as_text=True)
    invitation = db.session.get(Invitation, started.invitation_id)
    invitation.expires_at = utcnow() - dt.timedelta(minutes=1)
    db.session.commit()
    before = snapshot(started)
    for response in (
        client.get(started.url),
        client.get(started.page_url(2)),
        client.get(f"{started.url}/thanks"),
        client.post(started.page_url(2), data={**valid_page2(), "csrf_token": csrf_from(page)}),
    ):
        assert response.status_code == 410
        assert "Đường dẫn này đã hết hạn" in response.get_data(as_text=True)
    assert snapshot(started) == before


def test_closed_campaign_gets_a_410_that_says_so(client, started):
    invitation = db.session.get(Invitation, started.invitation_id)
    invitation.campaign.status = CampaignStatus.CLOSED
    db.session.commit()
    before = snapshot(started)
    response = client.get(started.page_url(2))
    assert response.status_code == 410
    assert "Đợt khảo sát này đã kết thúc" in response.get_data(as_text=True)
    assert snapshot(started) == before


@pytest.mark.parametrize("number", [0, 8, 999])
def test_pages_outside_the_questionnaire_are_404(client, started, number):
    assert client.get(started.page_url(number)).status_code == 404


def test_oversized_body_is_refused_with_413(client, started):
    before = snapshot(started)
    page = client.get(started.page_url(2)).get_data(as_text=True)
    data = {**valid_page2(), "_action": "next", "csrf_token": csrf_from(page), "padding": "x" * (70 * 1024)}
    response = client.post(started.page_url(2), data=data)
    assert response.status_code == 413
    assert "<h1>" in response.get_data(as_text=True)
    assert snapshot(started) == before


@pytest.mark.parametrize("raw", [b"%FF%FE", b"\xff\xfe", b"caf%C3"], ids=["percent-encoded", "raw bytes", "truncated"])
def test_invalid_utf8_in_the_body_is_refused_with_400(client, started, raw):
    before = snapshot(started)
    page = client.get(started.page_url(2)).get_data(as_text=True)
    body = f"csrf_token={csrf_from(page)}&_action=next&".encode() + "&".join(
        f"{code}=5" for code in PAGES[1][1][1:]
    ).encode() + b"&" + PAGES[1][1][0].encode() + b"=" + raw
    response = client.post(
        started.page_url(2), data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "UTF-8" in response.get_data(as_text=True)
    assert snapshot(started) == before
