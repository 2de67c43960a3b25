"""The customer survey at /s/<token>."""

from __future__ import annotations

from flask import Blueprint, request

from ..extensions import csrf, limiter
from .tokens import check_page_token, set_browser_cookie

bp = Blueprint("public", __name__)
# The survey's forms carry a token of their own (tokens.py, a signed double-submit cookie) rather
# than Flask-WTF's session token: the page view checks it once the link is known (an unknown link
# is a 404, not an expired page), and _check_token any other state-changing request.
csrf.exempt(bp)
#: Endpoints that check the page token themselves.
CHECKED_IN_VIEW = frozenset({"public.page"})


@limiter.request_filter
def _survey_request() -> bool:
    """The survey has no rate limits (many customers share one address behind a carrier's NAT, and a
    link is single-use): spare its requests the limiter's per-request look-ups."""
    return request.blueprint == bp.name


@bp.before_request
def _check_token() -> None:
    """Refuse a POST (or any other state-changing method) without this browser's token for the link."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint in CHECKED_IN_VIEW:
        return
    check_page_token(str((request.view_args or {}).get("token", "")))


bp.after_request(set_browser_cookie)

from . import views  # noqa: E402,F401  (registers the routes on bp)
