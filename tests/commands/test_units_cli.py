"""`flask units import FILE.csv`: add or update units, all or nothing, every bad row listed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from survey.extensions import db
from survey.models import AuditEvent, Unit
from survey.services.units import UNITS_CSV

HEADER = "unit_code,name_vi,name_en,households\n"


def unit_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Unit))


def test_imports_the_27_units_then_updates_them(runner, tmp_path):
    path = tmp_path / "units.csv"
    path.write_bytes(UNITS_CSV.read_bytes())
    first = runner.invoke(args=["units", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "27 added, 0 updated" in first.output
    assert unit_count() == 27
    bac_giang = db.session.scalar(sa.select(Unit).where(Unit.code == "bac-giang"))
    assert bac_giang.name_vi == "Công ty Điện lực Bắc Giang"

    path.write_text(HEADER + "bac-giang,Công ty Điện lực Bắc Giang (mới),Bac Giang PC,470000\nha-noi,Hà Nội,Hanoi,\n",
                    encoding="utf-8")
    second = runner.invoke(args=["units", "import", str(path)])
    assert second.exit_code == 0, second.output
    assert "1 added, 1 updated" in second.output
    db.session.expire_all()
    bac_giang = db.session.scalar(sa.select(Unit).where(Unit.code == "bac-giang"))
    assert (bac_giang.name_vi, bac_giang.households) == ("Công ty Điện lực Bắc Giang (mới)", 470000)
    assert db.session.scalar(sa.select(Unit.households).where(Unit.code == "ha-noi")) is None
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.entity == "unit")).all()
    assert [e.after["added"] for e in events] == [27, 1]


def test_a_bad_file_lists_every_bad_row_and_changes_nothing(runner, tmp_path, make_units):
    make_units(1)
    path = tmp_path / "units.csv"
    path.write_text(
        HEADER
        + "bac-giang,Công ty Điện lực Bắc Giang (đổi tên),Bac Giang,1\n"  # line 2: good (an update)
        + "Hai Phong,Hải Phòng,Hai Phong,10\n"  # line 3: not a slug
        + "nam-dinh,,Nam Dinh,10\n"  # line 4: empty name_vi
        + "nam-dinh,Nam Định,Nam Dinh,many\n"  # line 5: repeated code, households not a number
        + "ninh-binh,Ninh Bình,Ninh Binh,12\n",  # line 6: good
        encoding="utf-8",
    )
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 1
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("Error: ") and "nothing changed" in first_line
    for expected in ("line 3, unit_code", "line 4, name_vi", "line 5, unit_code: 'nam-dinh' already on line 4",
                     "line 5, households"):
        assert expected in result.stderr
    assert "line 2" not in result.stderr and "line 6" not in result.stderr
    assert unit_count() == 1
    assert db.session.scalar(sa.select(Unit.name_vi)) == "Công ty Điện lực Bắc Giang"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"unit_code,name_vi\nbac-giang,X\n", "missing column(s) name_en, households"),
        ("unit_code,name_vi,name_en,households\nbac-giang,Bắc Giang,Bac Giang,1\n".encode("cp1258", "replace")
         .replace(b"?", b"\xe0\xe1"), "not UTF-8"),
        (HEADER.encode(), "no units"),
    ],
)
def test_unreadable_files_are_refused(runner, tmp_path, content, message):
    path = tmp_path / "units.csv"
    path.write_bytes(content)
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 1
    assert message in result.stderr
    assert unit_count() == 0


def test_a_missing_file_is_one_line(runner, tmp_path):
    result = runner.invoke(args=["units", "import", str(tmp_path / "nowhere.csv")])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot read the file" in result.stderr


def test_control_characters_and_impossible_household_counts_are_refused(runner, tmp_path, make_units):
    """A NUL byte (which PostgreSQL cannot store), other control characters, digits that are not ASCII and a count
    beyond any power company are refused with their line and column; nothing changes."""
    make_units(1)
    path = tmp_path / "units.csv"
    path.write_bytes(
        (HEADER
         + "bac-giang,Bắc\x00Giang,Bac Giang PC,1\n"
         + "lao-cai,Lào Cai,Lao\x1bCai PC,2\n"
         + "yen-bai,Yên Bái,Yen Bai PC,²\n"
         + "ha-nam,Hà Nam,Ha Nam PC,99999999999999999999\n"
         + "nam-dinh,Nam Định,Nam Dinh PC,900000\n").encode("utf-8"))
    before = [(u.code, u.name_vi, u.households) for u in db.session.scalars(sa.select(Unit).order_by(Unit.id))]
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 1, result.output
    for expected in ("line 2, name_vi: contains a control character", "line 3, name_en: contains a control character",
                     "line 4, households: '²' is not a whole number",
                     "line 5, households: 99999999999999999999 is more than 100,000,000"):
        assert expected in result.output
    assert "line 6" not in result.output
    db.session.expire_all()
    assert [(u.code, u.name_vi, u.households) for u in db.session.scalars(sa.select(Unit).order_by(Unit.id))] == before
