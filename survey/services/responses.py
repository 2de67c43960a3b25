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

from ..extensions import db, first_row
from ..models import (
    DIMENSION_COLUMNS,
    Assignment,
    AuditEvent,
    Campaign,
    Channel,
    CustomerGroup,
    Invitation,
    Questionnaire,
    Response,
    ReviewState,
    Source,
    Unit,
    User,
    dimension_values,
    utcnow,
)
from ..questionnaire import QuestionnaireLayout, layout_of, structure_of
from . import audit
from .invitations import CAMPAIGN_AS_READ, ROW_VERSION, LinkChanged


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
    return clean_for_layout(layout_of(questionnaire), answers)


def clean_for_layout(layout: QuestionnaireLayout, answers: Mapping[str, Any]) -> dict[str, int | None]:
    """`clean_answers` for a questionnaire's layout (no database access)."""
    errors: dict[str, str] = {}
    cleaned: dict[str, int | None] = {}
    known = set(layout.item_codes)
    low, high = layout.scale_min, layout.scale_max
    for code in answers:
        if code not in known:
            errors[str(code)[:60]] = "not an item of this questionnaire"
    for code in layout.item_codes:
        value = answers.get(code)
        if type(value) is int and low <= value <= high:  # the common case, decided without the checks below
            cleaned[code] = value
            continue
        if value is None or value == "":
            cleaned[code] = None
            continue
        if isinstance(value, bool):
            errors[code] = "not a number"
            continue
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                errors[code] = f"'{value[:20]}' is not a whole number"
                continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            errors[code] = "not a whole number"
        elif not low <= value <= high:
            errors[code] = f"{value} is outside {low}–{high}"
        else:
            cleaned[code] = value
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


# --- A customer's web submission, in Core statements ------------------------------------------

_response = Response.__table__
_invitation = Invitation.__table__
#: What a web submission writes into a response row besides its invitation.
_WEB_COLUMNS = (
    "campaign_id", "unit_id", "source", "channel", "customer_group", "respondent_id", "questionnaire_version",
    "answers", "respondent_index", "answered_dimensions", *DIMENSION_COLUMNS, "idempotency_key", "review_state",
    "created_at", "updated_at",
)


def _web_submission_postgresql(*, guarded: bool) -> sa.Select[Any]:
    """One statement for the whole submission on PostgreSQL; returns the response id, or no row.

    ``used`` marks the link used, only if it still is unused, if the audit chain has its head (so
    that a statement in autocommit never stores a response without its event) and, when
    ``guarded``, if the row still has the version read (parameter ``p_version``, see
    `invitations.ROW_VERSION`) and its campaign is still open, with the questionnaire and web source
    read (`invitations.CAMPAIGN_AS_READ`); ``stored`` inserts the response only then; ``head`` moves the audit
    chain's head (locking it) to the hash of the new event, computed by the server from the event's
    canonical text (`event_text`), the response id and the previous head; ``event`` inserts that
    event. When the link was used or changed meanwhile, or the head row is missing, ``used`` is
    empty and so is everything after it: nothing is written.
    """
    head_table = audit.chain_head
    events = AuditEvent.__table__
    conditions = [audit.HEAD_EXISTS]
    if guarded:
        conditions += [ROW_VERSION == sa.bindparam("p_version", type_=sa.Text), CAMPAIGN_AS_READ]
    used = _MARK_USED.where(*conditions).returning(_invitation.c.id).cte("used")
    stored = (
        sa.insert(_response)
        .from_select(
            [*_WEB_COLUMNS, "invitation_id"],
            # Typed: a NULL parameter in a SELECT list would otherwise be text, which no float column takes.
            sa.select(*[_typed(f"p_{name}", _response.c[name].type) for name in _WEB_COLUMNS], used.c.id),
        )
        .returning(_response.c.id)
        .cte("stored")
    )
    prefix = sa.bindparam("p_event_text", type_=sa.Text)
    # A plain UPDATE (cacheable, unlike ON CONFLICT): it waits for the row's lock and computes the
    # new values from the version the previous holder committed.
    head = (
        sa.update(head_table)
        .where(head_table.c.id == audit.HEAD_ID, sa.exists(sa.select(stored.c.id)))
        .values(
            prev_hash=head_table.c.hash,
            hash=audit.text_digest(prefix, sa.select(stored.c.id).scalar_subquery(), head_table.c.hash),
        )
        .returning(head_table.c.prev_hash, head_table.c.hash)
        .cte("head")
    )
    event_columns = ("at", "actor_id", "actor", "action", "entity")
    snapshot_columns = ("before", "after")
    event = (
        sa.insert(events)
        .from_select(
            [*event_columns, *snapshot_columns, "entity_id", "prev_hash", "hash"],
            sa.select(
                *[_typed(f"e_{name}", events.c[name].type) for name in event_columns],
                # The snapshots as `audit.event_text` wrote them (canonical JSON text), parsed by the server.
                *[sa.cast(sa.bindparam(f"e_{name}", type_=sa.Text), events.c[name].type) for name in snapshot_columns],
                sa.cast(stored.c.id, events.c.entity_id.type),
                head.c.prev_hash,
                head.c.hash,
            ).select_from(stored.join(head, sa.true())),
        )
        .returning(events.c.id)
        .cte("event")
    )
    return sa.select(stored.c.id, event.c.id.label("event_id")).select_from(stored.outerjoin(event, sa.true()))


def _typed(name: str, type_: Any) -> sa.ColumnElement[Any]:
    return sa.cast(sa.bindparam(name, type_=type_), type_)


#: The link marked used (its draft dropped), only if it is still unused.
_MARK_USED = (
    sa.update(_invitation)
    .where(_invitation.c.id == sa.bindparam("p_invitation_id"), _invitation.c.used_at.is_(None))
    .values(used_at=sa.bindparam("p_used_at", type_=_invitation.c.used_at.type),
            draft_answers=sa.bindparam("p_no_draft", type_=_invitation.c.draft_answers.type))
)
_WEB_SUBMISSION_POSTGRESQL = _web_submission_postgresql(guarded=False)
_WEB_SUBMISSION_IF_UNCHANGED = _web_submission_postgresql(guarded=True)
_HEAD_EXISTS = sa.select(audit.HEAD_EXISTS)
_INSERT_RESPONSE = sa.insert(_response).returning(_response.c.id)


def submit_web_response(
    connection: sa.Connection,
    *,
    layout: QuestionnaireLayout,
    campaign_id: int,
    unit_id: int,
    source: Source,
    customer_group: CustomerGroup,
    invitation_id: int,
    answers: Mapping[str, Any],
    version: str | None = None,
) -> int:
    """Store a customer's answers to an invitation, use up the link and record the audit event; commit.

    What `submit_response` does for a web invitation, in one statement on PostgreSQL (the link's
    conditional update, the response, the audit chain's head and event) instead of ORM objects
    and flushes; Core statements on SQLite. Raises AnswerError for bad answers and
    DuplicateSubmission when the link was used meanwhile; in both cases nothing is written.
    With ``version`` (PostgreSQL, a link read by `read_open_link` or carried by its page, possibly
    in autocommit) the statement stores nothing unless the invitation row still has that version
    and its campaign is still open with the questionnaire of ``layout`` and ``source`` as its web
    source; it raises LinkChanged when it did not store (the link was used or changed, or its
    campaign closed: the caller reads it again).
    Returns the response id. ``connection`` is not the ORM session's: it is committed or rolled back here.
    """
    cleaned = clean_for_layout(layout, answers)
    scored = scoring.score_respondent(cleaned, layout.structure)
    now = utcnow()
    respondent_id = pseudonymise(f"invitation-{invitation_id}")
    row: dict[str, Any] = {
        "campaign_id": campaign_id,
        "unit_id": unit_id,
        "source": source,
        "channel": Channel.WEB,
        "customer_group": customer_group,
        "respondent_id": respondent_id,
        "questionnaire_version": layout.version,
        "answers": cleaned,
        "respondent_index": scored.index,
        "answered_dimensions": scored.answered_dimensions,
        **dict(zip(DIMENSION_COLUMNS, dimension_values(scored.dimension_scores), strict=True)),
        "idempotency_key": f"invitation-{invitation_id}",
        "review_state": ReviewState.RECEIVED,
        "created_at": now,
        "updated_at": now,
    }
    snapshot = snapshot_of(row)
    marking = {"p_invitation_id": invitation_id, "p_used_at": now, "p_no_draft": None}
    try:
        if connection.dialect.name == "postgresql":
            event, prefix = audit.event_text("create", "response", after=snapshot, actor="customer", at=now)
            parameters = {
                **marking,
                **{f"p_{name}": value for name, value in row.items()},
                **{f"e_{name}": value for name, value in event.items()},
                "p_event_text": prefix,
            }
            statement = _WEB_SUBMISSION_POSTGRESQL
            if version is not None:
                statement = _WEB_SUBMISSION_IF_UNCHANGED
                parameters.update(p_version=version, p_questionnaire_id=layout.id, p_web_source=source)
            stored = first_row(connection, statement, parameters)
            if stored is None and not connection.execute(_HEAD_EXISTS).scalar():
                # No chain head (a fresh or emptied database), so nothing was written: create it and
                # send again. The link's conditional update and unique invitation_id keep it single-use.
                connection.rollback()
                audit.ensure_chain_head(connection)
                stored = first_row(connection, statement, parameters)
            if stored is None:
                raise LinkChanged() if version is not None else DuplicateSubmission(None)
            if stored.event_id is None:  # the head row was deleted while the statement ran
                connection.rollback()
                raise RuntimeError("the audit chain's head row disappeared during a web submission")
            response_id = stored.id
        else:
            if connection.execute(_MARK_USED, marking).rowcount != 1:
                raise DuplicateSubmission(None)
            response_id = connection.execute(_INSERT_RESPONSE, {**row, "invitation_id": invitation_id}).scalar_one()
            audit.append("create", "response", response_id, after=snapshot, actor="customer", connection=connection)
    except IntegrityError:
        connection.rollback()
        raise DuplicateSubmission(None) from None
    except (DuplicateSubmission, LinkChanged):
        connection.rollback()
        raise
    connection.commit()
    return int(response_id)


def _existing(campaign: Campaign, idempotency_key: str | None, invitation: Invitation | None) -> Response | None:
    condition = []
    if idempotency_key is not None:
        condition.append(sa.and_(Response.campaign_id == campaign.id, Response.idempotency_key == idempotency_key))
    if invitation is not None:
        condition.append(Response.invitation_id == invitation.id)
    if not condition:
        return None
    return db.session.scalar(sa.select(Response).where(sa.or_(*condition)).limit(1))


#: The fields of a response that the audit trail records before and after a change.
SNAPSHOT_FIELDS = (
    "campaign_id", "unit_id", "rater_unit_id", "assignment_id", "source", "channel", "customer_group",
    "respondent_id", "answers", "respondent_index", "review_state", "review_comment",
)  # fmt: skip
_SNAPSHOT_TEXT = frozenset({"source", "channel", "customer_group", "review_state"})


def snapshot_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """The audit snapshot of a response given as column values (a field missing from ``values`` is None)."""
    snapshot = {name: values.get(name) for name in SNAPSHOT_FIELDS}
    for name in _SNAPSHOT_TEXT:
        snapshot[name] = str(snapshot[name])
    snapshot["answers"] = dict(snapshot["answers"])
    return snapshot


def response_snapshot(response: Response) -> dict[str, Any]:
    """The fields of a response that the audit trail records before and after a change."""
    return snapshot_of({name: getattr(response, name) for name in SNAPSHOT_FIELDS})
