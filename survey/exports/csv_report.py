"""The per-unit report as CSV: DESIGN.md columns in order, UTF-8 with a BOM so Excel shows Vietnamese."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..services.reports import REPORT_COLUMNS, CampaignReport
from . import csv_text

BOM = "\ufeff"


def csv_lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """Each row as one CSV line (RFC 4180 quoting, CRLF endings), values through csv_text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_text(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def report_csv(report: CampaignReport, lang: str = "vi") -> bytes:
    """The per-unit table; empty cells (never NaN or inf) where a value cannot be computed."""
    rows = [list(REPORT_COLUMNS)]
    rows += [[row[c] for c in REPORT_COLUMNS] for row in report.unit_rows(lang)]
    return (BOM + "".join(csv_lines(rows))).encode("utf-8")
