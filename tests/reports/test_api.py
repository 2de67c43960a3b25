"""The JSON API: API keys, the same numbers as `scoring`, and schemathesis against the OpenAPI document."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

import scoring
from survey.api.auth import authenticate
from survey.extensions import db
from survey.models import utcnow
from survey.services.users import create_api_key

from .conftest import assert_close, reference_reconciliation


@pytest.fixture
def api_key(app):
    """A live API key (the key itself) and a revoked one."""
    live_row, live = create_api_key("integration test")
    revoked_row, revoked = create_api_key("old system")
    revoked_row.revoked_at = utcnow()
    db.session.commit()
    return {"live": live, "revoked": revoked}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def strict_json(response):
    """Parse like a strict client: NaN and Infinity are not JSON."""

    def refuse(value):
        raise AssertionError(f"{value} in JSON")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer short", "Bearer evn_" + "x" * 43,
     "Bearer évn_ümlaut-key-with-non-ascii", "Bearer " + "a" * 500],
)
def test_missing_malformed_or_unknown_key_is_401(seeded, client, api_key, header):
    headers = {} if header is None else {"Authorization": header}
    for path in ("/api/v1/campaigns/c2017/report", "/api/v1/campaigns/c2017/units/bac-giang",
                 "/api/v1/campaigns/nope/report"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert strict_json(response)["error"] == "unauthorized"


def test_revoked_key_is_401(seeded, client, api_key):
    response = client.get("/api/v1/campaigns/c2017/report", headers=bearer(api_key["revoked"]))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert authenticate(f"Bearer {api_key['revoked']}") is None
    assert authenticate(f"bearer {api_key['live']}") is not None


def test_report_equals_scoring(seeded, client, api_key):
    response = client.get("/api/v1/campaigns/c2017/report", headers=bearer(api_key["live"]))
    assert response.status_code == 200 and response.mimetype == "application/json"
    payload = strict_json(response)
    expected = reference_reconciliation(seeded.campaign)
    units = {u["unit_code"]: u for u in payload["units"]}
    assert sorted(units) == sorted(u.unit_code for u in expected.units)
    for unit in expected.units:
        got = units[unit.unit_code]
        for column in scoring.UNIT_COLUMNS:
            assert_close(got[column], getattr(unit, column), f"{unit.unit_code}.{column}")
        assert got["reason_vi"] == unit.reason_vi
        assert got["unit_name"].startswith("Công ty Điện lực")
    raters = {r["rater_unit"]: r for r in payload["raters"]}
    for rater in expected.raters:
        for column in scoring.RATER_COLUMNS:
            assert_close(raters[rater.rater_unit][column], getattr(rater, column), f"{rater.rater_unit}.{column}")
    assert_close(payload["offset"]["estimate"], expected.offset.estimate, "offset")
    assert payload["campaign"]["code"] == "c2017" and payload["campaign"]["previous_campaign"] == "c2016"
    assert payload["overall"]["target"] == 7.5


def test_unit_endpoint(seeded, client, api_key):
    response = client.get("/api/v1/campaigns/c2017/units/bac-kan", headers=bearer(api_key["live"]))
    assert response.status_code == 200
    payload = strict_json(response)
    expected = reference_reconciliation(seeded.campaign).unit("bac-kan")
    assert_close(payload["unit"]["reconciled_score"], expected.reconciled_score, "reconciled")
    assert [d["code"] for d in payload["dimensions"]] == [d.code for d in seeded.campaign.questionnaire.dimensions]
    assert all(d["consultant"] is not None and d["cross"] is not None for d in payload["dimensions"])
    assert payload["respondents"]["consultant"] == 40 and payload["incomplete"]["consultant"] == 2


@pytest.mark.parametrize("path", ["/api/v1/campaigns/nope/report", "/api/v1/campaigns/c2017/units/atlantis",
                                  "/api/v1/campaigns/nope/units/bac-giang"])
def test_unknown_campaign_or_unit_is_404_json(seeded, client, api_key, path):
    response = client.get(path, headers=bearer(api_key["live"]))
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert strict_json(response)["error"]


def test_empty_campaign_has_nulls_not_nan(app, make_campaign, client, api_key):
    make_campaign(code="empty", units=3)
    response = client.get("/api/v1/campaigns/empty/report", headers=bearer(api_key["live"]))
    payload = strict_json(response)
    assert payload["overall"]["score"] is None and payload["offset"]["estimate"] is None
    assert all(u["consultant_score"] is None and u["rank"] is None for u in payload["units"])


def test_openapi_document_is_public_and_valid(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = strict_json(response)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/campaigns/{code}/report", "/campaigns/{code}/units/{unit_code}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 2


def test_schemathesis_finds_no_server_error_and_no_schema_violation(seeded, app, api_key):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = bearer(api_key["live"])
    # The examples that exist: every unit of the seeded campaign, and an unknown one.
    report = schema["/campaigns/{code}/report"]["GET"]
    unit = schema["/campaigns/{code}/units/{unit_code}"]["GET"]
    for code in ("c2017", "c2016", "nope"):
        report.Case(path_parameters={"code": code}).call_and_validate(headers=headers)
    for unit_code in [u.code for u in seeded.units] + ["atlantis"]:
        unit.Case(path_parameters={"code": "c2017", "unit_code": unit_code}).call_and_validate(headers=headers)
    # Without a key the documented 401 comes back, still conforming.
    response = report.Case(path_parameters={"code": "c2017"}).call_and_validate()
    assert response.status_code == 401

    statuses = []

    @given(case=schema.as_strategy())
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call_and_validate(headers=headers)
        statuses.append(response.status_code)

    fuzz()
    assert statuses and all(code < 500 for code in statuses)
