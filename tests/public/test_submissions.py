"""A survey link answers once: a repeated or concurrent final submit stores exactly one response."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Invitation, Response

from .conftest import PAGES, answer_page, csrf_from, form_values, full_answers, page_answers, snapshot

LAST = len(PAGES)


def answer_all_but_last(client, link, answers):
    for number in range(1, LAST):
        assert answer_page(client, link, number, page_answers(answers, number)).status_code == 303


def test_the_same_link_submitted_twice_is_refused_the_second_time(new_client, client, link):
    answers = full_answers()
    answer_all_but_last(client, link, answers)
    page = client.get(link.page_url(LAST)).get_data(as_text=True)
    final = {"csrf_token": csrf_from(page), "_action": "next", **form_values(page_answers(answers, LAST))}

    first = client.post(link.page_url(LAST), data=final)
    assert first.status_code == 303 and first.headers["Location"] == f"{link.url}/thanks"
    stored = snapshot(link)
    assert stored.responses == 1

    again = client.post(link.page_url(LAST), data=final)  # e.g. the browser's "resend form data"
    assert again.status_code == 410
    assert "Đường dẫn này đã được sử dụng" in again.get_data(as_text=True)
    other_browser = new_client()
    assert other_browser.get(link.page_url(LAST)).status_code == 410
    # Any page of a used link is refused, and the response stays as first sent.
    for number in (1, LAST):
        assert client.post(link.page_url(number), data=final).status_code == 410
    assert snapshot(link) == stored
    row = db.session.scalar(sa.select(Response))
    assert row.answers == answers


@pytest.mark.postgresql_only
def test_twenty_concurrent_submits_store_exactly_one_response(new_client, backend, link):
    if backend != "postgresql":
        pytest.skip("concurrent submits need PostgreSQL's row locks; SQLite serialises writers (set TEST_DATABASE_URL)")
    answers = full_answers(seed=4)
    draft = {code: value for code, value in answers.items() if code not in PAGES[LAST - 1][1]}
    invitation = db.session.get(Invitation, link.invitation_id)
    invitation.draft_answers = draft
    invitation.draft_page = LAST
    db.session.commit()

    workers = 20
    barrier = threading.Barrier(workers, timeout=60)
    results: list[object] = [None] * workers
    final = form_values(page_answers(answers, LAST))

    def submit(slot: int) -> None:
        try:
            client = new_client()
            page = client.get(link.page_url(LAST))
            assert page.status_code == 200
            data = {"csrf_token": csrf_from(page.get_data(as_text=True)), "_action": "next", **final}
            barrier.wait()
            results[slot] = client.post(link.page_url(LAST), data=data).status_code
        except Exception as error:  # reported below; a thread cannot fail the test itself
            results[slot] = repr(error)

    threads = [threading.Thread(target=submit, args=(slot,)) for slot in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert sorted(results, key=str) == sorted([303] + [410] * (workers - 1), key=str), results
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 1
    row = db.session.scalar(sa.select(Response))
    assert row.answers == answers and row.invitation_id == link.invitation_id
    creates = db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.entity == "response")
    )
    assert creates == 1
