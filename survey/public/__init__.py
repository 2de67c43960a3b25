"""The customer survey at /s/<token>."""

from __future__ import annotations

from flask import Blueprint, request

from ..extensions import csrf, limiter
from .tokens import set_browser_cookie

bp = Blueprint("public", __name__)
# The survey's forms carry a token of their own (tokens.py, a signed double-submit cookie) rather
# than Flask-WTF's session token: the page view, the blueprint's only POST, checks it once the link
# is known (an unknown link is a 404, not an expired page). A POST route added here must check it
# too: tests/security/test_csrf.py fails for a POST route it has no case for.
csrf.exempt(bp)


@limiter.request_filter
def _survey_request() -> bool:
    """The survey has no rate limits (many customers share one address behind a carrier's NAT, and a
    link is single-use): spare its requests the limiter's per-request look-ups."""
    return request.blueprint == bp.name


bp.after_request(set_browser_cookie)

from . import views  # noqa: E402,F401  (registers the routes on bp)
