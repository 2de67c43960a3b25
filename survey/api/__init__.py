"""The read-only JSON API at /api/v1, for integration: a campaign's report and one unit's results.

Every data endpoint needs an API key (``Authorization: Bearer <key>``); the OpenAPI document
describing them is public. JSON never contains NaN or infinity: a value that cannot be
computed is null.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, request

from ..extensions import csrf
from ..models import Campaign
from ..services import reports
from ..services.reports import CampaignReport, finite
from . import openapi
from .auth import authenticate

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


def json_response(payload: Any, status: int = 200) -> Response:
    """Serialise strictly: a NaN or infinity that slipped through is a bug, not valid JSON."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return current_app.response_class(body, status=status, mimetype="application/json")


@bp.before_request
def require_key() -> Response | None:
    """Refuse data requests without a live API key: 401 with a Bearer challenge."""
    if request.endpoint == "api.openapi_document":
        return None
    api_key = authenticate(request.headers.get("Authorization"))
    if api_key is None:
        # Integrators read English; the message says how to get a key.
        response = json_response(
            {
                "error": "unauthorized",
                "detail": "Send a valid API key as 'Authorization: Bearer <key>'. "
                "HQ creates keys with 'flask users api-key create'.",
            },
            401,
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="evnnpc-survey"'
        return response
    g.api_key = api_key
    return None


def _campaign(code: str) -> Campaign:
    campaign = reports.find_campaign(code)
    if campaign is None:
        abort(404, description=f"There is no campaign with the code {code[:40]!r}.")
    return campaign


def _number(value: Any) -> float | None:
    return finite(value)


def campaign_json(report: CampaignReport) -> dict[str, Any]:
    """The campaign part of every response."""
    return {
        "code": report.campaign_code,
        "name_vi": report.campaign_name_vi,
        "name_en": report.campaign_name_en,
        "status": report.campaign_status,
        "target_score": _number(report.target),
        "margin": _number(report.margin),
        "previous_campaign": report.overall.previous_code,
    }


def unit_json(report: CampaignReport, result: Any) -> dict[str, Any]:
    """One unit's row: the DESIGN.md report columns plus the English name and both reasons."""
    row = report.unit_row(result, "vi")
    row["unit_name_en"] = report.unit(result.unit_code).name_en
    row["reason"] = result.reason
    row["reason_vi"] = result.reason_vi
    row["auditing_units"] = list(result.auditing_units)
    return {k: (_number(v) if isinstance(v, float) else v) for k, v in row.items()}


def rater_json(rater: Any) -> dict[str, Any]:
    """One auditing unit's leniency."""
    return {
        "rater_unit": rater.rater_unit,
        "leniency": _number(rater.leniency),
        "leniency_se": _number(rater.leniency_se),
        "p_value": _number(rater.p_value),
        "p_adjusted": _number(rater.p_adjusted),
        "flagged": bool(rater.flagged),
        "n": int(rater.n),
        "units_scored": int(rater.units_scored),
    }


def report_json(report: CampaignReport) -> dict[str, Any]:
    """The whole reconciled report of a campaign."""
    overall = report.overall
    offset = report.reconciliation.offset
    return {
        "campaign": campaign_json(report),
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "overall": {
            "n": overall.n,
            "score": _number(overall.score),
            "ci_low": _number(overall.ci_low),
            "ci_high": _number(overall.ci_high),
            "target": _number(overall.target),
            "meets_target": overall.meets_target,
            "previous_score": _number(overall.previous_score),
            "change": _number(overall.change),
        },
        "offset": {
            "estimate": _number(offset.estimate),
            "se": _number(offset.se),
            "ci_low": _number(offset.ci_low),
            "ci_high": _number(offset.ci_high),
            "p_value": _number(offset.p_value),
        },
        "method": report.reconciliation.method,
        "warnings": list(report.reconciliation.warnings),
        "units": [unit_json(report, u) for u in report.reconciliation.units],
        "raters": [rater_json(r) for r in report.reconciliation.raters],
    }


@bp.get("/campaigns/<code>/report")
def campaign_report(code: str) -> Response:
    """The reconciled report of a campaign."""
    campaign = _campaign(code)
    payload = report_json(reports.build_report(campaign))
    _record_read(campaign, "api-report")
    return json_response(payload)


def _record_read(campaign: Campaign, what: str, **details: str) -> None:
    """Every API read is an export: the audit trail names the key that read what."""
    api_key = g.api_key
    reports.record_export(campaign, what, {"key": api_key.prefix, "key_name": api_key.name, **details},
                          actor=f"api:{api_key.prefix}")


@bp.get("/campaigns/<code>/units/<unit_code>")
def unit_report(code: str, unit_code: str) -> Response:
    """One unit's results in a campaign, with its dimension scores by source."""
    campaign = _campaign(code)
    report = reports.build_report(campaign)
    try:
        result = report.reconciliation.unit(unit_code)
    except KeyError:
        abort(404, description=f"There is no unit with the code {unit_code[:40]!r}.")
    scores = report.dimension_scores
    payload = (
        {
            "campaign": campaign_json(report),
            "unit": unit_json(report, result),
            "ranked_units": report.ranked_units,
            "dimensions": [
                {
                    "code": d.code,
                    "title_vi": d.title_vi,
                    "title_en": d.title_en,
                    **{source: _number(scores.of(unit_code, source)[d.code]) for source in reports.SOURCES},
                }
                for d in scores.dimensions
            ],
            "respondents": {s: scores.respondents.get((unit_code, s), 0) for s in reports.SOURCES},
            "incomplete": {s: report.incomplete.get(unit_code, {}).get(s, 0) for s in reports.SOURCES},
        }
    )
    _record_read(campaign, "api-unit", unit=unit_code)
    return json_response(payload)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3 description of this API (public, so clients can discover it)."""
    return json_response(openapi.document())
