"""Backing up and restoring the whole database: SQLite's online backup, or pg_dump/pg_restore.

A SQLite backup is itself a SQLite database file, copied page by page while the application
keeps running. A PostgreSQL backup is a ``pg_dump --format=custom`` archive, restored with
``pg_restore --clean --if-exists`` in one transaction, so a failed restore changes nothing.
Either file is written beside its destination and renamed into place at the end, so a
failure never leaves half a backup under the chosen name. Backups and restores are recorded
in the audit trail: a backup holds every response, so it is an export like any other.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy.engine import URL

from ..extensions import db
from . import audit

#: The first bytes of each kind of backup file.
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
#: DATABASE_URL query parameters and the libpq variables that carry them to pg_dump and pg_restore.
LIBPQ_QUERY_PARAMETERS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}
#: A restore waits this long for another session's lock before giving up (the app should be stopped).
PG_LOCK_TIMEOUT = "10s"


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the one-line message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore did."""

    path: Path
    backend: str
    size: int
    sha256: str
    #: The schema revision (Alembic) the file holds.
    revision: str | None


def backend_name() -> str:
    """'sqlite' or 'postgresql': the kind of database the application uses."""
    return db.engine.dialect.name


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _sqlite_path() -> Path:
    """The live SQLite database file; an in-memory database cannot be backed up."""
    database = db.engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError("the database is in memory; there is no file to back up or restore")
    return Path(database)


def _pg_environment(url: URL) -> dict[str, str]:
    """libpq variables for pg_dump/pg_restore, so the password never appears in the process list."""
    env = dict(os.environ)
    for variable, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                            ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[variable] = str(value)
    # TLS and timeout settings given in DATABASE_URL's query string apply to the tools too.
    for parameter, variable in LIBPQ_QUERY_PARAMETERS.items():
        value = url.query.get(parameter)
        if isinstance(value, str):
            env[variable] = value
    env["PGOPTIONS"] = f"-c lock_timeout={PG_LOCK_TIMEOUT}"
    return env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed; install the PostgreSQL client tools (e.g. apt-get install postgresql-client)"
        )
    return path


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _run(arguments: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        completed = subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{what} failed: {exc}") from None
    if completed.returncode != 0:
        raise BackupError(f"{what} failed: {_last_line(completed.stderr)}")
    return completed


def _temporary_beside(path: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    return Path(name)


def _check_destination(path: Path, overwrite: bool) -> None:
    if not path.parent.is_dir():
        raise BackupError(f"the folder {str(path.parent)!r} does not exist; create it or choose another path")
    if path.is_dir():
        raise BackupError(f"{str(path)!r} is a folder; give a file name, e.g. {path / 'survey.backup'}")
    if path.exists() and not overwrite:
        raise BackupError(f"{str(path)!r} exists already; choose a new name or add --force to replace it")


def _current_revision() -> str | None:
    inspector = sa.inspect(db.engine)
    if not inspector.has_table("alembic_version"):
        return None
    return db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))


def backup_database(path: str | os.PathLike[str], *, overwrite: bool = False, actor: str = "cli") -> BackupResult:
    """Write a consistent copy of the whole database to ``path`` and record it in the audit trail."""
    target = Path(path)
    _check_destination(target, overwrite)
    revision = _current_revision()
    db.session.commit()  # the copy must not wait on, nor include, this session's open transaction
    partial = _temporary_beside(target)
    try:
        if backend_name() == "sqlite":
            _sqlite_backup(_sqlite_path(), partial)
        elif backend_name() == "postgresql":
            _pg_dump(partial)
        else:
            raise BackupError(f"backups of {backend_name()} databases are not supported; use SQLite or PostgreSQL")
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except OSError as exc:
        raise BackupError(f"cannot write {str(target)!r}: {exc.strerror or exc}; choose another path") from None
    finally:
        partial.unlink(missing_ok=True)
    result = BackupResult(target, backend_name(), target.stat().st_size, _file_digest(target), revision)
    # Recorded after the copy succeeded, so the trail never claims a backup that does not exist.
    audit.record("backup", "database", None, after={"file": target.name, "backend": result.backend,
                                                     "bytes": result.size, "sha256": result.sha256}, actor=actor)
    db.session.commit()
    return result


def _sqlite_backup(source: Path, destination: Path) -> None:
    """SQLite's online backup API: a consistent copy even while other connections write."""
    source_connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    destination_connection = sqlite3.connect(destination)
    try:
        with destination_connection:
            source_connection.backup(destination_connection)
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite backup failed: {exc}") from None
    finally:
        destination_connection.close()
        source_connection.close()


def _pg_dump(destination: Path) -> None:
    url = db.engine.url
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={destination}"],
         _pg_environment(url), "pg_dump")


# --- Restore --------------------------------------------------------------------------------------


def _kind_of_file(path: Path) -> str:
    """'sqlite' or 'postgresql' from the file's first bytes; BackupError for anything else."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"{str(path)!r} does not exist; give the path of a file made by 'flask backup'") from None
    except IsADirectoryError:
        raise BackupError(f"{str(path)!r} is a folder; give the path of a file made by 'flask backup'") from None
    except OSError as exc:
        raise BackupError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{str(path)!r} is not a backup made by 'flask backup' (neither SQLite nor pg_dump format)")


def _known_revision(revision: str | None, path: Path) -> None:
    """Refuse a backup without our schema, or from a newer version of the application."""
    if not revision:
        raise BackupError(f"{str(path)!r} holds no survey database (no schema revision); it was not made by 'flask backup'")
    script = ScriptDirectory(current_app.extensions["migrate"].directory)
    try:
        known = script.get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown or malformed id
        known = None
    if known is None:
        raise BackupError(
            f"{str(path)!r} was made by a newer version of the application (schema {revision}); update the code first"
        )


def _sqlite_file_revision(path: Path) -> str | None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{str(path)!r} cannot be opened as a SQLite backup: {exc}") from None
    try:
        check = connection.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError(f"{str(path)!r} is damaged (SQLite integrity check: {check[0] if check else 'no answer'})")
        row = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if row is None:
            return None
        version = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return version[0] if version else None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{str(path)!r} is damaged or not a SQLite backup: {exc}") from None
    finally:
        connection.close()


def _pg_file_revision(path: Path) -> str | None:
    env = _pg_environment(db.engine.url)
    listing = _run([_pg_tool("pg_restore"), "--list", str(path)], env, "reading the backup with pg_restore").stdout
    if not re.search(r"TABLE DATA \S+ alembic_version ", listing):
        return None
    data = _run([_pg_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)], env,
                "reading the backup with pg_restore").stdout
    # The archive's data section: "COPY public.alembic_version (version_num) FROM stdin;" then one line per row.
    match = re.search(r"^COPY \S*alembic_version .*? FROM stdin;\n([^\n\\]+)\n", data, re.MULTILINE)
    return match.group(1).strip() if match else None


def database_has_data() -> bool:
    """True when any table of the application holds a row (a restore would overwrite something)."""
    inspector = sa.inspect(db.engine)
    for table in db.metadata.sorted_tables:
        if inspector.has_table(table.name) and db.session.scalar(sa.select(sa.literal(1)).select_from(table).limit(1)):
            return True
    return False


def restore_database(path: str | os.PathLike[str], *, overwrite: bool = False, actor: str = "cli") -> BackupResult:
    """Replace the whole database with a backup made by ``backup_database``; refuse to overwrite data unless asked."""
    source = Path(path)
    kind = _kind_of_file(source)
    backend = backend_name()
    if kind != backend:
        other = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(
            f"{str(source)!r} is a {other[kind]} backup but the application uses {other.get(backend, backend)}; "
            f"restore it into a {other[kind]} database (set DATABASE_URL accordingly)"
        )
    revision = _sqlite_file_revision(source) if kind == "sqlite" else _pg_file_revision(source)
    _known_revision(revision, source)
    if not overwrite and database_has_data():
        raise BackupError("the database already holds data; add --yes to replace all of it with the backup")
    digest = _file_digest(source)
    # No pooled connection may hold the old database open (SQLite) or keep locks (PostgreSQL).
    db.session.remove()
    db.engine.dispose()
    if kind == "sqlite":
        _sqlite_restore(source, _sqlite_path())
    else:
        _pg_restore(source)
    db.engine.dispose()
    audit.record("restore", "database", None, after={"file": source.name, "backend": backend, "sha256": digest,
                                                      "revision": revision}, actor=actor)
    db.session.commit()
    return BackupResult(source, backend, source.stat().st_size, digest, revision)


def _sqlite_restore(source: Path, target: Path) -> None:
    """Copy the backup over the live database with the backup API: one transaction, all or nothing."""
    source_connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    target_connection = sqlite3.connect(target, timeout=30)
    try:
        source_connection.backup(target_connection)
    except sqlite3.Error as exc:
        raise BackupError(f"the restore failed and nothing was changed: {exc}") from None
    finally:
        target_connection.close()
        source_connection.close()


def _pg_restore(source: Path) -> None:
    env = _pg_environment(db.engine.url)
    if not env.get("PGDATABASE"):
        raise BackupError("DATABASE_URL names no database; give its name, e.g. postgresql://user@host/survey")
    _run(
        [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
         "--exit-on-error", f"--dbname={env.get('PGDATABASE', '')}", str(source)],
        env,
        "pg_restore (nothing was changed; if the database is in use, stop the application servers first)",
    )
