"""`flask report CODE --format csv|xlsx|pdf --out PATH`."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pypdf import PdfReader

from survey.extensions import db
from survey.models import AuditEvent

from .test_exports import DESIGN_COLUMNS, read_csv


def test_report_csv_command(seeded, runner, tmp_path):
    out = tmp_path / "report.csv"
    result = runner.invoke(args=["report", "c2017", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "c2017" in result.output
    rows = read_csv(out.read_bytes())
    assert rows[0] == DESIGN_COLUMNS and len(rows) == 7
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "export"))
    assert event.actor == "cli" and event.after["export"] == "csv"


def test_report_xlsx_and_pdf_commands(seeded, runner, tmp_path):
    xlsx = tmp_path / "report.xlsx"
    pdf = tmp_path / "report.pdf"
    assert runner.invoke(args=["report", "c2017", "--format", "xlsx", "--out", str(xlsx)]).exit_code == 0
    assert runner.invoke(args=["report", "c2017", "--format", "pdf", "--out", str(pdf), "--lang", "en"]).exit_code == 0
    assert load_workbook(io.BytesIO(xlsx.read_bytes())).sheetnames == ["units", "raters", "method"]
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert "Results per unit" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "nope", "--format", "csv"], "there is no campaign 'nope'"),
        (["report", "c2017", "--format", "doc"], "'doc' is not one of"),
        (["report", "c2017", "--format", "csv", "--out", "/no/such/folder/r.csv"], "does not exist"),
    ],
)
def test_report_command_refuses_bad_input_and_writes_nothing(seeded, runner, tmp_path, args, message):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "r.out")]
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "export")) == 0


def test_report_command_replaces_an_existing_file_whole(seeded, runner, tmp_path):
    out = tmp_path / "report.csv"
    out.write_text("old content that is much longer than nothing " * 1000)
    assert runner.invoke(args=["report", "c2017", "--format", "csv", "--out", str(out)]).exit_code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbfunit_code,")
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
