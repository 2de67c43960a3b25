"""CSV, XLSX and PDF downloads: contract columns, the same numbers as `scoring`, formula injection, sections."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

import scoring
from survey import exports
from survey.exports.csv_report import report_csv
from survey.exports.pdf_report import report_pdf
from survey.exports.xlsx_report import report_xlsx
from survey.extensions import db
from survey.services import reports

from .conftest import assert_close, reference_reconciliation

DESIGN_COLUMNS = (
    "unit_code,unit_name,consultant_n,consultant_score,consultant_ci_low,consultant_ci_high,cross_n,cross_raters,"
    "cross_score,cross_score_adjusted,difference,difference_ci_low,difference_ci_high,p_value,p_adjusted,status,"
    "reason,reconciled_score,reconciled_ci_low,reconciled_ci_high,rank"
).split(",")
RATER_COLUMNS = ["rater_unit", "leniency", "leniency_se", "p_value", "p_adjusted", "flagged"]


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "the CSV must start with a UTF-8 BOM"
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1:A3)", "'=SUM(A1:A3)"),
        ("+84 912", "'+84 912"),
        ("-cmd", "'-cmd"),
        ("@import", "'@import"),
        ("\t=1", "'\t=1"),
        ("Công ty Điện lực Bắc Giang", "Công ty Điện lực Bắc Giang"),
        (-0.4, -0.4),
        (3, 3),
        (float("nan"), None),
        (float("inf"), None),
        (None, None),
        (True, True),
    ],
)
def test_cell_neutralises_text_only(value, expected):
    assert exports.cell(value) == expected


@pytest.mark.parametrize(
    ("value", "digits", "lang", "signed", "text"),
    [
        (7.5, 2, "vi", False, "7,50"),
        (7.5, 2, "en", False, "7.50"),
        (-0.4, 2, "vi", True, "−0,40"),
        (0.25, 2, "en", True, "+0.25"),
        (-0.001, 2, "vi", True, "0,00"),
        (None, 2, "vi", False, "–"),
        (float("nan"), 2, "en", False, "–"),
    ],
)
def test_number_for_people(value, digits, lang, signed, text):
    assert exports.number(value, digits, lang, signed) == text


@pytest.mark.parametrize(
    ("value", "lang", "text"), [(0.0004, "vi", "< 0,001"), (0.0123, "en", "0.012"), (None, "en", "–")]
)
def test_p_value_for_people(value, lang, text):
    assert exports.p_value(value, lang) == text


def test_csv_has_bom_design_columns_and_scoring_numbers(seeded):
    data = report_csv(reports.build_report(seeded.campaign))
    rows = read_csv(data)
    assert rows[0] == DESIGN_COLUMNS
    expected = reference_reconciliation(seeded.campaign)
    body = {row[0]: dict(zip(DESIGN_COLUMNS, row)) for row in rows[1:]}
    assert sorted(body) == sorted(u.unit_code for u in expected.units)
    for unit in expected.units:
        row = body[unit.unit_code]
        for column in scoring.UNIT_COLUMNS:
            if column in ("unit_code", "status", "reason"):
                continue
            assert_close(row[column], getattr(unit, column), f"{unit.unit_code}.{column}")
        assert row["status"] == unit.status
        assert row["reason"] == unit.reason_vi
        assert row["unit_name"].startswith("Công ty Điện lực")
    assert not [v for row in rows for v in row if v.strip().lower().lstrip("+-") in ("nan", "inf", "infinity")]


def test_csv_in_english_uses_english_names_and_reasons(seeded):
    rows = read_csv(report_csv(reports.build_report(seeded.campaign), "en"))
    assert rows[1][1].endswith("Power Company")
    expected = reference_reconciliation(seeded.campaign)
    assert rows[1][DESIGN_COLUMNS.index("reason")] == expected.units[0].reason


def test_csv_empty_cells_where_nothing_can_be_computed(app, make_campaign):
    campaign = make_campaign(code="empty", units=3)
    rows = read_csv(report_csv(reports.build_report(campaign)))
    for row in rows[1:]:
        record = dict(zip(DESIGN_COLUMNS, row))
        assert record["consultant_score"] == "" and record["difference"] == "" and record["rank"] == ""
        assert record["consultant_n"] == "0" and record["status"] == "inconclusive" and record["reason"]


def test_xlsx_sheets_numbers_and_formatting(seeded):
    workbook = load_workbook(io.BytesIO(report_xlsx(reports.build_report(seeded.campaign))))
    assert workbook.sheetnames == ["units", "raters", "method"]
    units, raters, method = (workbook[name] for name in workbook.sheetnames)
    assert [c.value for c in units[1]] == DESIGN_COLUMNS
    assert units.freeze_panes == "A2" and raters.freeze_panes == "A2"
    expected = reference_reconciliation(seeded.campaign)
    by_code = {row[0].value: row for row in units.iter_rows(min_row=2)}
    for unit in expected.units:
        row = {name: c for name, c in zip(DESIGN_COLUMNS, by_code[unit.unit_code])}
        for column in scoring.UNIT_COLUMNS:
            if column in ("unit_code", "status", "reason"):
                continue
            assert_close(row[column].value, getattr(unit, column), f"{unit.unit_code}.{column}")
        assert row["status"].value == unit.status
        assert row["status"].fill.fgColor.rgb.endswith({"inconsistent": "F8D7D4", "consistent": "D5EDDA",
                                                        "inconclusive": "FCE8C8"}[unit.status])
        assert row["consultant_score"].number_format == "0.00"
        assert row["p_adjusted"].number_format == "0.0000"
    assert [c.value for c in raters[1]] == RATER_COLUMNS
    rater_rows = {row[0].value: row for row in raters.iter_rows(min_row=2)}
    assert sorted(rater_rows) == sorted(r.rater_unit for r in expected.raters)
    for rater in expected.raters:
        row = dict(zip(RATER_COLUMNS, rater_rows[rater.rater_unit]))
        for column in RATER_COLUMNS[1:]:
            assert_close(row[column].value, getattr(rater, column), f"{rater.rater_unit}.{column}")
    assert units.column_dimensions["F"].width == 12 and units.column_dimensions["Q"].width == 70
    method_text = " ".join(str(c.value) for row in method.iter_rows() for c in row if c.value is not None)
    assert "Benjamini-Hochberg" in method_text and "c2017" in method_text


def test_formula_injection_is_neutralised_in_csv_and_xlsx(seeded):
    unit = seeded.units[0]
    unit.name_vi = '=HYPERLINK("http://evil.example","x")'
    db.session.commit()
    report = reports.build_report(seeded.campaign)
    rows = read_csv(report_csv(report))
    row = next(r for r in rows if r[0] == unit.code)
    assert row[1] == "'" + unit.name_vi
    # Negative numbers stay numbers.
    negatives = [r[DESIGN_COLUMNS.index("difference_ci_low")] for r in rows[1:]]
    assert any(v.startswith("-") for v in negatives)
    assert not any(v.startswith("'") for r in rows[1:] for i, v in enumerate(r) if DESIGN_COLUMNS[i] != "unit_name")

    workbook = load_workbook(io.BytesIO(report_xlsx(report)))
    sheet = workbook["units"]
    cell = next(r[1] for r in sheet.iter_rows(min_row=2) if r[0].value == unit.code)
    assert cell.value == "'" + unit.name_vi and cell.data_type == "s"
    lows = [r[DESIGN_COLUMNS.index("difference_ci_low")] for r in sheet.iter_rows(min_row=2)]
    assert any(isinstance(c.value, float) and c.value < 0 for c in lows)


def test_pdf_has_a_page_per_section_in_vietnamese(seeded):
    data = report_pdf(reports.build_report(seeded.campaign), "vi")
    reader = PdfReader(io.BytesIO(data))
    pages = [page.extract_text() or "" for page in reader.pages]
    sections = [
        "Mức độ hài lòng của khách hàng: báo cáo đối chiếu",
        "Kết quả theo đơn vị",
        "Độ dễ dãi của các đơn vị chấm chéo",
        "Biểu đồ: điểm tư vấn và điểm chấm chéo theo đơn vị",
        "Biểu đồ: mức độ thống nhất giữa hai nguồn đánh giá",
        "Biểu đồ: độ dễ dãi của các đơn vị chấm chéo",
        "Biểu đồ: điểm theo tiêu chí của từng đơn vị",
        "Phương pháp",
    ]
    found = []
    for title in sections:
        hits = [i for i, text in enumerate(pages) if text.lstrip().startswith(title)]
        assert hits, f"no page starts with section {title!r}"
        found.append(hits[0])
    assert found == sorted(found) and len(set(found)) == len(sections)
    for index in found[3:7]:
        assert reader.pages[index].images, "a chart page has its chart"
    assert "Công ty Điện lực" in pages[found[1]] or "Bắc Giang" in pages[found[1]]


def test_pdf_in_english(seeded):
    data = report_pdf(reports.build_report(seeded.campaign), "en")
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    assert "Results per unit" in text and "Method" in text and "nan" not in text.lower().split()


def test_pdf_of_an_empty_campaign(app, make_campaign):
    data = report_pdf(reports.build_report(make_campaign(code="empty", units=3)), "vi")
    assert len(PdfReader(io.BytesIO(data)).pages) >= 8
