"""The customer survey at /s/<token>."""

from __future__ import annotations

from flask import Blueprint, request

from ..extensions import limiter

bp = Blueprint("public", __name__)


@limiter.request_filter
def _survey_request() -> bool:
    """The survey has no rate limits (many customers share one address behind a carrier's NAT, and a
    link is single-use): spare its requests the limiter's per-request look-ups."""
    return request.blueprint == bp.name


from . import views  # noqa: E402,F401  (registers the routes on bp)
