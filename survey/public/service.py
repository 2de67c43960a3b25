"""The customer survey's use cases: its pages, the saved draft, and the final submission.

Page 0 is the introduction, pages 1..n are the questionnaire's dimensions in order, and
page n + 1 stands for "answers sent". The draft on the invitation maps item codes to a
number or None (Not applicable); an item without a key has not been answered yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import Channel, Invitation, utcnow
from ..questionnaire import DimensionSpec, QuestionnaireLayout, layout_of
from ..services.invitations import InvitationUnavailable, check_open, load_invitation
from ..services.responses import DuplicateSubmission, submit_response


@dataclass(frozen=True)
class SurveyProgress:
    """Where a customer is: the questionnaire's pages and the answers saved so far."""

    layout: QuestionnaireLayout
    draft: Mapping[str, int | None]
    saved_page: int

    @property
    def pages(self) -> tuple[DimensionSpec, ...]:
        """The questionnaire's dimensions, one per page."""
        return self.layout.dimensions

    @property
    def total(self) -> int:
        """Number of question pages."""
        return len(self.pages)

    def dimension(self, number: int) -> DimensionSpec:
        """The dimension shown on page ``number`` (1-based)."""
        return self.pages[number - 1]

    def answers_on(self, number: int) -> dict[str, int | None]:
        """The saved answers of one page."""
        return {item.code: self.draft[item.code] for item in self.dimension(number).items if item.code in self.draft}

    @property
    def first_incomplete(self) -> int:
        """The first page with an unanswered item; total + 1 when every page is answered."""
        for number, dimension in enumerate(self.pages, start=1):
            if any(item.code not in self.draft for item in dimension.items):
                return number
        return self.total + 1

    @property
    def resume_page(self) -> int:
        """The page to reopen the link on: where the customer left, but never past an unanswered page."""
        return max(0, min(self.saved_page, self.first_incomplete, self.total))


def progress_of(invitation: Invitation, draft: Mapping[str, Any] | None = None) -> SurveyProgress:
    """The survey's pages and the invitation's draft (or the given draft)."""
    layout = layout_of(invitation.campaign.questionnaire)
    return SurveyProgress(layout, dict(draft if draft is not None else invitation.draft_answers or {}),
                          invitation.draft_page)


def record_page(invitation: Invitation, number: int, answers: Mapping[str, int | None], action: str) -> int:
    """Save one page's validated answers and return the page to show next (0 intro, total + 1 thanks).

    ``action`` is "next" (on the last page: submit the survey), "back" or "save". Raises
    InvitationUnavailable(410, "used") when the link was used meanwhile; nothing is saved then.
    """
    # Lock the invitation row so two tabs or a double click cannot interleave their drafts or submissions.
    row = db.session.execute(
        sa.select(Invitation.draft_answers, Invitation.used_at).where(Invitation.id == invitation.id).with_for_update()
    ).one()
    if row.used_at is not None:
        db.session.rollback()
        raise InvitationUnavailable(410, "used")
    draft = {**(row.draft_answers or {}), **answers}
    progress = progress_of(invitation, draft)
    if action == "back":
        destination = number - 1
    elif action == "save":
        destination = number
    elif number < progress.total:
        destination = number + 1
    elif progress.first_incomplete <= progress.total:
        destination = progress.first_incomplete
    else:
        _submit(invitation, draft)
        return progress.total + 1
    db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation.id)
        .values(draft_answers=draft, draft_page=destination, draft_saved_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return destination


def _submit(invitation: Invitation, answers: Mapping[str, int | None]) -> None:
    campaign = invitation.campaign
    try:
        submit_response(
            campaign=campaign,
            unit=invitation.unit,
            source=campaign.web_source,
            channel=Channel.WEB,
            customer_group=invitation.customer_group,
            respondent_id=f"invitation-{invitation.id}",
            answers=answers,
            idempotency_key=f"invitation-{invitation.id}",
            invitation=invitation,
            actor="customer",
        )
    except DuplicateSubmission:
        raise InvitationUnavailable(410, "used") from None


def answered_invitation(token: str) -> Invitation | None:
    """The invitation of a link whose answers were sent; None while it is still open to answer.

    Raises InvitationUnavailable when the link is unknown, or expired or closed before it was answered.
    """
    invitation = load_invitation(token)
    if invitation is not None and invitation.used_at is not None:
        return invitation
    check_open(invitation)
    return None
