"""Cross-scoring interviews: what auditors enter for the customers they interview.

One validation path serves the HTML form, the offline queue's JSON and the edit form, so a
rule applies the same way whichever way an interview arrives. The device's interview UUID is
the response's ``idempotency_key``: sending the same interview again returns the stored one.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignStatus,
    Channel,
    CustomerGroup,
    Questionnaire,
    Response,
    ReviewState,
    Source,
    User,
)
from . import audit, imports
from .i18n import translate as _
from .responses import (
    AnswerError,
    DuplicateSubmission,
    clean_answers,
    index_answers,
    response_snapshot,
    submit_response,
)

#: Fields of one interview besides the answers.
INTERVIEW_FIELDS = ("interview_id", "customer_group", "respondent_id")
#: A customer's account number as printed on the bill: letters, digits and a few separators.
RESPONDENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,39}$")
#: What the offline form sends for "not applicable"; stored as null like a blank answer.
NOT_APPLICABLE = "na"
#: Columns of the paper-interview CSV before the item columns (DESIGN.md's cross import plus the UUID).
TEMPLATE_COLUMNS = ("rater_unit", "ratee_unit", "respondent_id", "customer_group", "interview_id")



class InterviewError(ValueError):
    """Interview data that cannot be stored; ``errors`` maps a field or item code to what to do."""

    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{field}: {why}" for field, why in errors.items()))
        self.errors = errors
        #: The HTTP status that fits: 422 bad data, 409 conflicts with what is stored or with the assignment's state.
        self.status = status


@dataclass(frozen=True)
class AssignmentProgress:
    """An assignment with the number of interviews that count towards its quota."""

    assignment: Assignment
    interviews: int

    @property
    def percent(self) -> int:
        quota = self.assignment.quota
        if quota <= 0:
            return 100
        return min(100, round(100 * self.interviews / quota))


@dataclass(frozen=True)
class InterviewInput:
    """One interview, validated and normalised."""

    interview_id: str
    customer_group: CustomerGroup
    respondent_id: str
    answers: dict[str, int | None]


def counts_towards_quota() -> sa.ColumnElement[bool]:
    """Interviews HQ rejected do not count towards an assignment's quota."""
    return Response.review_state != ReviewState.REJECTED


def unit_assignments(unit_id: int) -> list[AssignmentProgress]:
    """The assignments a unit audits, newest campaign first, with interview counts from one GROUP BY."""
    counts = (
        sa.select(Response.assignment_id, sa.func.count(Response.id).label("n"))
        .where(Response.assignment_id.is_not(None), counts_towards_quota())
        .group_by(Response.assignment_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(Assignment, sa.func.coalesce(counts.c.n, 0))
        .join(Campaign, Campaign.id == Assignment.campaign_id)
        .outerjoin(counts, counts.c.assignment_id == Assignment.id)
        .where(Assignment.rater_unit_id == unit_id)
        .options(joinedload(Assignment.ratee_unit), joinedload(Assignment.campaign))
        .order_by(Campaign.created_at.desc(), Campaign.id.desc(), Assignment.due_on, Assignment.id)
    ).all()
    return [AssignmentProgress(assignment, int(n)) for assignment, n in rows]


def assignment_progress(assignment: Assignment) -> AssignmentProgress:
    """One assignment with its interview count (counted in SQL)."""
    n = db.session.scalar(
        sa.select(sa.func.count(Response.id)).where(Response.assignment_id == assignment.id, counts_towards_quota())
    )
    return AssignmentProgress(assignment, int(n or 0))


def assignment_interviews(assignment: Assignment, limit: int = 1000) -> list[Response]:
    """The interviews stored for an assignment, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Response)
            .where(Response.assignment_id == assignment.id)
            .order_by(Response.created_at, Response.id)
            .limit(limit)
        )
    )


def assignment_interview(assignment: Assignment, response_id: int) -> Response | None:
    """An interview of this assignment, or None (also when the id belongs to another assignment)."""
    return db.session.scalar(
        sa.select(Response).where(Response.id == response_id, Response.assignment_id == assignment.id)
    )


def stored_interview(assignment: Assignment, interview_id: Any) -> Response | None:
    """The interview already stored under this device UUID for this assignment, if any."""
    key = _uuid_or_none(interview_id)
    if key is None:
        return None
    return db.session.scalar(
        sa.select(Response).where(
            Response.campaign_id == assignment.campaign_id,
            Response.idempotency_key == key,
            Response.assignment_id == assignment.id,
        )
    )


def new_interview_id() -> str:
    """A fresh interview UUID, for pages rendered without JavaScript."""
    return str(uuid.uuid4())


def _uuid_or_none(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def _answer_errors(questionnaire: Questionnaire, error: AnswerError) -> dict[str, str]:
    known = {item.code for item in questionnaire.items}
    choose = _(
        "This answer is not on the scale. Choose a number from %(low)d to %(high)d, or “Not applicable”.",
        low=questionnaire.scale_min,
        high=questionnaire.scale_max,
    )
    unknown = _("This is not a question of this survey. Reload the page and enter the interview again.")
    return {code: (choose if code in known else unknown) for code in error.errors}


def _answers(questionnaire: Questionnaire, answers: Any) -> dict[str, int | None]:
    if not isinstance(answers, Mapping):
        raise InterviewError({"answers": _("The answers are missing. Reload the page and try again.")})
    # The radio button "not applicable" and a blank both mean no score.
    raw = {str(code): (None if value == NOT_APPLICABLE else value) for code, value in answers.items()}
    errors: dict[str, str] = {}
    try:
        cleaned = clean_answers(questionnaire, raw)
    except AnswerError as exc:
        errors = _answer_errors(questionnaire, exc)
    # As in the customer survey, every item needs a choice: a score or "not applicable".
    for item in questionnaire.items:
        if item.code not in raw and item.code not in errors:
            errors[item.code] = _(
                "Choose an answer: a number from %(low)d to %(high)d, or “Not applicable”.",
                low=questionnaire.scale_min,
                high=questionnaire.scale_max,
            )
    if errors:
        raise InterviewError(errors)
    return cleaned


def _customer_group(value: Any) -> CustomerGroup | None:
    try:
        return CustomerGroup(value)
    except ValueError:
        return None


def parse_interview(questionnaire: Questionnaire, submission: Mapping[str, Any]) -> InterviewInput:
    """Validate one interview (``interview_id``, ``customer_group``, ``respondent_id``, ``answers``)."""
    errors: dict[str, str] = {}
    for field in sorted(set(submission) - {*INTERVIEW_FIELDS, "answers"}):
        errors[str(field)[:60]] = _("This field is not part of an interview. Reload the page and try again.")
    interview_id = _uuid_or_none(submission.get("interview_id"))
    if interview_id is None:
        errors["interview_id"] = _("The interview has no valid identifier. Reload the page and enter it again.")
    group = _customer_group(submission.get("customer_group"))
    if group is None:
        errors["customer_group"] = _("Choose the customer group: household or business.")
    respondent = submission.get("respondent_id")
    respondent = respondent.strip() if isinstance(respondent, str) else ""
    if not respondent:
        errors["respondent_id"] = _("Enter the customer's account number (as printed on the bill).")
    elif not RESPONDENT_ID_PATTERN.match(respondent):
        errors["respondent_id"] = _(
            "Use at most 40 letters, digits, spaces or the signs . _ / - for the account number."
        )
    try:
        answers = _answers(questionnaire, submission.get("answers"))
    except InterviewError as exc:
        errors.update(exc.errors)
        answers = {}
    if errors:
        raise InterviewError(errors)
    assert interview_id is not None and group is not None
    return InterviewInput(interview_id, group, respondent, answers)


def _lock_open_assignment(assignment: Assignment, user: User) -> Assignment:
    """Re-read the assignment under a row lock and check the work may still change.

    The lock orders this change against a concurrent submit, so no interview lands in a
    submitted assignment.
    """
    locked = db.session.scalar(
        sa.select(Assignment)
        .where(Assignment.id == assignment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise InterviewError({"assignment": _("This assignment no longer exists.")}, status=404)
    # The policy already decided; checked again here because a unit must never score itself.
    if user.unit_id is None or locked.rater_unit_id != user.unit_id or locked.ratee_unit_id == user.unit_id:
        raise InterviewError({"assignment": _("Your unit does not audit this unit.")}, status=403)
    if locked.status != AssignmentStatus.OPEN:
        raise InterviewError(
            {"assignment": _("This assignment was submitted and is locked. Ask headquarters to reopen it.")},
            status=409,
        )
    if locked.campaign.status == CampaignStatus.CLOSED:
        raise InterviewError({"assignment": _("The campaign is closed; interviews can no longer be added.")}, 409)
    return locked


def record_interview(assignment: Assignment, submission: Mapping[str, Any], user: User) -> tuple[Response, bool]:
    """Store one interview of an open assignment; return (response, created).

    Sending an interview UUID that is already stored for this assignment returns the stored
    interview with ``created`` False, and writes nothing. Raises InterviewError otherwise.
    """
    campaign = assignment.campaign
    data = parse_interview(campaign.questionnaire, submission)
    existing = stored_interview(assignment, data.interview_id)
    if existing is not None:
        return existing, False
    assignment = _lock_open_assignment(assignment, user)
    # Checked again under the lock: a concurrent send of the same UUID may have committed meanwhile.
    existing = stored_interview(assignment, data.interview_id)
    if existing is not None:
        db.session.rollback()
        return existing, False
    try:
        response = submit_response(
            campaign=campaign,
            unit=assignment.ratee_unit,
            source=Source.CROSS,
            channel=Channel.INTERVIEW,
            customer_group=data.customer_group,
            respondent_id=data.respondent_id,
            answers=data.answers,
            idempotency_key=data.interview_id,
            rater_unit=assignment.rater_unit,
            assignment=assignment,
            user=user,
        )
    except DuplicateSubmission as exc:
        if exc.existing is not None and exc.existing.assignment_id == assignment.id:
            return exc.existing, False
        if exc.existing is not None:
            raise InterviewError(
                {"interview_id": _("This interview identifier is already used. Reload the page and enter it again.")},
                status=409,
            ) from None
        raise InterviewError(
            {"respondent_id": _(
                "This customer was already interviewed for this unit in this campaign. Check the account number."
            )},
            status=409,
        ) from None
    return response, True


def update_interview(
    response: Response, answers: Mapping[str, Any], user: User, *, customer_group: Any = None
) -> Response:
    """Change an interview's answers (and customer group) while its assignment is open; audited before/after.

    The respondent index is recomputed. A review already given no longer applies to the
    changed answers, so the interview goes back to "received".
    """
    if response.assignment is None or response.source != Source.CROSS:
        raise InterviewError({"interview": _("Only cross-scoring interviews can be edited here.")}, status=404)
    questionnaire = response.campaign.questionnaire
    errors: dict[str, str] = {}
    group = response.customer_group
    if customer_group is not None:
        parsed = _customer_group(customer_group)
        if parsed is None:
            errors["customer_group"] = _("Choose the customer group: household or business.")
        else:
            group = parsed
    try:
        cleaned = _answers(questionnaire, answers)
    except InterviewError as exc:
        errors.update(exc.errors)
    if errors:
        raise InterviewError(errors)
    _lock_open_assignment(response.assignment, user)
    before = response_snapshot(response)
    indexed = index_answers(questionnaire, cleaned)
    response.answers = cleaned
    response.customer_group = group
    response.respondent_index = indexed.index
    response.answered_dimensions = indexed.answered_dimensions
    response.set_dimension_scores(indexed.dimension_scores)
    after = response_snapshot(response)
    if after == before:
        db.session.rollback()
        return response
    response.review_state = ReviewState.RECEIVED
    after = response_snapshot(response)
    audit.record("update", "response", response.id, before=before, after=after, user=user)
    db.session.commit()
    return response


def template_header(campaign: Campaign) -> list[str]:
    """The header row of the paper-interview CSV: the fixed columns, then one column per item."""
    return [*TEMPLATE_COLUMNS, *(item.code for item in campaign.questionnaire.items)]


def import_paper_interviews(
    assignment: Assignment, stream: BinaryIO, *, file_name: str, user: User
) -> imports.ImportResult:
    """Import a CSV of paper interviews into this assignment only, all or nothing.

    Rows of any other pair are bad rows, listed together with every other problem the importer
    finds; then nothing is stored (ImportFileError).
    """
    # An upload is at most MAX_CONTENT_LENGTH (16 MB): a paper batch, not a bulk import.
    data = stream.read()
    marked, other_pairs = _mark_other_pairs(assignment, data)
    try:
        return imports.import_cross(
            assignment.campaign, io.BytesIO(marked), user=user, actor=user.email, file_name=file_name
        )
    except imports.ImportFileError as exc:
        if not other_pairs:
            raise
        problems = [
            imports.Problem(p.line, p.column, other_pairs[(p.line, p.column)])
            if (p.line, p.column) in other_pairs else p
            for p in exc.problems
        ]
        raise imports.ImportFileError(problems, total=exc.total, bad_rows=exc.bad_rows) from None


def _mark_other_pairs(assignment: Assignment, data: bytes) -> tuple[bytes, dict[tuple[int, str], str]]:
    """Blank the unit cell of every row of another pair, so the importer refuses the file and lists the row.

    Returns the file to import and {(line, column): reason} for those rows. The importer itself
    reads the file and finds every other problem, with the same line numbers; nothing here parses
    answers. A file that cannot be read as UTF-8 CSV is passed on unchanged for the importer to explain.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data, {}
    first_line = text.split("\n", 1)[0]
    # The importer's rule: Excel in a Vietnamese locale separates fields with ';'.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    reason = _(
        "This upload is for %(rater)s → %(ratee)s only. Upload the rows of another pair on that assignment's page.",
        rater=assignment.rater_unit.code,
        ratee=assignment.ratee_unit.code,
    )
    expected = {"rater_unit": assignment.rater_unit.code, "ratee_unit": assignment.ratee_unit.code}
    records: list[list[str]] = []
    marked: dict[tuple[int, str], str] = {}
    positions: dict[str, int] | None = None
    line = 1
    try:
        for fields in reader:
            records.append(fields)
            if not "".join(fields).strip():
                pass  # blank records are skipped by the importer too
            elif positions is None:
                names = [name.strip() for name in fields]
                if not set(expected) <= set(names):
                    return data, {}  # the importer reports the missing columns
                positions = {column: names.index(column) for column in expected}
            else:
                for column, position in positions.items():
                    if position < len(fields) and fields[position].strip().lower() != expected[column]:
                        fields[position] = ""
                        marked[(line, column)] = reason
                        break
            line = reader.line_num + 1
    except csv.Error:
        return data, {}
    if not marked:
        return data, {}
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(records)
    return out.getvalue().encode("utf-8"), marked
