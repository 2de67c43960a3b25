"""Helpers for the auditor workspace tests: the world of three units, logging in, payloads, state snapshots."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from survey.extensions import db
from survey.models import Assignment, AssignmentStatus, AuditEvent, Campaign, Response, Unit, User
from tests.helpers import PASSWORD, csrf_from, login  # noqa: F401



def meta_csrf(html: str) -> str:
    """The CSRF token the page gives its scripts."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "no csrf-token meta tag in the page"
    return match.group(1)


@dataclass
class World:
    """Campaign with units A, B, C; A scores B, B scores C, C scores A; one auditor per unit A and B."""

    campaign: Campaign
    a: Unit
    b: Unit
    c: Unit
    a_scores_b: Assignment
    b_scores_c: Assignment
    c_scores_a: Assignment
    auditor_a: User
    auditor_b: User
    hq: User
    manager_a: User

    @property
    def item_codes(self) -> list[str]:
        return [item.code for item in self.campaign.questionnaire.items]


def answers(world: World, value: int | None = 7, **overrides: int | None) -> dict[str, int | None]:
    """An answer for every item (``value``), with some items overridden."""
    chosen: dict[str, int | None] = {code: value for code in world.item_codes}
    chosen.update(overrides)
    return chosen


def interview(world: World, respondent: str = "PA01HH0000001", group: str = "household", **answer_values: Any) -> dict:
    """A JSON interview with a fresh device UUID."""
    return {
        "interview_id": str(uuid.uuid4()),
        "customer_group": group,
        "respondent_id": respondent,
        "answers": answers(world, **answer_values),
    }


def form_fields(world: World, payload: dict, csrf: str) -> dict[str, str]:
    """The same interview as the HTML form posts it ("na" for not applicable)."""
    fields = {
        "csrf_token": csrf,
        "interview_id": payload["interview_id"],
        "customer_group": payload["customer_group"],
        "respondent_id": payload["respondent_id"],
    }
    for code, value in payload["answers"].items():
        fields[code] = "na" if value is None else str(value)
    return fields


def state() -> dict[str, Any]:
    """Everything a refused request must leave untouched: rows, answers, statuses and the audit trail."""
    db.session.expire_all()
    responses = db.session.execute(
        sa.select(Response.id, Response.assignment_id, Response.unit_id, Response.answers, Response.review_state)
        .order_by(Response.id)
    ).all()
    assignments = db.session.execute(
        sa.select(Assignment.id, Assignment.status, Assignment.submitted_at).order_by(Assignment.id)
    ).all()
    events = db.session.execute(sa.select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id)).all()
    return {
        "responses": [tuple(row) for row in responses],
        "assignments": [tuple(row) for row in assignments],
        "events": [tuple(row) for row in events],
    }


def submit_directly(assignment: Assignment) -> None:
    """Mark an assignment submitted without going through the web (test set-up)."""
    from survey.models import utcnow

    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = utcnow()
    db.session.commit()
