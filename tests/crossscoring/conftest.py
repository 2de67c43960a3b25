"""Fixtures for the cross-scoring tests: a small campaign with assignments, staff of every role, and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import Assignment, Campaign, Channel, CustomerGroup, Response, Role, Source, Unit, User
from tests.helpers import PASSWORD, csrf_from  # noqa: F401
from tests.helpers import post_login as login  # noqa: F401  (tests check the answer themselves)



def answers_for(campaign: Campaign, value: int = 8) -> dict[str, int]:
    """A complete set of answers to the campaign's questionnaire."""
    return {item.code: value for item in campaign.questionnaire.items}


def add_cross_response(campaign: Campaign, assignment: Assignment, respondent: str, value: int = 8,
                       user: User | None = None) -> Response:
    """Store one cross interview through the real service (with its audit event)."""
    from survey.services.responses import submit_response

    return submit_response(
        campaign=campaign,
        unit=assignment.ratee_unit,
        source=Source.CROSS,
        channel=Channel.INTERVIEW,
        customer_group=CustomerGroup.HOUSEHOLD,
        respondent_id=respondent,
        answers=answers_for(campaign, value),
        idempotency_key=f"key-{respondent}",
        rater_unit=assignment.rater_unit,
        assignment=assignment,
        user=user,
    )


@dataclass
class Cross:
    campaign: Campaign
    units: list[Unit]
    assignments: list[Assignment]
    hq: User
    auditor_a: User
    auditor_b: User
    manager_a: User

    def assignment(self, rater: Unit, ratee: Unit) -> Assignment:
        return next(a for a in self.assignments if a.rater_unit_id == rater.id and a.ratee_unit_id == ratee.id)

    def of_rater(self, rater: Unit) -> list[Assignment]:
        return [a for a in self.assignments if a.rater_unit_id == rater.id]


@pytest.fixture
def cross(make_campaign: Any, make_user: Any) -> Cross:
    """Seven units, k = 2 assignments made by the service (seed 7), quota 3, and one account of each role."""
    from survey.services.assignments import create_assignments

    campaign = make_campaign(code="cross-2017", units=7)
    units = list(db.session.scalars(sa.select(Unit).order_by(Unit.code)))
    assignments = create_assignments(campaign, 2, 3, seed=7)
    a, b = units[0], units[1]
    return Cross(
        campaign=campaign,
        units=units,
        assignments=assignments,
        hq=make_user("hq@evnnpc.vn", Role.HQ),
        auditor_a=make_user("auditor.a@evnnpc.vn", Role.AUDITOR, a),
        auditor_b=make_user("auditor.b@evnnpc.vn", Role.AUDITOR, b),
        manager_a=make_user("manager.a@evnnpc.vn", Role.MANAGER, a),
    )


@pytest.fixture
def second_app(app: Any, database_url: str) -> Iterator[Callable[..., Any]]:
    """Factory: another app on the test database (its requests get their own app context and flask.g).

    Engines are disposed at the end, so no database connection is left for the garbage collector.
    """
    from survey import create_app
    from tests.conftest import base_config

    made: list[Any] = []

    def make(**config: Any) -> Any:
        other = create_app({**base_config(database_url), **config})
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
