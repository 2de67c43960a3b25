"""End to end on the demo campaign (`flask demo --seed 1`): CSV, XLSX and API carry the numbers `scoring` gives."""

from __future__ import annotations

import io
import json
import re

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

import scoring
from survey.extensions import db
from survey.services.users import create_api_key

from .conftest import assert_close, reference_reconciliation
from .test_exports import DESIGN_COLUMNS, read_csv

pytestmark = pytest.mark.slow


def test_demo_campaign_downloads_and_api_agree_with_scoring(runner, tmp_path, client):
    result = runner.invoke(args=["demo", "--seed", "1"])
    assert result.exit_code == 0, result.output
    from survey.services.reports import find_campaign

    campaign = find_campaign("2017")
    assert campaign is not None and campaign.household_share is not None
    share = campaign.household_share
    expected = reference_reconciliation(campaign, shares={"household": share, "business": 1 - share})
    assert len(expected.units) == 27

    paths = {fmt: tmp_path / f"r.{fmt}" for fmt in ("csv", "xlsx", "pdf")}
    for fmt, path in paths.items():
        outcome = runner.invoke(args=["report", "2017", "--format", fmt, "--out", str(path)])
        assert outcome.exit_code == 0, outcome.output

    rows = read_csv(paths["csv"].read_bytes())
    assert rows[0] == DESIGN_COLUMNS and len(rows) == 28
    csv_rows = {r[0]: dict(zip(DESIGN_COLUMNS, r)) for r in rows[1:]}
    sheet = load_workbook(io.BytesIO(paths["xlsx"].read_bytes()))["units"]
    xlsx_rows = {r[0].value: {n: c.value for n, c in zip(DESIGN_COLUMNS, r)} for r in sheet.iter_rows(min_row=2)}
    _, key = create_api_key("demo test")
    db.session.commit()
    response = client.get("/api/v1/campaigns/2017/report", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    api_rows = {u["unit_code"]: u for u in json.loads(response.get_data(as_text=True))["units"]}

    for unit in expected.units:
        for column in scoring.UNIT_COLUMNS:
            if column in ("unit_code", "reason"):
                continue
            want = getattr(unit, column)
            for source, rows_ in (("csv", csv_rows), ("xlsx", xlsx_rows), ("api", api_rows)):
                assert_close(rows_[unit.unit_code][column], want, f"{source} {unit.unit_code}.{column}", rel=1e-6)
    assert {u.status for u in expected.units} >= {"inconsistent"}, "the demo plants units that truly differ"

    pages = [p.extract_text() or "" for p in PdfReader(io.BytesIO(paths["pdf"].read_bytes())).pages]
    assert any(p.lstrip().startswith("Phương pháp") for p in pages)

    # The demo announces which auditing units it made lenient and harsh; the report finds them.
    lenient = re.search(r"lenient auditor (\S+) \+", result.output)
    harsh = re.search(r"harsh auditor (\S+) -", result.output)
    raters = {r.rater_unit: r for r in expected.raters}
    if lenient and harsh:
        assert raters[lenient.group(1)].leniency > 0 > raters[harsh.group(1)].leniency
