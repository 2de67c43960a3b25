"""A survey link answers once: a repeated or concurrent final submit stores exactly one response."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Channel, CustomerGroup, Invitation, Response, Source, Unit
from survey.services.audit import chain_head, event_hash, verify_chain
from survey.services.responses import submit_response

from .conftest import (
    PAGES,
    Link,
    answer_page,
    csrf_from,
    form_values,
    full_answers,
    page_answers,
    snapshot,
    watch_links,
)

LAST = len(PAGES)


def answer_all_but_last(client, link, answers):
    for number in range(1, LAST):
        assert answer_page(client, link, number, page_answers(answers, number)).status_code == 303


def submit_at_once(new_client, links: list[Link], final: dict[str, str]) -> list[object]:
    """Open the last page of each link in its own client, then send them all at the same moment.

    Returns each POST's status code, or the error a thread met (a thread cannot fail the test itself).
    """
    barrier = threading.Barrier(len(links), timeout=60)
    results: list[object] = [None] * len(links)

    def submit(slot: int) -> None:
        try:
            client = new_client()
            page = client.get(links[slot].page_url(LAST))
            assert page.status_code == 200
            data = {"csrf_token": csrf_from(page.get_data(as_text=True)), "_action": "next", **final}
            barrier.wait()
            results[slot] = client.post(links[slot].page_url(LAST), data=data).status_code
        except Exception as error:  # reported by the caller's assertion
            results[slot] = repr(error)

    threads = [threading.Thread(target=submit, args=(slot,)) for slot in range(len(links))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


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
    results = submit_at_once(new_client, [link] * workers, form_values(page_answers(answers, LAST)))

    assert sorted(results, key=str) == sorted([303] + [410] * (workers - 1), key=str), results
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 1
    row = db.session.scalar(sa.select(Response))
    assert row.answers == answers and row.invitation_id == link.invitation_id
    creates = db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.entity == "response")
    )
    assert creates == 1
    assert verify_chain().ok


def submit_survey(client, link, answers) -> int:
    """Answer every page of a link like a browser; return the final POST's status."""
    answer_all_but_last(client, link, answers)
    return answer_page(client, link, LAST, page_answers(answers, LAST)).status_code


def test_web_submissions_and_other_audited_writes_share_one_intact_chain(new_client, make_campaign,
                                                                         make_invitation):
    """Each web response gets exactly one create event; events of other paths chain with them; verify passes."""
    campaign = make_campaign()
    links = [Link(token, invitation.id, campaign.id)
             for invitation, token in (make_invitation(campaign) for _ in range(3))]
    unit = db.session.scalar(sa.select(Unit).order_by(Unit.id))
    for position, link in enumerate(links):
        assert submit_survey(new_client(), link, full_answers(seed=position)) == 303
        # An audited write of another kind between web submissions (an interview entered by staff).
        submit_response(campaign=campaign, unit=unit, source=Source.CONSULTANT, channel=Channel.INTERVIEW,
                        customer_group=CustomerGroup.HOUSEHOLD, respondent_id=f"r-{position}",
                        answers=full_answers(seed=position + 5))
    responses = db.session.scalars(sa.select(Response).where(Response.invitation_id.is_not(None))).all()
    assert len(responses) == 3
    for response in responses:
        events = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.entity == "response", AuditEvent.entity_id == str(response.id))
        ).all()
        assert len(events) == 1 and events[0].action == "create" and events[0].actor == "customer"
        assert events[0].after["answers"] == response.answers
        assert events[0].hash == event_hash(events[0])
    result = verify_chain()
    assert result.ok and result.checked == 6, result


def test_a_missing_chain_head_is_rebuilt_from_the_trail(new_client, make_campaign, make_invitation):
    """The head row is created from the newest event when absent (a database emptied by hand, or restored)."""
    campaign = make_campaign()
    first, second = (Link(token, invitation.id, campaign.id)
                     for invitation, token in (make_invitation(campaign) for _ in range(2)))
    assert submit_survey(new_client(), first, full_answers(seed=1)) == 303
    db.session.execute(sa.delete(chain_head))
    db.session.commit()
    assert submit_survey(new_client(), second, full_answers(seed=2)) == 303
    result = verify_chain()
    assert result.ok and result.checked == 2, result
    events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
    assert events[1].prev_hash == events[0].hash
    assert db.session.scalar(sa.select(chain_head.c.hash)) == events[1].hash


@pytest.mark.postgresql_only
def test_concurrent_submissions_of_different_links_keep_one_chain(new_client, backend, make_campaign,
                                                                  make_invitation):
    """Many customers sending at once: every response stored, each with its event, and the chain unforked."""
    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (set TEST_DATABASE_URL)")
    campaign = make_campaign()
    workers = 12
    links = [Link(token, invitation.id, campaign.id)
             for invitation, token in (make_invitation(campaign) for _ in range(workers))]
    answers = full_answers(seed=7)
    draft = {code: value for code, value in answers.items() if code not in PAGES[LAST - 1][1]}
    db.session.execute(sa.update(Invitation).values(draft_answers=draft, draft_page=LAST))
    db.session.commit()
    results = submit_at_once(new_client, links, form_values(page_answers(answers, LAST)))
    assert results == [303] * workers
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == workers
    result = verify_chain()
    assert result.ok and result.checked == workers, result


# --- PostgreSQL: the link is carried by the page or read without a lock, and written only if unchanged ----

#: Each race below is run with the page's link state in the form (the POST trusts it, and finds it
#: stale at the write) and without it (the POST reads the link, and the change follows the read).
CARRY = pytest.mark.parametrize("carry", [True, False], ids=["carried", "read"])


def _customer_part_way(backend, new_client, link, seed: int, *, all_but_last: bool):
    """PostgreSQL only: a customer's browser with page 1 (or every page but the last) answered."""
    if backend != "postgresql":
        pytest.skip("the unlocked read and conditional write are PostgreSQL's")
    answers = full_answers(seed=seed)
    client = new_client()
    if all_but_last:
        answer_all_but_last(client, link, answers)
    else:
        assert answer_page(client, link, 1, page_answers(answers, 1)).status_code == 303
    first_code = PAGES[0][1][0]
    return client, answers, first_code, 1 if answers[first_code] != 1 else 2


def _merge_draft(values: dict) -> object:
    def change(connection, invitation_id):
        connection.execute(sa.update(Invitation).where(Invitation.id == invitation_id).values(
            draft_answers=Invitation.draft_answers.op("||")(sa.cast(values, Invitation.draft_answers.type))))
    return change


def _first_then_reads(carry: bool, reads: int) -> list[str]:
    return ["carried"] * carry + ["read"] * reads


@CARRY
@pytest.mark.postgresql_only
def test_a_draft_saved_between_the_read_and_the_write_is_kept(new_client, backend, link, monkeypatch, carry):
    """Tab A saves page 2 while tab B's save of page 1 lands in between: A starts over and keeps both."""
    client, answers, first_code, changed = _customer_part_way(backend, new_client, link, 11, all_but_last=False)
    known = watch_links(monkeypatch, _merge_draft({first_code: changed}))
    assert answer_page(client, link, 2, page_answers(answers, 2), carry_state=carry).status_code == 303
    # the conditional write found the row changed, and the POST started over from a read
    assert known == _first_then_reads(carry, 2 - carry)
    draft = snapshot(link).draft_answers
    assert draft[first_code] == changed  # B's answer is not overwritten by A's stale copy
    assert all(draft[code] == answers[code] for code in PAGES[1][1])  # and A's page is saved


@CARRY
@pytest.mark.postgresql_only
def test_a_submission_after_a_change_in_between_stores_the_newer_answers(new_client, backend, link, monkeypatch,
                                                                         carry):
    client, answers, first_code, changed = _customer_part_way(backend, new_client, link, 12, all_but_last=True)
    known = watch_links(monkeypatch, _merge_draft({first_code: changed}))
    response = answer_page(client, link, LAST, page_answers(answers, LAST), carry_state=carry)
    assert response.status_code == 303 and response.headers["Location"].endswith("/thanks")
    assert known == _first_then_reads(carry, 2 - carry)
    db.session.expire_all()
    stored = db.session.scalars(sa.select(Response)).all()
    assert len(stored) == 1 and stored[0].answers == {**answers, first_code: changed}
    assert verify_chain().ok


@CARRY
@pytest.mark.postgresql_only
def test_a_link_used_between_the_read_and_the_write_stores_nothing_more(new_client, backend, link, monkeypatch,
                                                                        carry):
    client, answers, _, _ = _customer_part_way(backend, new_client, link, 13, all_but_last=True)

    def use(connection, invitation_id):
        connection.execute(sa.update(Invitation).where(Invitation.id == invitation_id).values(used_at=sa.func.now()))

    known = watch_links(monkeypatch, use)
    response = answer_page(client, link, LAST, page_answers(answers, LAST), carry_state=carry)
    assert response.status_code == 410
    assert known == _first_then_reads(carry, 1 - carry)  # the read that followed said "used"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 0


@CARRY
@pytest.mark.postgresql_only
def test_a_link_changed_at_every_attempt_answers_409_and_saves_nothing(new_client, backend, link, monkeypatch,
                                                                       carry):
    client, answers, _, _ = _customer_part_way(backend, new_client, link, 14, all_but_last=True)
    before = snapshot(link)

    def touch(connection, invitation_id):
        connection.execute(sa.update(Invitation).where(Invitation.id == invitation_id).values(
            draft_page=Invitation.draft_page))

    known = watch_links(monkeypatch, touch, times=None)
    response = answer_page(client, link, LAST, page_answers(answers, LAST), carry_state=carry)
    assert response.status_code == 409 and "Trang này đã hết hiệu lực" in response.get_data(as_text=True)
    assert known == _first_then_reads(carry, 3)
    after = snapshot(link)
    assert (after.responses, after.draft_answers, after.used_at) == (0, before.draft_answers, None)
