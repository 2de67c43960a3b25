"""Fixtures for the auditor workspace tests."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from audit_helpers import PASSWORD, World

from survey.extensions import db
from survey.models import Assignment, Role, Unit, User


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One scrypt hash of the test password, shared: hashing it for every account would dominate the run."""
    from survey.services.users import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def world(make_campaign: Any, password_hash: str) -> World:
    def make_user(email: str, role: Role, unit: Unit | None = None) -> User:
        user = User(email=email, password_hash=password_hash, role=role, unit=unit)
        db.session.add(user)
        db.session.commit()
        return user

    campaign = make_campaign(code="cross-2017", units=3)
    a, b, c = db.session.scalars(sa.select(Unit).order_by(Unit.id)).all()
    pairs = [Assignment(campaign=campaign, rater_unit=r, ratee_unit=e, quota=3) for r, e in ((a, b), (b, c), (c, a))]
    db.session.add_all(pairs)
    db.session.commit()
    return World(
        campaign=campaign,
        a=a,
        b=b,
        c=c,
        a_scores_b=pairs[0],
        b_scores_c=pairs[1],
        c_scores_a=pairs[2],
        auditor_a=make_user("auditor.a@evnnpc.vn", Role.AUDITOR, a),
        auditor_b=make_user("auditor.b@evnnpc.vn", Role.AUDITOR, b),
        hq=make_user("hq@evnnpc.vn", Role.HQ),
        manager_a=make_user("manager.a@evnnpc.vn", Role.MANAGER, a),
    )
