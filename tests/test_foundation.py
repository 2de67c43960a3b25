"""The application factory, configuration layers and schema."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from survey import create_app
from survey.extensions import db
from survey.models import for_dialect


def test_factory_uses_test_config(app):
    assert app.config["TESTING"] is True
    assert app.config["SECRET_KEY"] == "test-secret"


def test_production_refuses_default_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("SURVEY_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_database_url_from_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example/survey")
    app = create_app({"SECRET_KEY": "x", "PSEUDONYM_KEY": "y"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://someone@db.example/survey"


def test_migrations_match_models(app):
    """The migrated schema has every table of the models, and nothing is left to autogenerate."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_object": for_dialect(connection.dialect.name)})
        assert compare_metadata(context, db.metadata) == []
        tables = set(sa.inspect(connection).get_table_names())
    assert {"unit", "campaign", "response", "invitation", "assignment", "audit_event"} <= tables


def test_security_headers_on_every_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
