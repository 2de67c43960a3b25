"""Shared fixtures: the app on each database backend, clients, and factories for test data.

Every database test runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL too.
The schema comes from the migrations (so they are tested), once per backend; each test
starts from empty tables.
"""

from __future__ import annotations

import contextvars
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

# Tests never touch the developer's instance/ folder.
os.environ.setdefault("SURVEY_INSTANCE_PATH", tempfile.mkdtemp(prefix="survey-instance-"))
for variable in ("DATABASE_URL", "SECRET_KEY", "PSEUDONYM_KEY", "REDIS_URL", "RATELIMIT_STORAGE_URI", "SURVEY_ENV"):
    os.environ.pop(variable, None)

from flask.testing import FlaskClient  # noqa: E402

from survey import create_app  # noqa: E402
from survey.extensions import db  # noqa: E402
from survey.models import Campaign, CustomerGroup, Role, Unit, User  # noqa: E402
from tests.helpers import csrf_from  # noqa: F401  (fixtures and tests import it from here)

BACKENDS = ("sqlite", "postgresql")
PG_HINT = "PostgreSQL tests need TEST_DATABASE_URL, e.g. postgresql://postgres@127.0.0.1:5432/test"


def base_config(url: str) -> dict[str, Any]:
    """Configuration every test app shares."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret",
        "PSEUDONYM_KEY": "test-pseudonym-key",
        "SURVEY_BASE_URL": "http://survey.test",
        "RATELIMIT_STORAGE_URI": "memory://",
    }


def postgres_url() -> str | None:
    """TEST_DATABASE_URL with the psycopg 3 driver, or None."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database with the migrated schema, one per backend."""
    if request.param == "sqlite":
        url = "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "test.sqlite")
    else:
        url = postgres_url()
        if url is None:
            pytest.skip(PG_HINT)
        # TEST_DATABASE_URL is set: an unreachable server is a failure, not a skip.
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(base_config(url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    return url


def empty_tables() -> None:
    """Delete every row, children first, so the next test starts clean."""
    db.session.remove()
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())


@contextmanager
def migrated_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database at head for a migration test to move down and up; yields the migrations directory.

    SQLite gets a file of its own; PostgreSQL is the session's database, emptied first and put back
    at head, empty, afterwards. Runs inside the new app's context.
    """
    from flask_migrate import upgrade

    shared = not database_url.startswith("sqlite")
    url = database_url if shared else "sqlite:///" + str(tmp_path / "old.sqlite")
    app = create_app(base_config(url))
    directory = app.extensions["migrate"].directory
    with app.app_context():
        db.session.remove()
        upgrade(directory=directory)
        if shared:
            empty_tables()
        try:
            yield directory
        finally:
            db.session.remove()
            upgrade(directory=directory)
            if shared:
                empty_tables()
            db.engine.dispose()


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own application context, as in a real server.

    The `app` fixture keeps an application context pushed for the whole test; Flask would reuse it
    for test-client requests, so `g` (Flask-WTF's CSRF token, Flask-Babel's locale, the database
    session) would leak from one request, and one client, to the next.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(database_url: str) -> Iterator[Any]:
    """The application on a clean database, inside an app context."""
    app = create_app(base_config(database_url))
    app.test_client_class = IsolatedClient
    with app.app_context():
        empty_tables()
        yield app
        empty_tables()
        db.engine.dispose()


@pytest.fixture
def backend(app: Any) -> str:
    """'sqlite' or 'postgresql'."""
    return db.engine.dialect.name


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def make_units(app: Any) -> Callable[..., list[Unit]]:
    """Factory: the first ``n`` of the 27 units (from survey/data/units.csv)."""
    from survey.services.units import UNITS_CSV, read_units_csv

    def make(n: int = 3) -> list[Unit]:
        rows = read_units_csv(UNITS_CSV.read_bytes())[:n]
        units = [Unit(code=r.code, name_vi=r.name_vi, name_en=r.name_en, households=r.households) for r in rows]
        db.session.add_all(units)
        db.session.commit()
        return units

    return make


@pytest.fixture
def make_campaign(app: Any, make_units: Callable[..., list[Unit]]) -> Callable[..., Campaign]:
    """Factory: a campaign on the default questionnaire, with ``units`` units."""
    from survey.questionnaire import default_questionnaire_text, parse_questionnaire, store_questionnaire

    def make(code: str = "test-2017", units: int = 3, **fields: Any) -> Campaign:
        if units:
            make_units(units)
        questionnaire = store_questionnaire(parse_questionnaire(default_questionnaire_text()))
        campaign = Campaign(
            code=code, name_vi=f"Chiến dịch {code}", name_en=f"Campaign {code}", questionnaire=questionnaire, **fields
        )
        db.session.add(campaign)
        db.session.commit()
        return campaign

    return make


@pytest.fixture
def make_invitation(app: Any) -> Callable[..., tuple[Any, str]]:
    """Factory: one invitation for a unit of a campaign; returns (invitation, token)."""
    from survey.services.invitations import issue_invitations

    def make(campaign: Campaign, unit: Unit | None = None, group: CustomerGroup = CustomerGroup.HOUSEHOLD,
             valid_days: int | None = None) -> tuple[Any, str]:
        unit = unit or db.session.scalars(sa.select(Unit).order_by(Unit.id)).first()
        issued = issue_invitations(campaign, unit, 1, group, valid_days=valid_days)[0]
        db.session.commit()
        return issued.invitation, issued.token

    return make


@pytest.fixture
def make_user(app: Any) -> Callable[..., User]:
    """Factory: a staff account with a known password (``password`` argument, default 'correct horse 42')."""
    from survey.services.users import create_user

    def make(email: str, role: Role | str = Role.HQ, unit: Unit | None = None,
             password: str = "correct horse 42") -> User:
        user = create_user(email, Role(role), unit, password)
        db.session.commit()
        return user

    return make
