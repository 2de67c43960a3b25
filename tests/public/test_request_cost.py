"""What a survey request costs: the statements it sends, and the questionnaire layout kept between requests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from survey import questionnaire as questionnaire_module
from survey.extensions import db
from survey.models import Campaign, Dimension, Questionnaire
from survey.questionnaire import layout_of
from survey.services.audit import ensure_chain_head

from .conftest import PAGES, answer_page, form_values, full_answers, page_answers, page_fields

#: Most statements a request may send. A page reads its invitation with campaign, questionnaire
#: and unit in one statement; the questionnaire's dimensions and items come from the per-process
#: layout. On PostgreSQL a page POST knows its invitation from the page's form (`link_state`) and
#: saves the draft in one statement; the submission sends one statement that uses the link, stores
#: the response, moves the audit chain's head and appends the event. On SQLite a page POST reads
#: and locks its invitation in one statement and saves the draft in a second; the submission reads
#: it, then takes one statement for each of those (and the head's lock).
MAX_STATEMENTS = {
    "postgresql": {"intro GET": 1, "page GET": 1, "page POST": 1, "submit POST": 1, "thanks GET": 1},
    "sqlite": {"intro GET": 1, "page GET": 1, "page POST": 2, "submit POST": 6, "thanks GET": 1},
}


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements sent to the database while the block runs (transaction control excluded)."""
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.split(None, 1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", remember)


def test_survey_requests_send_a_bounded_number_of_statements(client, link, backend):
    bounds = MAX_STATEMENTS[backend]
    ensure_chain_head()  # as the migration leaves it (the tests empty every table, the head row too)
    answers = full_answers()
    client.get(link.page_url(1))  # the first request of the process reads the questionnaire's layout
    sent: dict[str, list[int]] = {kind: [] for kind in bounds}
    with counted() as statements:
        client.get(link.url)
    sent["intro GET"].append(len(statements))
    for number in range(1, len(PAGES) + 1):
        with counted() as statements:
            page = client.get(link.page_url(number))
        assert page.status_code == 200
        sent["page GET"].append(len(statements))
        data = {**page_fields(page.get_data(as_text=True)), "_action": "next",
                **form_values(page_answers(answers, number))}
        with counted() as statements:
            reply = client.post(link.page_url(number), data=data)
        assert reply.status_code == 303
        sent["submit POST" if number == len(PAGES) else "page POST"].append(len(statements))
    with counted() as statements:
        thanks = client.get(f"{link.url}/thanks")
    assert thanks.status_code == 200
    sent["thanks GET"].append(len(statements))

    too_many = {kind: counts for kind, counts in sent.items() if max(counts) > bounds[kind]}
    assert not too_many, f"statements per request above {bounds}: {too_many}"
    assert all(min(counts) >= 1 for counts in sent.values())  # the counter does see the requests


def test_layout_is_read_once_and_matches_the_stored_questionnaire(link):
    questionnaire = db.session.get(Campaign, link.campaign_id).questionnaire
    first = layout_of(questionnaire)
    assert [d.code for d in first.dimensions] == [code for code, _ in PAGES]
    assert [[i.code for i in d.items] for d in first.dimensions] == [items for _, items in PAGES]
    assert first.item_codes == tuple(code for _, items in PAGES for code in items)
    db.session.expire_all()
    with counted() as statements:
        again = layout_of(db.session.get(Questionnaire, questionnaire.id))
    assert again is first
    assert len(statements) == 1  # the questionnaire row itself; no dimension or item query


def test_a_changed_questionnaire_is_not_served_from_the_cache(client, link):
    """Same questionnaire id with another text (an edited draft, or an id reused after a wipe): fresh pages."""
    answer_page(client, link, 1, page_answers(full_answers(), 1))
    assert "<h1>Cung cấp điện</h1>" in client.get(link.page_url(1)).get_data(as_text=True)

    questionnaire_id = db.session.get(Campaign, link.campaign_id).questionnaire_id
    db.session.execute(
        sa.update(Dimension)
        .where(Dimension.questionnaire_id == questionnaire_id, Dimension.position == 0)
        .values(title_vi="Chất lượng cấp điện")
    )
    db.session.execute(
        sa.update(Questionnaire).where(Questionnaire.id == questionnaire_id).values(checksum="0" * 64)
    )
    db.session.commit()

    html = client.get(link.page_url(1)).get_data(as_text=True)
    assert "<h1>Chất lượng cấp điện</h1>" in html
    assert "Cung cấp điện" not in html


def test_the_layout_cache_stays_bounded(link, monkeypatch):
    monkeypatch.setattr(questionnaire_module, "_layouts", type(questionnaire_module._layouts)())
    monkeypatch.setattr(questionnaire_module, "LAYOUT_CACHE_SIZE", 2)
    questionnaire = db.session.get(Campaign, link.campaign_id).questionnaire
    for checksum in ("a" * 64, "b" * 64, "c" * 64):
        questionnaire.checksum = checksum
        db.session.commit()
        layout_of(questionnaire)
    assert list(questionnaire_module._layouts) == [(questionnaire.id, "b" * 64), (questionnaire.id, "c" * 64)]


@pytest.mark.parametrize("carry", [True, False], ids=["carried", "read"])
def test_survey_requests_open_no_transaction_on_postgresql(client, link, backend, monkeypatch, carry):
    """Each statement of a survey page's GET or POST, or of the submission, is a transaction of its own
    (autocommit): no BEGIN, COMMIT or ROLLBACK goes to the server, and no lock outlives its statement.
    So psycopg keeps the statements it prepared (it forgets them all at a ROLLBACK). A POST whose
    form carries the link's state sends one statement (the write); one without it reads the link first."""
    if backend != "postgresql":
        pytest.skip("SQLite page POSTs run in a transaction (its writers are serialised anyway)")
    import psycopg
    from psycopg.pq import TransactionStatus

    ensure_chain_head()
    answers = full_answers()
    posts: list[list[TransactionStatus]] = []
    states: list[TransactionStatus] = []
    rolled_back: list[TransactionStatus] = []
    rollback = psycopg.Connection.rollback

    def recording_rollback(self):  # noqa: ANN001, ANN202
        rolled_back.append(self.info.transaction_status)
        return rollback(self)

    monkeypatch.setattr(psycopg.Connection, "rollback", recording_rollback)

    def after(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        states.append(conn.connection.dbapi_connection.info.transaction_status)

    sa.event.listen(db.engine, "after_cursor_execute", after)
    try:
        assert client.get(link.url).status_code == 200  # the introduction
        assert states and set(states) == {TransactionStatus.IDLE}, states
        for number in range(1, len(PAGES) + 1):
            states.clear()
            page = client.get(link.page_url(number))
            assert states and set(states) == {TransactionStatus.IDLE}, (number, states)
            data = {**page_fields(page.get_data(as_text=True)), "_action": "next",
                    **form_values(page_answers(answers, number))}
            if not carry:
                del data["link_state"]
            states.clear()
            assert client.post(link.page_url(number), data=data).status_code == 303
            posts.append(list(states))
        states.clear()
        assert client.get(f"{link.url}/thanks").status_code == 200
        assert states and set(states) == {TransactionStatus.IDLE}, states
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", after)
    assert [len(p) for p in posts] == [1 if carry else 2] * len(PAGES), posts  # (the read and) the write
    assert {state for p in posts for state in p} == {TransactionStatus.IDLE}, posts
    # The pool resets each connection it gets back: never with a transaction open.
    assert rolled_back and TransactionStatus.INTRANS not in rolled_back, rolled_back


def test_a_customer_without_a_session_cookie_costs_no_session_signer(client, link, monkeypatch):
    """Survey requests of a customer who has no session cookie do not build Flask's session signer; once the
    customer has a session (a language chosen), it is read and kept as before."""
    from flask.sessions import SecureCookieSessionInterface

    built: list[int] = []
    original = SecureCookieSessionInterface.get_signing_serializer

    def counting(self, app):  # noqa: ANN001, ANN202
        built.append(1)
        return original(self, app)

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", counting)
    page = client.get(link.page_url(1))
    assert page.status_code == 200 and '<html lang="vi">' in page.text
    assert built == []
    assert client.get(link.page_url(1) + "?lang=en").status_code == 200  # starts a session
    assert built  # saved signed
    built.clear()
    again = client.get(link.page_url(1))
    assert '<html lang="en">' in again.text  # the session was read back
    assert built


def test_survey_pages_work_for_a_signed_in_person_and_after_an_earlier_read(app, client, link, make_user):
    """A page GET also works when staff are signed in (their account is read while the page renders), and
    when something read the database earlier in the request (the transaction it began goes on)."""
    from tests.helpers import login

    make_user("hq@evnnpc.vn")
    login(client, "hq@evnnpc.vn", "correct horse 42")
    assert client.get(link.page_url(1)).status_code == 200

    def earlier_read() -> None:
        db.session.execute(sa.text("SELECT 1"))

    app.before_request_funcs.setdefault(None, []).append(earlier_read)
    try:
        page = client.get(link.page_url(1))
        assert page.status_code == 200 and 'name="csrf_token"' in page.text
        assert client.get(link.url).status_code == 200
    finally:
        app.before_request_funcs[None].remove(earlier_read)
