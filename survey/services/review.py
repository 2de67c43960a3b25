"""HQ review of cross responses: received, has issues, approved, rejected; and which ones count in scores."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Assignment, Campaign, ReviewState, Response, Source, Unit, User
from . import audit
from .i18n import translate as _
from .responses import response_snapshot

#: States that need a comment saying what is wrong.
COMMENT_REQUIRED = frozenset({ReviewState.HAS_ISSUES, ReviewState.REJECTED})
MAX_COMMENT = 2000



class ReviewError(ValueError):
    """A review that cannot be recorded as asked; the message says why."""


def counted_cross_filter(campaign: Campaign) -> sa.ColumnElement[bool]:
    """The condition on Response selecting the campaign's cross responses that count in scores.

    Rejected responses never count. With ``count_only_approved`` only approved ones count;
    otherwise received, has-issues and approved responses all count.
    """
    if campaign.count_only_approved:
        state = Response.review_state == ReviewState.APPROVED
    else:
        state = Response.review_state != ReviewState.REJECTED
    return sa.and_(Response.campaign_id == campaign.id, Response.source == Source.CROSS, state)


def _locked(response: Response) -> Response:
    """Re-read the response under a row lock, so concurrent reviews are recorded in the order they happen."""
    return db.session.execute(
        sa.select(Response)
        .where(Response.id == response.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _clean_comment(state: ReviewState, comment: str | None) -> str | None:
    comment = (comment or "").strip() or None
    if state in COMMENT_REQUIRED and comment is None:
        raise ReviewError(_("Say what is wrong in the comment: it is required for 'has issues' and 'rejected'."))
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ReviewError(_("The comment is too long; keep it under %(most)s characters.", most=MAX_COMMENT))
    return comment


def review_response(response: Response, state: ReviewState | str, comment: str | None, user: User | None) -> Response:
    """Set a cross response's review state and comment, with an audit event, and commit."""
    try:
        state = ReviewState(state)
    except ValueError:
        raise ReviewError(_("Choose one of the review states: received, has issues, approved, rejected.")) from None
    comment = _clean_comment(state, comment)
    if response.source != Source.CROSS:
        raise ReviewError(_("Only cross-scoring responses are reviewed here."))
    response = _locked(response)
    if response.review_state == state and response.review_comment == comment:
        db.session.rollback()
        return response
    before = response_snapshot(response)
    response.review_state = state
    response.review_comment = comment
    db.session.flush()
    audit.record("review", "response", response.id, before=before, after=response_snapshot(response), user=user)
    db.session.commit()
    return response


def approve_assignment(assignment: Assignment, user: User | None, comment: str | None = None) -> int:
    """Approve every response of an assignment still in 'received' (one audit event each); commit; return how many."""
    comment = _clean_comment(ReviewState.APPROVED, comment)
    responses = db.session.scalars(
        sa.select(Response)
        .where(Response.assignment_id == assignment.id, Response.review_state == ReviewState.RECEIVED)
        .order_by(Response.id)
        .with_for_update()
    ).all()
    for response in responses:
        before = response_snapshot(response)
        response.review_state = ReviewState.APPROVED
        response.review_comment = comment
        db.session.flush()
        audit.record("review", "response", response.id, before=before, after=response_snapshot(response), user=user)
    db.session.commit()
    return len(responses)


def set_count_only_approved(campaign: Campaign, value: bool, user: User | None) -> Campaign:
    """Choose whether only approved cross responses count in scores (else all but rejected); audit; commit."""
    if campaign.count_only_approved == value:
        return campaign
    before = {"count_only_approved": campaign.count_only_approved}
    campaign.count_only_approved = value
    audit.record("edit", "campaign", campaign.id, before=before, after={"count_only_approved": value}, user=user)
    db.session.commit()
    return campaign


@dataclass(frozen=True)
class ReviewFilter:
    """What HQ narrows the review list to; None means any."""

    assignment_id: int | None = None
    unit_id: int | None = None  # the scored unit
    rater_unit_id: int | None = None
    state: ReviewState | None = None


def review_query(campaign: Campaign, selected: ReviewFilter) -> sa.Select[tuple[Response]]:
    """The campaign's cross responses matching the filter, oldest first (for paging)."""
    query = sa.select(Response).where(Response.campaign_id == campaign.id, Response.source == Source.CROSS)
    if selected.assignment_id is not None:
        query = query.where(Response.assignment_id == selected.assignment_id)
    if selected.unit_id is not None:
        query = query.where(Response.unit_id == selected.unit_id)
    if selected.rater_unit_id is not None:
        query = query.where(Response.rater_unit_id == selected.rater_unit_id)
    if selected.state is not None:
        query = query.where(Response.review_state == selected.state)
    return query.options(selectinload(Response.unit), selectinload(Response.rater_unit)).order_by(Response.id)


def state_counts(campaign: Campaign) -> dict[str, int]:
    """How many of the campaign's cross responses are in each review state (counted in SQL)."""
    rows = db.session.execute(
        sa.select(Response.review_state, sa.func.count())
        .where(Response.campaign_id == campaign.id, Response.source == Source.CROSS)
        .group_by(Response.review_state)
    )
    counts = {str(state): 0 for state in ReviewState}
    counts.update({str(state): count for state, count in rows})
    return counts


def units_of(campaign: Campaign) -> list[Unit]:
    """Units that appear in the campaign's assignments, for filter menus."""
    ids = sa.union(
        sa.select(Assignment.rater_unit_id).where(Assignment.campaign_id == campaign.id),
        sa.select(Assignment.ratee_unit_id).where(Assignment.campaign_id == campaign.id),
    ).subquery()
    return list(db.session.scalars(sa.select(Unit).where(Unit.id.in_(sa.select(ids.c[0]))).order_by(Unit.code)))
