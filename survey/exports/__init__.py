"""Writers for the report downloads (CSV, XLSX, PDF) and the raw-responses export.

Shared here: how a value becomes a spreadsheet cell. Text that a spreadsheet would run as a
formula is neutralised; numbers stay numbers (a negative difference is data, not a formula).
"""

from __future__ import annotations

import math
from typing import Any

from flask_babel import lazy_gettext as _l

#: First characters that make Excel or LibreOffice treat a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: Status names for people, by the status code the contract uses.
STATUS_LABELS = {
    "inconsistent": _l("Inconsistent"),
    "consistent": _l("Consistent"),
    "inconclusive": _l("Inconclusive"),
}

#: Media types and file suffixes of the report downloads.
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
FORMATS = tuple(MEDIA_TYPES)


def neutralise(text: str) -> str:
    """Text that would start a formula gets a leading apostrophe (OWASP CSV injection advice)."""
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cell(value: Any) -> Any:
    """A value ready for a spreadsheet: None for missing, finite numbers as numbers, safe text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return neutralise(str(value))


def csv_text(value: Any) -> str:
    """A value as CSV text: empty for missing, shortest exact text for numbers, safe text otherwise."""
    value = cell(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return value


def filename(campaign_code: str, fmt: str) -> str:
    """The download's file name, e.g. ``report-2017.xlsx`` (ASCII only, safe in a header)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in campaign_code)
    return f"report-{safe}.{fmt}"


def write_report(report: Any, fmt: str, lang: str = "vi") -> bytes:
    """The report in one of FORMATS."""
    if fmt == "csv":
        from .csv_report import report_csv

        return report_csv(report, lang)
    if fmt == "xlsx":
        from .xlsx_report import report_xlsx

        return report_xlsx(report, lang)
    if fmt == "pdf":
        from .pdf_report import report_pdf

        return report_pdf(report, lang)
    raise ValueError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")


def number(value: Any, digits: int = 2, lang: str = "vi", signed: bool = False) -> str:
    """A number for people to read: fixed decimals, a decimal comma in Vietnamese, "–" when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if float(text) == 0:
        # A value that rounds to zero has no sign worth showing ("−0.00" reads as a negative difference).
        text = f"{0:.{digits}f}"
    if lang == "vi":
        text = text.replace(".", ",")
    return text.replace("-", "−")


def p_value(value: Any, lang: str = "vi") -> str:
    """A p-value for people to read: three decimals, or "< 0.001"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value < 0.001:
        return "< 0,001" if lang == "vi" else "< 0.001"
    return number(value, 3, lang)
