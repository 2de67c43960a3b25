"""Flask extensions, created unbound and initialised by the application factory."""

from __future__ import annotations

from typing import Any

from flask import request, session
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints stably."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def select_locale() -> str:
    """Vietnamese unless the visitor chose English (?lang=en, remembered in the session)."""
    choice = request.args.get("lang")
    if choice in ("vi", "en"):
        session["lang"] = choice
        return choice
    return session.get("lang", "vi")


babel = Babel()

#: Pragmas for a SQLite database file, set on every new connection. WAL lets readers (a report,
#: an export) run while an import writes, and with synchronous=NORMAL a commit no longer waits for
#: two fsyncs; a 128 MiB page cache holds the response table's indexes during a million-row
#: import, which otherwise rewrites the same pages from disk again and again (measured: twice as
#: fast, bench/RESULTS.md, "Data paths"). The cache is an upper bound, filled only as pages are read.
#: Temporary tables and sorts stay on disk (no temp_store=MEMORY): a sort of a million rows would
#: otherwise sit in the worker's memory.
SQLITE_FILE_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -131072",
)


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_FILE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def tune_engine(engine: Engine) -> None:
    """Set the SQLite pragmas on each new connection of a file database (in-memory ones have no journal)."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:") or database.startswith("file::memory:"):
        return
    if not event.contains(engine, "connect", _set_sqlite_pragmas):
        event.listen(engine, "connect", _set_sqlite_pragmas)
