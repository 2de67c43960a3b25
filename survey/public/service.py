"""The customer survey's use cases: its pages, the saved draft, and the final submission.

Page 0 is the introduction, pages 1..n are the questionnaire's dimensions in order, and
page n + 1 stands for "answers sent". The draft on the invitation maps item codes to a
number or None (Not applicable); an item without a key has not been answered yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import sqlalchemy as sa

from ..models import Invitation, utcnow
from ..questionnaire import DimensionSpec, QuestionnaireLayout, layout_for, layout_of
from ..services.invitations import (
    CAMPAIGN_AS_READ,
    ROW_VERSION,
    InvitationUnavailable,
    LinkChanged,
    OpenLink,
    check_open,
    load_invitation,
)
from ..services.responses import DuplicateSubmission, submit_web_response


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

    @cached_property  # asked by the view and by `record_page`; the draft of a progress does not change
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


def progress_of(invitation: Invitation) -> SurveyProgress:
    """The survey's pages and the invitation's draft."""
    layout = layout_of(invitation.campaign.questionnaire)
    return SurveyProgress(layout, dict(invitation.draft_answers or {}), invitation.draft_page)


def progress_of_link(link: OpenLink) -> SurveyProgress:
    """The survey's pages and the draft of a link read by `lock_open_link`."""
    return SurveyProgress(layout_for(link.questionnaire_id, link.questionnaire_checksum), link.draft, link.draft_page)


_invitation = Invitation.__table__
_SAVE_DRAFT = (
    sa.update(_invitation)
    .where(_invitation.c.id == sa.bindparam("p_id"))
    .values(
        draft_answers=sa.bindparam("p_draft", type_=_invitation.c.draft_answers.type),
        draft_page=sa.bindparam("p_page"),
        draft_saved_at=sa.bindparam("p_saved_at", type_=_invitation.c.draft_saved_at.type),
    )
)
#: PostgreSQL, for a link read by `read_open_link` or carried by its page: only if the row is
#: unchanged since (and unused), and its campaign still open as read.
_SAVE_DRAFT_IF_UNCHANGED = _SAVE_DRAFT.where(
    ROW_VERSION == sa.bindparam("p_version", type_=sa.Text), _invitation.c.used_at.is_(None), CAMPAIGN_AS_READ
)


def record_page(
    connection: sa.Connection,
    link: OpenLink,
    layout: QuestionnaireLayout,
    number: int,
    answers: Mapping[str, int | None],
    action: str,
) -> int:
    """Save one page's validated answers and return the page to show next (0 intro, total + 1 thanks).

    ``link`` was read and locked by `lock_open_link` in the connection's transaction, so two tabs
    or a double click cannot interleave their drafts or submissions; or, on PostgreSQL, read by
    `read_open_link` or carried by the page (`link_state`) with its row version, and then the write
    happens only if the row is unchanged and its campaign still open as read, else LinkChanged is
    raised and nothing is saved (the caller reads the link again). ``action``
    is "next" (on the last page: submit the survey), "back" or "save". Commits. Raises InvitationUnavailable(410, "used") when
    the link was used meanwhile; nothing is saved then.
    """
    draft = {**link.draft, **answers}
    progress = SurveyProgress(layout, draft, link.draft_page)
    if action == "back":
        destination = number - 1
    elif action == "save":
        destination = number
    elif number < progress.total:
        destination = number + 1
    elif progress.first_incomplete <= progress.total:
        destination = progress.first_incomplete
    else:
        try:
            submit_web_response(
                connection,
                layout=layout,
                campaign_id=link.campaign_id,
                unit_id=link.unit_id,
                source=link.web_source,
                customer_group=link.customer_group,
                invitation_id=link.id,
                answers=draft,
                version=link.version,
            )
        except DuplicateSubmission:
            raise InvitationUnavailable(410, "used") from None
        return progress.total + 1
    values = {"p_id": link.id, "p_draft": draft, "p_page": destination, "p_saved_at": utcnow()}
    if link.version is None:
        connection.execute(_SAVE_DRAFT, values)
    elif connection.execute(_SAVE_DRAFT_IF_UNCHANGED, {
        **values, "p_version": link.version, "p_questionnaire_id": link.questionnaire_id,
        "p_web_source": link.web_source,
    }).rowcount != 1:
        connection.rollback()
        raise LinkChanged()
    connection.commit()
    return destination


def answered_invitation(token: str) -> Invitation | None:
    """The invitation of a link whose answers were sent; None while it is still open to answer.

    Raises InvitationUnavailable when the link is unknown, or expired or closed before it was answered.
    """
    invitation = load_invitation(token)
    if invitation is not None and invitation.used_at is not None:
        return invitation
    check_open(invitation)
    return None
