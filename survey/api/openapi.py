"""The OpenAPI 3 document of the JSON API, written by hand so it says exactly what the API promises."""

from __future__ import annotations

from typing import Any

from ..services.reports import STATUS_ORDER

NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": "number", "nullable": True}
COUNT = {"type": "integer", "minimum": 0}
NULLABLE_RANK = {"type": "integer", "minimum": 1, "nullable": True}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": "string", "nullable": True}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


CAMPAIGN = _object(
    {
        "code": TEXT,
        "name_vi": TEXT,
        "name_en": TEXT,
        "status": {"type": "string", "enum": ["draft", "open", "closed"]},
        "target_score": NULLABLE_NUMBER,
        "margin": NULLABLE_NUMBER,
        "previous_campaign": NULLABLE_TEXT,
    }
)

UNIT = _object(
    {
        "unit_code": TEXT,
        "unit_name": {"type": "string", "description": "Vietnamese name"},
        "unit_name_en": TEXT,
        "consultant_n": COUNT,
        "consultant_score": NULLABLE_NUMBER,
        "consultant_ci_low": NULLABLE_NUMBER,
        "consultant_ci_high": NULLABLE_NUMBER,
        "cross_n": COUNT,
        "cross_raters": COUNT,
        "cross_score": {**NULLABLE_NUMBER, "description": "plain mean of the cross respondents' indices"},
        "cross_score_adjusted": {
            **NULLABLE_NUMBER,
            "description": "cross score with each auditing unit's leniency removed",
        },
        "difference": {**NULLABLE_NUMBER, "description": "adjusted cross − consultant beyond the campaign-wide offset"},
        "difference_ci_low": NULLABLE_NUMBER,
        "difference_ci_high": NULLABLE_NUMBER,
        "p_value": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
        "p_adjusted": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
        "status": {"type": "string", "enum": list(STATUS_ORDER)},
        "reason": {"type": "string", "description": "the status in words, English"},
        "reason_vi": {"type": "string", "description": "the status in words, Vietnamese"},
        "reconciled_score": NULLABLE_NUMBER,
        "reconciled_ci_low": NULLABLE_NUMBER,
        "reconciled_ci_high": NULLABLE_NUMBER,
        "rank": NULLABLE_RANK,
        "auditing_units": {"type": "array", "items": TEXT},
    }
)

RATER = _object(
    {
        "rater_unit": TEXT,
        "leniency": {**NULLABLE_NUMBER, "description": "points above (+) or below (−) the average auditing unit"},
        "leniency_se": NULLABLE_NUMBER,
        "p_value": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
        "p_adjusted": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
        "flagged": {"type": "boolean"},
        "n": COUNT,
        "units_scored": COUNT,
    }
)

REPORT = _object(
    {
        "campaign": {"$ref": "#/components/schemas/Campaign"},
        "generated_at": {"type": "string", "format": "date-time"},
        "overall": _object(
            {
                "n": COUNT,
                "score": NULLABLE_NUMBER,
                "ci_low": NULLABLE_NUMBER,
                "ci_high": NULLABLE_NUMBER,
                "target": NULLABLE_NUMBER,
                "meets_target": {"type": "boolean", "nullable": True},
                "previous_score": NULLABLE_NUMBER,
                "change": NULLABLE_NUMBER,
            }
        ),
        "offset": _object(
            {
                "estimate": NULLABLE_NUMBER,
                "se": NULLABLE_NUMBER,
                "ci_low": NULLABLE_NUMBER,
                "ci_high": NULLABLE_NUMBER,
                "p_value": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
            }
        ),
        "method": TEXT,
        "warnings": {"type": "array", "items": TEXT},
        "units": {"type": "array", "items": {"$ref": "#/components/schemas/UnitResult"}},
        "raters": {"type": "array", "items": {"$ref": "#/components/schemas/RaterResult"}},
    }
)

BY_SOURCE = _object({"consultant": COUNT, "cross": COUNT})

UNIT_REPORT = _object(
    {
        "campaign": {"$ref": "#/components/schemas/Campaign"},
        "unit": {"$ref": "#/components/schemas/UnitResult"},
        "ranked_units": COUNT,
        "dimensions": {
            "type": "array",
            "items": _object(
                {
                    "code": TEXT,
                    "title_vi": TEXT,
                    "title_en": TEXT,
                    "consultant": NULLABLE_NUMBER,
                    "cross": NULLABLE_NUMBER,
                }
            ),
        },
        "respondents": BY_SOURCE,
        "incomplete": BY_SOURCE,
    }
)

ERROR = _object({"error": TEXT, "detail": TEXT}, required=["error"])


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


UNAUTHORIZED = {
    **_error("Missing, malformed, unknown or revoked API key"),
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
}

CAMPAIGN_CODE = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "Campaign code, e.g. 2017",
    "schema": {"type": "string", "minLength": 1, "maxLength": 40},
    "example": "2017",
}
UNIT_CODE = {
    "name": "unit_code",
    "in": "path",
    "required": True,
    "description": "Unit code, an ASCII slug of the province, e.g. bac-giang",
    "schema": {"type": "string", "minLength": 1, "maxLength": 40},
    "example": "bac-giang",
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document served at /api/v1/openapi.json."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "EVNNPC customer satisfaction: reconciled reports",
            "version": "1.0.0",
            "description": (
                "Read-only access to the reconciled customer-satisfaction scores of EVNNPC's units. "
                "Values that cannot be computed are null; numbers are never NaN or infinite."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/campaigns/{code}/report": {
                "get": {
                    "operationId": "getCampaignReport",
                    "summary": "The reconciled report of a campaign",
                    "parameters": [CAMPAIGN_CODE],
                    "responses": {
                        "200": {
                            "description": "The report",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}},
                        },
                        "401": UNAUTHORIZED,
                        "404": _error("No campaign with this code"),
                    },
                }
            },
            "/campaigns/{code}/units/{unit_code}": {
                "get": {
                    "operationId": "getUnitReport",
                    "summary": "One unit's results in a campaign, with dimension scores by source",
                    "parameters": [CAMPAIGN_CODE, UNIT_CODE],
                    "responses": {
                        "200": {
                            "description": "The unit's results",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UnitReport"}}},
                        },
                        "401": UNAUTHORIZED,
                        "404": _error("No campaign or no unit with this code"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Campaign": CAMPAIGN,
                "UnitResult": UNIT,
                "RaterResult": RATER,
                "Report": REPORT,
                "UnitReport": UNIT_REPORT,
                "Error": ERROR,
            },
        },
    }
