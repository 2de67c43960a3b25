"""`flask backup` and `flask restore`: a round trip gives back the same reconciled report, byte for byte.

Runs on SQLite (online backup API) and PostgreSQL (pg_dump / pg_restore). A restore refuses to
overwrite data without --yes, refuses the other backend's file, a damaged file and a file that
is not a backup, and changes nothing when it refuses.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from survey import exports
from survey.extensions import db
from survey.models import AuditEvent, Campaign, Response, Unit
from survey.services import backup as backup_service
from survey.services import reports
from survey.services.imports import import_consultant, import_cross

from security.helpers import World, build_world, table_rows

from .figures import FIGURES


def _csv(rows: list[list[Any]]) -> io.BytesIO:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return io.BytesIO(buffer.getvalue().encode("utf-8"))


@pytest.fixture
def filled(app: Any, make_campaign: Any, make_invitation: Any) -> World:
    """The security tests' world with enough consultant and cross answers for a full reconciliation."""
    world = build_world(make_campaign, make_invitation)
    codes = world.item_codes
    rows = [["unit_code", "respondent_id", "customer_group", *codes]]
    for u, unit in enumerate(world.units):
        for r in range(25):
            rows.append([unit.code, f"KH-{unit.code}-{r}", "household" if r % 4 else "business",
                         *[(u + r + i) % 6 + 4 if (r + i) % 9 else "" for i in range(len(codes))]])
    import_consultant(world.campaign, _csv(rows), actor="test", file_name="consultant.csv")
    rows = [["rater_unit", "ratee_unit", "respondent_id", "customer_group", *codes]]
    for assignment in (world.open_assignment, world.reopened_assignment):
        for r in range(12):
            rows.append([assignment.rater_unit.code, assignment.ratee_unit.code, f"PA-{assignment.id}-{r}", "household",
                         *[(r + i) % 5 + 5 for i in range(len(codes))]])
    import_cross(world.campaign, _csv(rows), actor="test", file_name="cross.csv")
    return world


def report_csv(code: str) -> bytes:
    """The reconciled report as `flask report --format csv` writes it."""
    db.session.expire_all()
    campaign = reports.find_campaign(code)
    assert campaign is not None
    return exports.write_report(reports.build_report(campaign), "csv", "vi")


def all_tables() -> dict[str, list[tuple[Any, ...]]]:
    db.session.expire_all()
    contents = {table.name: table_rows(table) for table in db.metadata.sorted_tables}
    db.session.rollback()
    return contents


def _damage(world: World) -> None:
    """What a restore must undo: deleted answers, a renamed unit, a new campaign."""
    db.session.execute(sa.delete(Response).where(Response.id.in_(
        sa.select(Response.id).where(Response.review_state == "received").limit(30))))
    db.session.execute(sa.update(Unit).where(Unit.id == world.units[0].id).values(name_vi="Đổi tên"))
    db.session.add(Campaign(code="bogus", name_vi="x", name_en="x", questionnaire_id=world.campaign.questionnaire_id))
    db.session.commit()


def test_round_trip_gives_the_same_report_byte_for_byte(filled: World, runner: Any, tmp_path: Path) -> None:
    code = filled.campaign.code
    report = report_csv(code)
    assert report.count(b"\r\n") == len(filled.units) + 1 and b"inconclusive" in report or b"consistent" in report
    tables = all_tables()
    path = tmp_path / "survey.backup"
    result = runner.invoke(args=["backup", str(path)])
    assert result.exit_code == 0, result.output
    FIGURES["backups made"] += 1
    assert "Backed up" in result.output and path.stat().st_size > 0

    _damage(filled)
    assert report_csv(code) != report
    damaged = all_tables()
    refused = runner.invoke(args=["restore", str(path)])
    assert refused.exit_code == 1 and "--yes" in refused.output, refused.output
    assert all_tables() == damaged, "a refused restore changed the database"
    FIGURES["restores refused (data present, no --yes)"] += 1

    result = runner.invoke(args=["restore", str(path), "--yes"])
    assert result.exit_code == 0, result.output
    FIGURES["restores made"] += 1
    assert report_csv(code) == report, "the restored database gives another report"
    restored = all_tables()
    events = restored.pop("audit_event")
    expected_events = tables.pop("audit_event")
    # The trail's head moves with the restore's own event, like the trail itself.
    head = restored.pop("audit_chain_head")
    tables.pop("audit_chain_head")
    assert restored == tables, "some table differs after the round trip"
    assert head == [(1, events[-2][-1], events[-1][-1])]
    # The trail as it was, then the restore itself: the backup's own event came after the copy.
    assert events[: len(expected_events)] == expected_events and len(events) == len(expected_events) + 1
    assert db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)).one() == "restore"
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_restore_refuses_bad_files_and_changes_nothing(filled: World, runner: Any, tmp_path: Path,
                                                      backend: str) -> None:
    good = tmp_path / "good.backup"
    assert runner.invoke(args=["backup", str(good)]).exit_code == 0
    data = good.read_bytes()
    other = {"sqlite": "PostgreSQL", "postgresql": "SQLite"}[backend]
    cases = {
        "other backend": (b"PGDMP\x01\x0e\x00" + b"\x00" * 64 if backend == "sqlite" else
                          b"SQLite format 3\x00" + b"\x00" * 84, f"is a {other} backup"),
        "not a backup": (b"unit_code,name_vi\nbac-giang,x\n", "not a backup made by 'flask backup'"),
        "empty": (b"", "not a backup made by 'flask backup'"),
        "truncated": (data[: len(data) // 3], "" if backend == "sqlite" else "pg_restore"),
    }
    if backend == "sqlite":
        cases["empty database"] = (_empty_sqlite(tmp_path), "holds no survey database")
    before = all_tables()
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.backup"
        path.write_bytes(content)
        result = runner.invoke(args=["restore", str(path), "--yes"])
        FIGURES["restores refused (bad file)"] += 1
        assert result.exit_code == 1, (name, result.output)
        assert result.output.startswith("Error: ") and message in result.output, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1, (name, result.output)
        assert all_tables() == before, f"{name}: a refused restore changed the database"
    missing = runner.invoke(args=["restore", str(tmp_path / "nowhere.backup"), "--yes"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def _empty_sqlite(tmp_path: Path) -> bytes:
    import sqlite3

    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    return path.read_bytes()


def test_backup_refuses_a_bad_destination(filled: World, runner: Any, tmp_path: Path) -> None:
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    existing = tmp_path / "existing.backup"
    existing.write_bytes(b"keep me")
    for args, message in (
        ([str(tmp_path / "no" / "such" / "folder.backup")], "does not exist"),
        ([str(tmp_path)], "is a folder"),
        ([str(existing)], "--force"),
    ):
        result = runner.invoke(args=["backup", *args])
        assert result.exit_code == 1 and message in result.output, result.output
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.backup"], "a partial file was left behind"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events
    forced = runner.invoke(args=["backup", str(existing), "--force"])
    assert forced.exit_code == 0 and existing.read_bytes() != b"keep me"


def test_postgresql_without_client_tools_is_a_clear_error(filled: World, runner: Any, tmp_path: Path, backend: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "postgresql":
        pytest.skip("only PostgreSQL backups need pg_dump (SQLite uses its own backup API)")
    monkeypatch.setattr(backup_service.shutil, "which", lambda name: None)
    result = runner.invoke(args=["backup", str(tmp_path / "x.backup")])
    assert result.exit_code == 1 and "pg_dump is not installed" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_client_tools_are_installed_where_postgresql_is_tested(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("pg_dump is needed only with PostgreSQL")
    assert shutil.which("pg_dump") and shutil.which("pg_restore")


def test_the_database_password_never_goes_on_the_command_line() -> None:
    """pg_dump and pg_restore get the connection through libpq variables, not their arguments."""
    from sqlalchemy.engine import make_url

    env = backup_service._pg_environment(make_url("postgresql+psycopg://survey:s3cr%40t@db.internal:5433/survey"
                                                  "?sslmode=verify-full"))
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == ("db.internal", "5433", "survey", "survey")
    assert env["PGPASSWORD"] == "s3cr@t" and env["PGSSLMODE"] == "verify-full"
    assert "lock_timeout" in env["PGOPTIONS"]
