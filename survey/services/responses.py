"""Storing one respondent's answers: validation, the respondent index, idempotency."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

import scoring

from ..extensions import db
from ..models import (
    Assignment,
    Campaign,
    Channel,
    CustomerGroup,
    Invitation,
    Questionnaire,
    Response,
    Source,
    Unit,
    User,
    utcnow,
)
from ..questionnaire import layout_of, structure_of
from . import audit


class AnswerError(ValueError):
    """Answers that do not fit the questionnaire; ``errors`` maps item code to the reason."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{code}: {why}" for code, why in errors.items()))
        self.errors = errors


class DuplicateSubmission(Exception):
    """The same submission (invitation or idempotency key) was already stored."""

    def __init__(self, existing: Response | None):
        super().__init__("already stored")
        self.existing = existing


def pseudonymise(respondent_id: str) -> str:
    """Keyed hash of a respondent identifier, so stored ids do not reveal customers."""
    key = current_app.config["PSEUDONYM_KEY"].encode("utf-8")
    return hmac.new(key, respondent_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def clean_answers(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> dict[str, int | None]:
    """Check answers against the questionnaire: every item present, each a whole number on the scale or None."""
    errors: dict[str, str] = {}
    cleaned: dict[str, int | None] = {}
    items = [item for dimension in layout_of(questionnaire).dimensions for item in dimension.items]
    known = {item.code for item in items}
    for code in answers:
        if code not in known:
            errors[str(code)[:60]] = "not an item of this questionnaire"
    for item in items:
        value = answers.get(item.code)
        if value is None or value == "":
            cleaned[item.code] = None
            continue
        if isinstance(value, bool):
            errors[item.code] = "not a number"
            continue
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                errors[item.code] = f"'{value[:20]}' is not a whole number"
                continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            errors[item.code] = "not a whole number"
        elif not questionnaire.scale_min <= value <= questionnaire.scale_max:
            errors[item.code] = f"{value} is outside {questionnaire.scale_min}–{questionnaire.scale_max}"
        else:
            cleaned[item.code] = value
    if errors:
        raise AnswerError(errors)
    return cleaned


@dataclass(frozen=True)
class Indexed:
    index: float | None
    answered_dimensions: int
    #: Dimension scores in questionnaire order, NaN where no item is answered.
    dimension_scores: tuple[float, ...] = ()


def index_answers(questionnaire: Questionnaire, answers: Mapping[str, int | None]) -> Indexed:
    """The respondent index by DESIGN.md's rules (None when fewer than half the dimensions are answered)."""
    scored = scoring.score_respondent(answers, structure_of(questionnaire))
    return Indexed(scored.index, scored.answered_dimensions, scored.dimension_scores)


def submit_response(
    *,
    campaign: Campaign,
    unit: Unit,
    source: Source,
    channel: Channel,
    customer_group: CustomerGroup,
    respondent_id: str,
    answers: Mapping[str, Any],
    idempotency_key: str | None = None,
    invitation: Invitation | None = None,
    rater_unit: Unit | None = None,
    assignment: Assignment | None = None,
    user: User | None = None,
    actor: str | None = None,
) -> Response:
    """Validate, index and store one response, with its audit event, in one transaction.

    Raises AnswerError for bad answers and DuplicateSubmission when the invitation was already
    used or the idempotency key already stored; in both cases nothing is written.
    """
    questionnaire = campaign.questionnaire
    cleaned = clean_answers(questionnaire, answers)
    indexed = index_answers(questionnaire, cleaned)
    response = Response(
        campaign_id=campaign.id,
        unit_id=unit.id,
        source=source,
        channel=channel,
        customer_group=customer_group,
        respondent_id=pseudonymise(respondent_id),
        questionnaire_version=questionnaire.version,
        answers=cleaned,
        respondent_index=indexed.index,
        answered_dimensions=indexed.answered_dimensions,
        idempotency_key=idempotency_key,
        invitation_id=invitation.id if invitation is not None else None,
        rater_unit_id=rater_unit.id if rater_unit is not None else None,
        assignment_id=assignment.id if assignment is not None else None,
        created_by_id=user.id if user is not None else None,
    )
    response.set_dimension_scores(indexed.dimension_scores)
    # No savepoint: on any failure below the whole transaction is rolled back anyway.
    try:
        db.session.add(response)
        if invitation is not None:
            # The conditional update and the unique invitation_id make the link single-use, even under races.
            used = db.session.execute(
                sa.update(Invitation)
                .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
                .values(used_at=utcnow(), draft_answers=None)
                .execution_options(synchronize_session=False)
            )
            if used.rowcount != 1:
                raise DuplicateSubmission(None)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise DuplicateSubmission(_existing(campaign, idempotency_key, invitation)) from None
    except DuplicateSubmission:
        db.session.rollback()
        raise
    audit.record(
        "create",
        "response",
        response.id,
        after=response_snapshot(response),
        user=user,
        actor=actor,
    )
    db.session.commit()
    return response


def _existing(campaign: Campaign, idempotency_key: str | None, invitation: Invitation | None) -> Response | None:
    condition = []
    if idempotency_key is not None:
        condition.append(sa.and_(Response.campaign_id == campaign.id, Response.idempotency_key == idempotency_key))
    if invitation is not None:
        condition.append(Response.invitation_id == invitation.id)
    if not condition:
        return None
    return db.session.scalar(sa.select(Response).where(sa.or_(*condition)).limit(1))


def response_snapshot(response: Response) -> dict[str, Any]:
    """The fields of a response that the audit trail records before and after a change."""
    return {
        "campaign_id": response.campaign_id,
        "unit_id": response.unit_id,
        "rater_unit_id": response.rater_unit_id,
        "assignment_id": response.assignment_id,
        "source": str(response.source),
        "channel": str(response.channel),
        "customer_group": str(response.customer_group),
        "respondent_id": response.respondent_id,
        "answers": dict(response.answers),
        "respondent_index": response.respondent_index,
        "review_state": str(response.review_state),
        "review_comment": response.review_comment,
    }
