"""The survey pages' CSRF token (survey/public/tokens.py): bound to the browser's cookie and to the link.

Customers' requests carry no session: a page sets only the survey cookie, so a submission reads
no signed session. The token is refused with another browser's cookie, on another link, without
the cookie, or altered; a refused POST changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from survey.extensions import db
from survey.models import Campaign
from survey.public import tokens

from .conftest import PAGES, csrf_from, form_values, page_answers, snapshot

PAGE_1 = {code: 7 for code in PAGES[0][1]}


def open_page(client: Any, url: str) -> tuple[Any, str]:
    page = client.get(url)
    assert page.status_code == 200
    return page, csrf_from(page.get_data(as_text=True))


def post(client: Any, url: str, token: str | None) -> Any:
    data = {**form_values(PAGE_1), "_action": "next"}
    if token is not None:
        data["csrf_token"] = token
    return client.post(url, data=data)


def test_a_page_sets_the_survey_cookie_and_no_session(client, link):
    page, _ = open_page(client, link.page_url(1))
    cookies = page.headers.getlist("Set-Cookie")
    assert not [c for c in cookies if c.startswith("session=")], cookies
    (browser,) = [c for c in cookies if c.startswith(f"{tokens.COOKIE}=")]
    attributes = [part.strip() for part in browser.split(";")]
    assert "HttpOnly" in attributes and "SameSite=Lax" in attributes and "Path=/s/" in attributes
    assert "Secure" not in attributes  # development serves plain HTTP; production: see the next test
    # The next page, and the submission's redirect, set no cookie at all.
    response = post(client, link.page_url(1), csrf_from(page.get_data(as_text=True)))
    assert response.status_code == 303 and not response.headers.getlist("Set-Cookie")


def test_the_cookie_is_secure_where_the_session_cookie_is(app, client, link, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    page, _ = open_page(client, link.page_url(1))
    (browser,) = [c for c in page.headers.getlist("Set-Cookie") if c.startswith(f"{tokens.COOKIE}=")]
    assert "Secure" in [part.strip() for part in browser.split(";")]


def test_the_token_is_the_hmac_of_the_cookie_and_the_link(app, client, link):
    """Computed here from its definition: HMAC-SHA256 under a key derived from SECRET_KEY."""
    _, token = open_page(client, link.page_url(1))
    browser = client.get_cookie(tokens.COOKIE, path="/s/").value
    key = hmac.new(app.secret_key.encode(), b"survey page token v1", hashlib.sha256).digest()
    expected = hmac.new(key, f"{browser}\x00{link.token}".encode(), hashlib.sha256).hexdigest()
    assert token == expected
    # Every page of the link, in the same browser, carries the same token; the cookie is issued once.
    page, again = open_page(client, link.page_url(1))
    assert again == token and not page.headers.getlist("Set-Cookie")


def test_a_token_works_in_its_own_browser_only(new_client, client, link):
    _, token = open_page(client, link.page_url(1))
    other = new_client()
    open_page(other, link.page_url(1))
    before = snapshot(link)
    refused = post(other, link.page_url(1), token)
    assert refused.status_code == 400 and "Trang này đã hết hiệu lực" in refused.get_data(as_text=True)
    assert snapshot(link) == before
    assert post(client, link.page_url(1), token).status_code == 303


def test_a_token_of_another_link_is_refused(client, link, make_invitation):
    _, other_link_token = make_invitation(db.session.get(Campaign, link.campaign_id))
    _, token = open_page(client, f"/s/{other_link_token}/1")
    before = snapshot(link)
    assert post(client, link.page_url(1), token).status_code == 400
    assert snapshot(link) == before


@pytest.mark.parametrize("cookie", [None, "", "short", "x" * 43 + "!", "A" * 43],
                         ids=["no cookie", "empty", "malformed", "bad character", "another secret"])
def test_without_the_browser_cookie_the_token_is_refused(client, link, cookie):
    _, token = open_page(client, link.page_url(1))
    client.delete_cookie(tokens.COOKIE, path="/s/")
    if cookie is not None:
        client.set_cookie(tokens.COOKIE, cookie, path="/s/")
    before = snapshot(link)
    response = post(client, link.page_url(1), token)
    assert response.status_code == 400
    assert snapshot(link) == before


@pytest.mark.parametrize("mangle", [lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), lambda t: t[:-2],
                                    lambda t: t.upper(), lambda t: ""], ids=["changed", "short", "case", "empty"])
def test_an_altered_token_is_refused(client, link, mangle):
    _, token = open_page(client, link.page_url(1))
    before = snapshot(link)
    assert post(client, link.page_url(1), mangle(token)).status_code == 400
    assert snapshot(link) == before


def test_the_last_page_stores_the_response_without_a_session(client, link):
    """A whole survey with no session cookie ever set: what the benchmark's customers do."""
    answers = {code: 8 for _, codes in PAGES for code in codes}
    for number in range(1, len(PAGES) + 1):
        page, token = open_page(client, link.page_url(number))
        data = {"csrf_token": token, "_action": "next", **form_values(page_answers(answers, number))}
        response = client.post(link.page_url(number), data=data)
        assert response.status_code == 303
    assert response.headers["Location"].endswith("/thanks")
    assert client.get_cookie("session") is None
    assert snapshot(link).responses == 1
