"""Review states of cross responses, the counting rule, and HQ's review pages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Campaign, Channel, CustomerGroup, Response, ReviewState, Source
from survey.services.responses import submit_response
from survey.services.review import (
    ReviewError,
    approve_assignment,
    counted_cross_filter,
    review_response,
    set_count_only_approved,
)

from .conftest import add_cross_response, csrf_from, login


def counted(campaign: Campaign) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Response).where(counted_cross_filter(campaign)))


def four_states(cross) -> list[Response]:
    assignment = cross.assignments[0]
    responses = [add_cross_response(cross.campaign, assignment, f"r-{i}") for i in range(4)]
    review_response(responses[1], ReviewState.HAS_ISSUES, "District missing.", cross.hq)
    review_response(responses[2], ReviewState.APPROVED, None, cross.hq)
    review_response(responses[3], ReviewState.REJECTED, "Customer is in another province.", cross.hq)
    return responses


def test_counting_rule(cross):
    four_states(cross)
    # A consultant response never counts as cross.
    submit_response(campaign=cross.campaign, unit=cross.units[0], source=Source.CONSULTANT, channel=Channel.IMPORT,
                    customer_group=CustomerGroup.HOUSEHOLD, respondent_id="c-1",
                    answers={item.code: 7 for item in cross.campaign.questionnaire.items})
    assert counted(cross.campaign) == 3  # received, has issues, approved; never rejected
    set_count_only_approved(cross.campaign, True, cross.hq)
    assert counted(cross.campaign) == 1
    event = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.entity == "campaign", AuditEvent.action == "edit")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event.before == {"count_only_approved": False} and event.after == {"count_only_approved": True}


def test_each_review_is_audited_with_before_and_after(cross):
    responses = four_states(cross)
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "review").order_by(AuditEvent.id)
    ).all()
    assert [e.entity_id for e in events] == [str(r.id) for r in responses[1:]]
    assert events[2].before["review_state"] == "received" and events[2].after["review_state"] == "rejected"
    assert events[2].after["review_comment"] == "Customer is in another province."
    assert {e.actor for e in events} == {"hq@evnnpc.vn"}


@pytest.mark.parametrize("state", [ReviewState.HAS_ISSUES, ReviewState.REJECTED])
def test_comment_required_for_issues_and_rejection(cross, state):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    with pytest.raises(ReviewError, match="comment"):
        review_response(response, state, "   ", cross.hq)
    db.session.rollback()
    assert db.session.get(Response, response.id).review_state == ReviewState.RECEIVED


def test_unknown_state_and_consultant_responses_refused(cross):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    with pytest.raises(ReviewError, match="Choose one"):
        review_response(response, "lost", "x", cross.hq)
    consultant = submit_response(campaign=cross.campaign, unit=cross.units[0], source=Source.CONSULTANT,
                                 channel=Channel.IMPORT, customer_group=CustomerGroup.HOUSEHOLD, respondent_id="c-1",
                                 answers={})
    with pytest.raises(ReviewError, match="Only cross"):
        review_response(consultant, ReviewState.APPROVED, None, cross.hq)


def test_bulk_approve_touches_only_received(cross):
    responses = four_states(cross)
    extra = add_cross_response(cross.campaign, cross.assignments[0], "r-9")
    other = add_cross_response(cross.campaign, cross.assignments[1], "r-10")
    assert approve_assignment(cross.assignments[0], cross.hq, "Checked by phone.") == 2
    db.session.expire_all()
    states = {r.id: db.session.get(Response, r.id).review_state for r in [*responses, extra, other]}
    assert states == {
        responses[0].id: ReviewState.APPROVED,
        responses[1].id: ReviewState.HAS_ISSUES,
        responses[2].id: ReviewState.APPROVED,
        responses[3].id: ReviewState.REJECTED,
        extra.id: ReviewState.APPROVED,
        other.id: ReviewState.RECEIVED,
    }


# --- pages --------------------------------------------------------------------------------------


def test_review_page_filters_and_detail(cross, client):
    responses = four_states(cross)
    other = add_cross_response(cross.campaign, cross.assignments[5], "r-other")
    login(client, "hq@evnnpc.vn")
    page = client.get(f"/hq/campaigns/{cross.campaign.code}/review?state=rejected&lang=en")
    assert page.status_code == 200
    assert f"/review/{responses[3].id}?" in page.text and f"/review/{responses[0].id}?" not in page.text
    by_assignment = client.get(f"/hq/campaigns/{cross.campaign.code}/review?assignment={cross.assignments[5].id}")
    assert f"/review/{other.id}?" in by_assignment.text and f"/review/{responses[0].id}?" not in by_assignment.text
    detail = client.get(f"/hq/campaigns/{cross.campaign.code}/review/{responses[0].id}")
    assert detail.status_code == 200
    first_item = cross.campaign.questionnaire.items[0]
    assert first_item.text_en in detail.text and ">8<" in detail.text


def test_review_form_sets_state_and_requires_comment(cross, client):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    login(client, "hq@evnnpc.vn")
    url = f"/hq/campaigns/{cross.campaign.code}/review/{response.id}"
    token = csrf_from(client.get(url).text)
    refused = client.post(url, data={"csrf_token": token, "state": "rejected", "comment": ""})
    assert refused.status_code == 400 and "field-error" in refused.text
    db.session.expire_all()
    assert db.session.get(Response, response.id).review_state == ReviewState.RECEIVED
    bad_state = client.post(url, data={"csrf_token": token, "state": "deleted", "comment": "x"})
    assert bad_state.status_code == 400
    saved = client.post(url, data={"csrf_token": token, "state": "rejected", "comment": "Wrong province."})
    assert saved.status_code == 302
    db.session.expire_all()
    stored = db.session.get(Response, response.id)
    assert (stored.review_state, stored.review_comment) == (ReviewState.REJECTED, "Wrong province.")


def test_bulk_approve_and_counting_toggle_pages(cross, client):
    add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    add_cross_response(cross.campaign, cross.assignments[0], "r-2")
    login(client, "hq@evnnpc.vn")
    page = client.get(f"/hq/campaigns/{cross.campaign.code}/review?assignment={cross.assignments[0].id}")
    token = csrf_from(page.text)
    approved = client.post(f"/hq/campaigns/{cross.campaign.code}/assignments/{cross.assignments[0].id}/approve",
                           data={"csrf_token": token, "comment": ""})
    assert approved.status_code == 302
    assert counted(cross.campaign) == 2
    toggled = client.post(f"/hq/campaigns/{cross.campaign.code}/review/settings",
                          data={"csrf_token": token, "count_only_approved": "y"})
    assert toggled.status_code == 302
    db.session.expire_all()
    assert db.session.get(Campaign, cross.campaign.id).count_only_approved is True


def test_auditor_cannot_review_and_nothing_changes(cross, client):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    login(client, "auditor.a@evnnpc.vn")
    token = csrf_from(client.get("/", follow_redirects=True).text)
    url = f"/hq/campaigns/{cross.campaign.code}/review/{response.id}"
    assert client.post(url, data={"csrf_token": token, "state": "approved"}).status_code == 403
    approve = f"/hq/campaigns/{cross.campaign.code}/assignments/{cross.assignments[0].id}/approve"
    assert client.post(approve, data={"csrf_token": token}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Response, response.id).review_state == ReviewState.RECEIVED
    reviews = sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "review")
    assert db.session.scalar(reviews) == 0


def test_response_of_another_campaign_is_not_found(cross, client, make_campaign):
    response = add_cross_response(cross.campaign, cross.assignments[0], "r-1")
    make_campaign(code="other-2018", units=0)
    login(client, "hq@evnnpc.vn")
    assert client.get(f"/hq/campaigns/other-2018/review/{response.id}").status_code == 404
    assert client.get("/hq/campaigns/no-such/review").status_code == 404
