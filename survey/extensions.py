"""Flask extensions, created unbound and initialised by the application factory."""

from __future__ import annotations

import os
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Connection, Dialect, Engine, MetaData, Select, event, exc
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

#: Settings that give every request limits of its own (Flask-Limiter's app-wide check applies them).
APP_WIDE_LIMITS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")


def init_limiter(app: Flask) -> None:
    """Bind the limiter; keep its app-wide before-request check only when app-wide limits are set.

    The limits this application sets are on views (`limiter.limit` on the sign-in form), and such
    a view checks its own limits when it runs. Flask-Limiter's app-wide hook exists for default,
    application and meta limits; with none set it only looks up, on every request (a survey
    page included), limits that do not exist. Its after-request hook (the X-RateLimit headers)
    and its teardown stay.
    """
    limiter.init_app(app)
    if not any(app.config.get(name) for name in APP_WIDE_LIMITS):
        check = limiter._check_request_limit  # what Limiter.init_app registers, and the limit decorator calls
        app.before_request_funcs[None] = [hook for hook in app.before_request_funcs.get(None, []) if hook != check]


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened without building its signer when the request has no session
    cookie: a customer answering the survey has none (tests/public/test_request_cost.py)."""

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class() if app.secret_key else None  # what Flask's open_session does then
        return super().open_session(app, request)


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
#: otherwise sit in the worker's memory. A new database file gets 16 KiB pages (SQLite's default
#: is 4 KiB): a million-row import takes 15 % less time (fewer pages to split, write and
#: checkpoint; bench/RESULTS.md, 28 November 2026, fourth session). The page size is fixed when
#: the file's first page is written, so it comes first; on an existing file it changes nothing
#: (docs/scaling.md says how to convert one).
SQLITE_PAGE_SIZE = 16384
SQLITE_FILE_PRAGMAS = (
    f"PRAGMA page_size = {SQLITE_PAGE_SIZE}",
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


#: The engines of this process's apps, so that a forked child can leave their connections to the parent.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _leave_connections_to_parent() -> None:
    """In a forked child (a gunicorn worker of a preloaded app): forget the pooled connections it
    inherited, without closing them (they are the parent's), so it opens its own; SQLAlchemy's
    recipe for os.fork()."""
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_leave_connections_to_parent)


def tune_engine(engine: Engine) -> None:
    """Set the SQLite pragmas on each new connection of a file database (in-memory ones have no journal),
    and have a forked child open connections of its own (see _leave_connections_to_parent)."""
    _ENGINES.add(engine)
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:") or database.startswith("file::memory:"):
        return
    if not event.contains(engine, "connect", _set_sqlite_pragmas):
        event.listen(engine, "connect", _set_sqlite_pragmas)


@dataclass(frozen=True)
class _DriverStatement:
    """A Core statement compiled for one dialect, with what SQLAlchemy would do to its values."""

    sql: str
    defaults: dict[str, Any]
    bind_processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    result_processors: tuple[Callable[[Any], Any] | None, ...]
    row: type


_driver_statements: dict[tuple[Select[Any], str], _DriverStatement] = {}


def _driver_statement(statement: Select[Any], dialect: Dialect) -> _DriverStatement:
    key = (statement, dialect.name)
    prepared = _driver_statements.get(key)
    if prepared is None:
        compiled = statement.compile(dialect=dialect)
        binds = compiled.bind_names.items()
        prepared = _DriverStatement(
            sql=compiled.string,
            defaults={name: bind.effective_value for bind, name in binds if not bind.required},
            bind_processors=tuple(
                (name, process) for bind, name in binds
                if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
            ),
            result_processors=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            ),
            row=namedtuple("Row", statement.selected_columns.keys()),  # type: ignore[misc]
        )
        _driver_statements[key] = prepared
    return prepared


def first_row(connection: Connection, statement: Select[Any], parameters: Mapping[str, Any]) -> Any | None:
    """The first row of a Core SELECT (or a CTE that writes), sent through the driver's cursor; None if none.

    Same SQL, parameters and values as ``connection.execute(statement, parameters).first()``,
    without SQLAlchemy's per-execution work (cache look-up, execution context, result metadata
    built from the cursor's description): more CPU than psycopg's own, about 0.13 ms of a
    submission's 0.95 ms in the worker for the two statements (measured in-process). The statement runs in the connection's transaction (begun here if need be), so the
    connection's commit and rollback cover it; a driver error is raised as SQLAlchemy's (an
    IntegrityError stays one). The statement events fire as for ``connection.execute``, with no
    execution context. Drivers with positional parameters (SQLite's) go through ``connection.execute``.
    """
    if connection.dialect.paramstyle != "pyformat":
        return connection.execute(statement, parameters).first()
    prepared = _driver_statement(statement, connection.dialect)
    values = {**prepared.defaults, **parameters}
    for name, process in prepared.bind_processors:
        values[name] = process(values[name])
    if not connection.in_transaction():
        connection.begin()
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    events = connection.dispatch
    try:
        if events.before_cursor_execute:
            events.before_cursor_execute(connection, cursor, prepared.sql, values, None, False)
        cursor.execute(prepared.sql, values)
        if events.after_cursor_execute:
            events.after_cursor_execute(connection, cursor, prepared.sql, values, None, False)
        row = cursor.fetchone()
    except dbapi_error as error:
        raise exc.DBAPIError.instance(prepared.sql, values, error, dbapi_error) from error
    finally:
        cursor.close()
    if row is None:
        return None
    return prepared.row(*[value if process is None else process(value)
                          for process, value in zip(prepared.result_processors, row, strict=True)])
