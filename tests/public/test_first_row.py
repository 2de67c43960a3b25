"""`first_row`: the survey POSTs' statements sent through the driver's cursor give what Core gives."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from survey.extensions import db, first_row
from survey.models import CampaignStatus, CustomerGroup, Invitation, Source, Unit
from survey.services.invitations import _OPEN_LINK, hash_token

_invitation = Invitation.__table__
_unit = Unit.__table__


def test_the_open_link_row_matches_core(make_campaign, make_invitation):
    invitation, token = make_invitation(make_campaign())
    invitation.draft_answers = {"q01": 7, "q02": None}
    invitation.draft_page = 2
    db.session.commit()
    parameters = {"token_hash": hash_token(token)}
    with db.engine.connect() as connection:
        core = connection.execute(_OPEN_LINK, parameters).first()
        connection.rollback()
        row = first_row(connection, _OPEN_LINK, parameters)
        connection.rollback()
    assert row is not None and core is not None
    assert row._fields == tuple(core._fields)
    assert tuple(row) == tuple(core)
    assert [type(value) for value in row] == [type(value) for value in core]
    assert (row.customer_group, row.status, row.web_source) == (
        CustomerGroup.HOUSEHOLD, CampaignStatus.OPEN, Source.CONSULTANT)
    assert row.draft_answers == {"q01": 7, "q02": None}
    with db.engine.connect() as connection:
        assert first_row(connection, _OPEN_LINK, {"token_hash": hash_token("no such token")}) is None


def test_parameters_are_processed_as_core_processes_them(app):
    """Enum to its value, JSON None to JSON null (not SQL NULL), literal values bound by the statement."""
    statement = sa.select(
        sa.cast(sa.bindparam("group", type_=_invitation.c.customer_group.type), sa.String).label("group"),
        sa.cast(sa.bindparam("draft", type_=_invitation.c.draft_answers.type), sa.Text).label("draft"),
        sa.cast(sa.bindparam("none", type_=_invitation.c.draft_answers.type), sa.Text).label("none"),
        (sa.literal(40) + sa.bindparam("two", type_=sa.Integer)).label("sum"),
    )
    parameters = {"group": CustomerGroup.BUSINESS, "draft": {"q01": 3}, "none": None, "two": 2}
    with db.engine.connect() as connection:
        row = first_row(connection, statement, parameters)
        core = connection.execute(statement, parameters).first()
    assert tuple(row) == tuple(core)
    assert row.group == "business"
    assert row.none == "null"
    assert row.sum == 42


def _insert_unit(code: str) -> sa.Select:
    """A SELECT that writes (as the web submission does): PostgreSQL only, SQLite has no INSERT in a WITH."""
    added = sa.insert(_unit).values(code=code, name_vi="Tỉnh", name_en="Province").returning(_unit.c.id).cte("added")
    return sa.select(added.c.id)


def test_the_statement_joins_the_connection_transaction(backend):
    if backend != "postgresql":
        pytest.skip("a data-modifying WITH needs PostgreSQL (set TEST_DATABASE_URL)")
    with db.engine.connect() as connection:
        assert first_row(connection, _insert_unit("kept"), {}) is not None
        connection.commit()
        first_row(connection, _insert_unit("undone"), {})
        connection.rollback()
    assert db.session.scalars(sa.select(Unit.code)).all() == ["kept"]


def test_a_constraint_violation_is_sqlalchemys_integrity_error(backend):
    if backend != "postgresql":
        pytest.skip("a data-modifying WITH needs PostgreSQL (set TEST_DATABASE_URL)")
    with db.engine.connect() as connection:
        first_row(connection, _insert_unit("twice"), {})
        try:
            first_row(connection, _insert_unit("twice"), {})
        except IntegrityError:
            connection.rollback()
        else:
            raise AssertionError("a duplicate unit code was stored")
    assert db.session.scalars(sa.select(Unit.code)).all() == []
