"""gunicorn preloads the app and forks its workers from it (deploy/gunicorn.conf.py): a forked
worker must open database connections of its own and leave the parent's alone."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa

from survey.extensions import db

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")


def _connection_identity(connection: sa.Connection) -> str:
    """Which server session (PostgreSQL) or which driver connection (SQLite) this is."""
    if connection.dialect.name == "postgresql":
        return str(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    return str(id(connection.connection.dbapi_connection))


def test_a_forked_worker_opens_its_own_connections(app):
    with db.engine.connect() as connection:
        parent = _connection_identity(connection)
    assert db.engine.pool.checkedin() == 1  # the parent's connection waits in the pool

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it finds, then leave without running any cleanup
        report: dict[str, object] = {}
        try:
            report["inherited"] = db.engine.pool.checkedin()
            with db.engine.connect() as connection:
                report["identity"] = _connection_identity(connection)
                report["one"] = connection.exec_driver_sql("SELECT 1").scalar_one()
        except BaseException as error:  # noqa: BLE001 — told to the parent, which fails the test
            report["error"] = repr(error)
        finally:
            os.write(write_end, json.dumps(report).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)

    assert "error" not in report, report["error"]
    assert report["inherited"] == 0
    assert report["one"] == 1
    assert report["identity"] != parent
    # The parent's pooled connection was neither closed nor used by the child: it still works.
    with db.engine.connect() as connection:
        assert _connection_identity(connection) == parent
        assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
