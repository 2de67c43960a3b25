"""The report as an Excel workbook: sheets ``units``, ``raters`` and ``method`` (openpyxl)."""

from __future__ import annotations

import io
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..services.reports import RATER_COLUMNS, REPORT_COLUMNS, CampaignReport, finite
from . import cell

SCORE = "0.00"
SIGNED = "+0.00;-0.00;0.00"
P_VALUE = "0.0000"
COUNT = "0"
#: Number format per column; columns not listed are text.
NUMBER_FORMATS = {
    "consultant_n": COUNT,
    "consultant_score": SCORE,
    "consultant_ci_low": SCORE,
    "consultant_ci_high": SCORE,
    "cross_n": COUNT,
    "cross_raters": COUNT,
    "cross_score": SCORE,
    "cross_score_adjusted": SCORE,
    "difference": SIGNED,
    "difference_ci_low": SIGNED,
    "difference_ci_high": SIGNED,
    "p_value": P_VALUE,
    "p_adjusted": P_VALUE,
    "reconciled_score": SCORE,
    "reconciled_ci_low": SCORE,
    "reconciled_ci_high": SCORE,
    "rank": COUNT,
    "leniency": SIGNED,
    "leniency_se": "0.000",
}
WIDTHS = {"unit_code": 14, "unit_name": 30, "status": 14, "reason": 70, "rater_unit": 14, "flagged": 9}
#: Fills of the status cell, the same colours as the page.
STATUS_FILLS = {
    "inconsistent": PatternFill("solid", fgColor="F8D7D4"),
    "consistent": PatternFill("solid", fgColor="D5EDDA"),
    "inconclusive": PatternFill("solid", fgColor="FCE8C8"),
}
FLAG_FILL = PatternFill("solid", fgColor="F8D7D4")
HEADER_FILL = PatternFill("solid", fgColor="EEF2F7")


def _put(sheet: Worksheet, row: int, column: int, value: Any) -> Any:
    """Write one cell; text is always stored as text, so nothing a user typed can become a formula."""
    target = sheet.cell(row=row, column=column)
    value = cell(value)
    target.value = value
    if isinstance(value, str):
        target.data_type = "s"
    return target


def _table(sheet: Worksheet, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    bold = Font(bold=True)
    for c, name in enumerate(columns, start=1):
        header = _put(sheet, 1, c, name)
        header.font = bold
        header.fill = HEADER_FILL
        sheet.column_dimensions[get_column_letter(c)].width = WIDTHS.get(name, 12)
    for r, row in enumerate(rows, start=2):
        for c, name in enumerate(columns, start=1):
            target = _put(sheet, r, c, row[name])
            if name in NUMBER_FORMATS:
                target.number_format = NUMBER_FORMATS[name]
                target.alignment = Alignment(horizontal="right")
            if name == "status" and row[name] in STATUS_FILLS:
                target.fill = STATUS_FILLS[row[name]]
            if name == "reason":
                target.alignment = Alignment(wrap_text=True, vertical="top")
            if name == "flagged" and row[name]:
                target.fill = FLAG_FILL
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(len(rows) + 1, 1)}"


def _method_rows(report: CampaignReport) -> list[tuple[str, Any]]:
    rec = report.reconciliation
    offset = rec.offset
    overall = report.overall
    return [
        (_("Campaign"), report.campaign_code),
        (_("Campaign name"), report.campaign_name_vi),
        (_("Generated at (UTC)"), report.generated_at.strftime("%Y-%m-%d %H:%M")),
        (_("Target score"), report.target),
        (_("Overall consultant score"), overall.score),
        (_("Overall score, 95% CI low"), overall.ci_low),
        (_("Overall score, 95% CI high"), overall.ci_high),
        (_("Consultant respondents"), overall.n),
        (_("Previous campaign"), overall.previous_code),
        (_("Previous overall score"), overall.previous_score),
        (_("Equivalence margin (points)"), rec.margin),
        (_("Significance level"), rec.alpha),
        (_("Household share for post-stratification"), report.household_share),
        (_("Campaign-wide offset (cross − consultant)"), finite(offset.estimate)),
        (_("Offset standard error"), finite(offset.se)),
        (_("Offset 95% CI low"), finite(offset.ci_low)),
        (_("Offset 95% CI high"), finite(offset.ci_high)),
        (_("Offset p-value"), finite(offset.p_value)),
        (_("Residual SD"), finite(rec.residual_sd)),
        (_("Unit discrepancy SD"), finite(rec.discrepancy_sd)),
        (_("Estimation rounds"), rec.rounds),
    ]


def report_xlsx(report: CampaignReport, lang: str = "vi") -> bytes:
    """The workbook: units and raters as in the CSV contract, the method and its parameters."""
    with force_locale(lang):
        workbook = Workbook()
        units = workbook.active
        units.title = "units"
        _table(units, REPORT_COLUMNS, report.unit_rows(lang))
        raters = workbook.create_sheet("raters")
        _table(raters, RATER_COLUMNS, report.rater_rows())

        method = workbook.create_sheet("method")
        method.column_dimensions["A"].width = 44
        method.column_dimensions["B"].width = 90
        bold = Font(bold=True)
        _put(method, 1, 1, _("Method")).font = bold
        text = _put(method, 1, 2, report.reconciliation.method)
        text.alignment = Alignment(wrap_text=True, vertical="top")
        method.row_dimensions[1].height = 330
        row = 2
        for label, value in _method_rows(report):
            _put(method, row, 1, label)
            target = _put(method, row, 2, value)
            if isinstance(target.value, float):
                target.number_format = "0.0000"
                target.alignment = Alignment(horizontal="left")
            row += 1
        for warning in report.reconciliation.warnings:
            _put(method, row, 1, _("Note"))
            _put(method, row, 2, warning).alignment = Alignment(wrap_text=True)
            row += 1
        method.freeze_panes = "A2"

        buffer = io.BytesIO()
        workbook.save(buffer)
    return buffer.getvalue()
