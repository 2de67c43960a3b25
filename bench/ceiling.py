"""The ceiling: a bare Flask endpoint that stores one response-sized JSON row per POST.

It runs on the same stack as the survey (gunicorn with deploy/gunicorn.conf.py, Flask,
SQLAlchemy, psycopg, the same PostgreSQL) and does the least a survey submission must do:
read a form of 20 answers, insert them as one JSONB row, commit, answer. What the survey does
beyond that (CSRF, session, the invitation lock, the respondent index, the audit chain,
the redirect) is what the ratio between the two measures.

Served by `gunicorn bench.ceiling:app` with CEILING_DATABASE_URL set.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, request
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()
#: Like the response table where it matters: a JSONB document, a foreign-key-sized integer, a timestamp.
ceiling_row = sa.Table(
    "bench_ceiling",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("unit_id", sa.Integer, nullable=False),
    sa.Column("answers", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def database_url() -> str:
    url = os.environ["CEILING_DATABASE_URL"]
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def create_table(url: str) -> None:
    """Create the ceiling's table (the benchmark calls this before starting the server)."""
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def create_ceiling_app() -> Flask:
    """The one-endpoint app."""
    app = Flask(__name__)
    engine = sa.create_engine(database_url(), pool_pre_ping=True)

    @app.post("/insert")
    def insert() -> tuple[str, int]:
        """Store the posted answers as one row."""
        answers = {key: (None if value == "na" else int(value)) for key, value in request.form.items()
                   if key not in ("csrf_token", "_action")}
        with engine.begin() as connection:
            new_id = connection.execute(
                ceiling_row.insert().values(unit_id=1, answers=answers).returning(ceiling_row.c.id)
            ).scalar_one()
        return str(new_id), 201

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    return app


app = create_ceiling_app() if "CEILING_DATABASE_URL" in os.environ else None
